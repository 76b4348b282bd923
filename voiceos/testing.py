"""Scripted stand-ins for the models and the sound card, to run the real voice loop without them.

Where the loop's logic is under test (reopened turns, backchannels, barge-in, dropped speculations, the end
of the input), the models only get in the way: slow, and not the same twice. Here:
- `Lexicon` turns words into tone bursts (one pitch per word) and back, so `ScriptedTranscriber` hears
  exactly the words a test put into the audio, with their true timings;
- `ScriptedLlm` answers with scripted replies and a scripted end-of-turn probability;
- `ToneSynthesizer` speaks a reply as a tone, a fixed time per word;
- `SteppedSource` feeds the audio one VAD frame at a time, and only once both workers are idle: the
  session clock is the audio's own clock, so a run is the same every time and takes a fraction of a second;
- `SteppedSpeaker` plays on that clock, after a fixed output latency.
`run_conversation` wires them into a real `Session` and `VoiceLoop` and returns what the loop logged.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from voiceos.audio.interfaces import AudioChunk
from voiceos.audio.speaker import PlaybackQueue
from voiceos.config import FRAME_SAMPLES, SAMPLE_RATE, Config, LlmConfig
from voiceos.errors import Cancelled
from voiceos.listen.transcript import Transcript, Word
from voiceos.listen.word_timing import frame_energy_db
from voiceos.llm.model import BACKGROUND_BATCH, GenerationStats, PrefillResult
from voiceos.llm.prompt_format import CHATML, PromptFormat
from voiceos.loop.announcer import Announcer
from voiceos.loop.record import TurnRecord, turns_of
from voiceos.loop.session import Engines, Session
from voiceos.loop.voice_loop import LoopOptions, LoopResult
from voiceos.measure.clock import SessionClock
from voiceos.measure.session_log import read_log
from voiceos.think.persona import load_persona

WORD_S = 0.3  # how long a scripted word sounds
WORD_LEVEL = 0.3  # its amplitude
HER_WORD_S = 0.25  # how long each word of her reply sounds
BASE_HZ, STEP_HZ = 400.0, 60.0  # word k of the lexicon is a tone at BASE_HZ + k * STEP_HZ
SOUND_DB = -35.0  # 10 ms blocks louder than this are sound


class ManualClock(SessionClock):
    """A session clock that moves only when told (the scripted source moves it with the audio)."""

    def __init__(self) -> None:
        super().__init__()
        self.t = 0.0

    def now(self) -> float:
        return self.t

    def at(self, perf_counter_value: float) -> float:
        return self.t


class Lexicon:
    """Words as tones: each word of a conversation gets its own pitch."""

    def __init__(self) -> None:
        self.words: list[str] = []

    def tone(self, word: str, seconds: float = WORD_S) -> np.ndarray:
        if word not in self.words:
            self.words.append(word)
        hz = BASE_HZ + STEP_HZ * self.words.index(word)
        t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
        ramp = np.minimum(1.0, np.minimum(t, seconds - t) / 0.01)  # 10 ms fades: no clicks
        return (WORD_LEVEL * ramp * np.sin(2 * np.pi * hz * t)).astype(np.float32)

    def speech(self, text: str, gaps_s: float | Sequence[float] = 0.08, *, lead_s: float = 0.3,
               tail_s: float = 0.0) -> np.ndarray:
        """`text` spoken word by word, `gaps_s` of silence between words (one value, or one per gap)."""
        words = text.split()
        gaps = [gaps_s] * (len(words) - 1) if isinstance(gaps_s, int | float) else list(gaps_s)
        parts = [silence(lead_s)]
        for i, word in enumerate(words):
            parts.append(self.tone(word))
            if i < len(gaps):
                parts.append(silence(gaps[i]))
        parts.append(silence(tail_s))
        return np.concatenate(parts)

    def word_at(self, samples: np.ndarray) -> str:
        """The word whose pitch is strongest in `samples`."""
        spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
        hz = float(np.argmax(spectrum)) * SAMPLE_RATE / len(samples)
        k = int(round((hz - BASE_HZ) / STEP_HZ))
        return self.words[min(max(k, 0), len(self.words) - 1)]


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(round(seconds * SAMPLE_RATE)), np.float32)


class ScriptedTranscriber:
    """Hears the lexicon's words in the audio, with their true timings. `calls` keeps each pass's length."""

    def __init__(self, lexicon: Lexicon) -> None:
        self.lexicon = lexicon
        self.calls: list[int] = []  # samples transcribed, pass by pass

    def transcribe(self, samples: np.ndarray, *, word_timestamps: bool = True, full_window: bool = False,
                   prompt: str | None = None, cancelled: Callable[[], bool] | None = None) -> Transcript:
        if cancelled is not None and cancelled():
            raise Cancelled()
        self.calls.append(len(samples))
        words = [Word(self.lexicon.word_at(samples[int(a * SAMPLE_RATE) : int(b * SAMPLE_RATE)]), a, b, 0.99)
                 for a, b in sound_spans(samples)]
        return Transcript(" ".join(w.word for w in words), words if word_timestamps else [],
                          len(samples) / SAMPLE_RATE, stt_ms=1.0, window_frames=500)


    def align(self, samples: np.ndarray, text: str) -> list[Word]:
        self.calls.append(len(samples))
        return [Word(word, a, b, 0.99) for word, (a, b) in zip(text.split(), sound_spans(samples))]


def sound_spans(samples: np.ndarray, min_s: float = 0.05) -> list[tuple[float, float]]:
    """(start, end) seconds of each stretch of sound at least `min_s` long."""
    loud = frame_energy_db(samples) > SOUND_DB
    spans, start = [], None
    for k, is_loud in enumerate([*loud, False]):
        if is_loud and start is None:
            start = k
        elif not is_loud and start is not None:
            if (k - start) * 0.01 >= min_s:
                spans.append((start * 0.01, k * 0.01))
            start = None
    return spans


@dataclass
class ScriptedLlm:
    """A `LanguageModel` that answers what the user said with `reply_to(words)` and judges every turn with
    `end_probability(words)`. `prompts` keeps every prompt a reply was written for (speculations too)."""

    reply_to: Callable[[str], str] = lambda _said: "Oh, that sounds lovely. Tell me more?"
    end_probability: Callable[[str], float] = lambda _said: 0.9
    config: LlmConfig = field(default_factory=LlmConfig)
    fmt: PromptFormat = CHATML
    n_ctx: int = 2048
    probes_end: bool = True
    prompts: list[str] = field(default_factory=list)

    @property
    def model_name(self) -> str:
        return "scripted"

    def said(self, prompt: str) -> str:
        """The user's words in the last turn of `prompt`."""
        last = prompt.rsplit(self.fmt.user_open, 1)[-1]
        return last.split(self.fmt.reply_open, 1)[0].strip()

    def tokenize(self, text: str) -> list[int]:
        return list(range(len(text.split()) + 1))

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def prefill(self, text: str, cancelled: Callable[[], bool] = lambda: False, *, probe: str | None = None,
                batch: int = BACKGROUND_BATCH) -> PrefillResult:
        if cancelled():
            raise Cancelled()
        return PrefillResult(0, len(text.split()), self.end_probability(self.said(probe)) if probe else None)

    def stream(self, text: str, cancelled: Callable[[], bool] = lambda: False, *, seed: int | None = None,
               temperature: float | None = None, max_tokens: int | None = None,
               stats: GenerationStats | None = None, read_before: PrefillResult | None = None,
               avoid: list[str] | None = None, banned: tuple[str, ...] = (),
               openings: list[str] | None = None) -> Iterator[str]:
        self.prompts.append(text)
        reply = self.reply_to(self.said(text))
        written = text.rsplit(self.fmt.reply_open, 1)[-1] if self.fmt.reply_open in text else ""
        if written and reply.startswith(written):  # a reply begun in the prompt: it goes on from there
            reply = reply[len(written) :]
        space = " " if reply[:1].isspace() else ""  # after words begun in the prompt: " know me"
        for word in reply.split():
            if cancelled():
                return
            if stats is not None:
                stats.generated_tokens += 1
            yield space + word + " "
            space = ""


class ToneSynthesizer:
    """Her voice as a low tone, `HER_WORD_S` per word."""

    last_ms = 0.0

    def synthesize(self, text: str, start: float = 0.0) -> AudioChunk:
        seconds = HER_WORD_S * max(1, len(text.split()))
        t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
        return AudioChunk((0.2 * np.sin(2 * np.pi * 180.0 * t)).astype(np.float32), SAMPLE_RATE, start)

    def close(self) -> None:
        pass


class SteppedSpeaker(PlaybackQueue):
    """Plays on the scripted clock: a reply is heard `latency_s` after its first audio is handed over."""

    def __init__(self, clock: SessionClock, latency_s: float = 0.2) -> None:
        super().__init__(clock)
        self.latency_s = latency_s
        self._audible_from: float | None = None

    def play(self, reply_id: int, samples: np.ndarray, text: str = "") -> None:
        if not self._chunks:
            self._audible_from = self.clock.now() + self.latency_s
        super().play(reply_id, samples, text)

    def advance(self, samples: int, t: float) -> None:
        """The device plays `samples` starting at session time `t`."""
        if self._audible_from is not None and t < self._audible_from:
            return
        self._fill(np.zeros(samples, np.float32), t)

    def alive(self) -> bool:
        return True

    def close(self) -> None:
        pass


class SteppedSource:
    """The scripted microphone: one frame per read, each once `idle()` says the workers are done; the clock
    and the speaker move with the audio. After the audio, reads return None while time goes on."""

    realtime = True  # the clock is the audio's own: latencies are exact
    overflows = 0

    def __init__(self, audio: np.ndarray, clock: ManualClock, speaker: SteppedSpeaker,
                 max_after_s: float = 60.0) -> None:
        pad = (-len(audio)) % FRAME_SAMPLES
        self.audio = np.concatenate([audio, np.zeros(pad, np.float32)])
        self.clock = clock
        self.speaker = speaker
        self.idle: Callable[[], bool] = lambda: True
        self.pos = 0  # samples fed
        self.max_after_s = max_after_s

    def start(self) -> None:
        pass

    def read(self, timeout: float) -> AudioChunk | None:
        deadline = time.monotonic() + 10.0
        while not self.idle():
            if time.monotonic() > deadline:
                raise AssertionError("the workers did not settle within 10 s")
            time.sleep(0.0005)
        t = self.pos / SAMPLE_RATE
        if t - len(self.audio) / SAMPLE_RATE > self.max_after_s:
            raise AssertionError(f"the loop still runs {self.max_after_s:.0f} s after the input ended")
        frame = self.audio[self.pos : self.pos + FRAME_SAMPLES]
        self.pos += FRAME_SAMPLES
        self.clock.t = t + FRAME_SAMPLES / SAMPLE_RATE
        self.speaker.advance(FRAME_SAMPLES, t)
        return AudioChunk(frame, SAMPLE_RATE, t) if len(frame) else None

    def finished(self) -> bool:
        return self.pos >= len(self.audio)

    def heard_nothing(self) -> bool:
        return False

    def turn_done(self) -> None:
        pass

    def close(self) -> None:
        pass


@dataclass
class ScriptedRun:
    """What one scripted conversation left behind."""

    result: LoopResult
    records: list[dict[str, Any]]  # every line of its session log
    transcriber: ScriptedTranscriber
    llm: ScriptedLlm
    speaker: SteppedSpeaker
    session: Session

    @property
    def turns(self) -> list[TurnRecord]:
        return turns_of(self.records)

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [r for r in self.records if r["type"] == kind]


def run_conversation(audio: np.ndarray, lexicon: Lexicon, *, llm: ScriptedLlm | None = None,
                     config: Config | None = None, latency_s: float = 0.2,
                     log_dir: Path | None = None, announcer: Announcer | None = None) -> ScriptedRun:
    """Run the real voice loop over `audio` with the scripted models and sound card (announcing to `announcer`)."""
    config = config or Config()
    if config.session.memory_file is None:
        config.session.memory = False  # a scripted run keeps nothing of the user unless told where
    llm = llm or ScriptedLlm()
    transcriber = ScriptedTranscriber(lexicon)
    clock = ManualClock()
    engines = Engines(transcriber, llm, load_persona(), make_vad=ScriptedVad, make_synthesizer=ToneSynthesizer)
    session = Session(config, engines, log_dir=log_dir or Path(tempfile.mkdtemp(prefix="voiceos-scripted-")),
                      kind="scripted", clock=clock)
    speaker = SteppedSpeaker(clock, latency_s)
    source = SteppedSource(audio, clock, speaker)
    try:
        with session.open_loop(source, speaker, LoopOptions(config.session.mode,
                                                                     announcer=announcer or Announcer())) as loop:
            source.idle = loop.workers_idle
            result = loop.run()
    finally:
        session.close()
    return ScriptedRun(result, read_log(session.log.path), transcriber, llm, speaker, session)


class ScriptedVad:
    """Speech wherever there is sound (the scripted audio holds nothing else)."""

    def __call__(self, frame: np.ndarray) -> float:
        return 1.0 if float(np.sqrt(np.mean(frame * frame))) > 0.02 else 0.0
