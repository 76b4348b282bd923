"""Speech to text: faster-whisper with word timestamps, on a short encoder window when it is safe.

Whisper's encoder is trained on 30 s windows, but the CTranslate2 encoder accepts fewer frames; cost
falls roughly with the window (465 ms for 3000 frames → 85 ms for 1000 on 2 cores). `ShortWindowWhisper`
trims the padded features to `window_frames` before encoding. `min_window_s` keeps a margin against the
repetition seen below ~3 s windows; `bench` reports word error rate for both so the trade is visible.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from voiceos.config import SAMPLE_RATE, SttConfig
from voiceos.errors import Cancelled, ModelError
from voiceos.offline import enforce_offline

log = logging.getLogger(__name__)

FRAMES_PER_SECOND = 100  # Whisper mel frames (10 ms hop)
MAX_TOKENS_PER_S = 6  # fast speech is ~4 tokens/s; more is Whisper repeating itself
FULL_WINDOW_FRAMES = 3000

# What Whisper says to silence and noise; dropped unless the audio clearly carried that much speech.
HALLUCINATIONS = {
    "", "you", "thank you", "thanks", "thank you very much", "thanks for watching",
    "thank you for watching", "bye", "okay", "oh", "so", "the", "i", "uh", "um", "hmm", "mm",
    "please subscribe", "subtitles by the amaraorg community", "music", "applause", "silence",
}


@dataclass(frozen=True)
class Word:
    """One recognised word; times in seconds relative to the start of the transcribed audio."""

    word: str
    start: float
    end: float
    prob: float


@dataclass
class Transcript:
    """What was heard in one stretch of audio."""

    text: str
    words: list[Word] = field(default_factory=list)
    audio_s: float = 0.0  # seconds of audio transcribed
    stt_ms: float = 0.0  # wall time spent
    window_frames: int = FULL_WINDOW_FRAMES
    dropped_reason: str = ""  # non-empty when the text was judged a hallucination and dropped
    confidence: float = 1.0  # mean token probability (from the segments' average log-probability)
    earlier_s: float = 0.0  # leading audio whose words came from an earlier pass (not transcribed now)

    @property
    def is_empty(self) -> bool:
        return not self.text.strip()


def normalise(text: str) -> str:
    """Lower-case words without punctuation: for comparing and scoring transcripts."""
    text = text.lower().replace("-", " ")
    text = re.sub(r"[^a-z0-9' ]+", " ", text)
    return " ".join(text.replace("'", "").split())


def word_error_rate(reference: str, hypothesis: str) -> float:
    ref, hyp = normalise(reference).split(), normalise(hypothesis).split()
    if not ref:
        return 0.0 if not hyp else 1.0
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1] / len(ref)


def _short_window_model_class() -> type:
    from faster_whisper import WhisperModel

    class ShortWindowWhisper(WhisperModel):
        """WhisperModel whose encoder sees `window_frames` mel frames instead of 3000."""

        window_frames = FULL_WINDOW_FRAMES
        cancelled: Callable[[], bool] | None = None  # set per pass by Transcriber.transcribe

        def encode(self, features: np.ndarray) -> Any:
            if self.window_frames < FULL_WINDOW_FRAMES:
                features = features[..., : self.window_frames]
            if self.cancelled is not None and self.cancelled():
                raise Cancelled()
            encoded = super().encode(np.ascontiguousarray(features))
            if self.cancelled is not None and self.cancelled():  # called off while encoding: skip the decoder
                raise Cancelled()
            return encoded

    return ShortWindowWhisper


class Transcriber:
    """Loads a CTranslate2 Whisper model once; `transcribe()` is called from one worker thread."""

    def __init__(self, model_dir: Path, config: SttConfig) -> None:
        enforce_offline()
        self.config = config
        self.model_dir = model_dir
        try:
            cls = _short_window_model_class()
            self._model = cls(
                str(model_dir),
                device="cpu",
                compute_type=config.compute_type,
                cpu_threads=config.threads,
                num_workers=1,
                local_files_only=True,
            )
        except Exception as exc:
            raise ModelError(f"cannot load the Whisper model in {model_dir}: {exc}") from exc

    def window_for(self, audio_s: float) -> int:
        if not self.config.short_window:
            return FULL_WINDOW_FRAMES
        seconds = max(self.config.min_window_s, audio_s + 1.5)
        frames = int(math.ceil(seconds * FRAMES_PER_SECOND / 100.0) * 100)
        return min(FULL_WINDOW_FRAMES, frames)

    def transcribe(self, samples: np.ndarray, *, word_timestamps: bool = True, full_window: bool = False,
                   prompt: str | None = None, cancelled: Callable[[], bool] | None = None) -> Transcript:
        """Transcribe 16 kHz mono audio; drop what looks like a hallucination on silence or noise.
        `cancelled`: checked around the encoder; when it turns true the pass stops with `Cancelled`."""
        started = time.perf_counter()
        audio_s = len(samples) / SAMPLE_RATE
        window = FULL_WINDOW_FRAMES if full_window else self.window_for(audio_s)
        self._model.window_frames = window
        self._model.cancelled = cancelled
        segments, _info = self._model.transcribe(
            samples.astype(np.float32, copy=False),
            max_new_tokens=int(math.ceil(audio_s * MAX_TOKENS_PER_S)) + 8,
            language=self.config.language,
            beam_size=self.config.beam_size,
            word_timestamps=word_timestamps,
            condition_on_previous_text=False,
            without_timestamps=True,
            vad_filter=False,
            temperature=0.0,
            initial_prompt=prompt,
        )
        words: list[Word] = []
        texts: list[str] = []
        no_speech: list[float] = []
        logprobs: list[float] = []
        for segment in segments:  # the lazy generator is consumed here, on the worker thread
            texts.append(segment.text)
            no_speech.append(segment.no_speech_prob)
            logprobs.append(segment.avg_logprob)
            for w in segment.words or []:
                words.append(Word(w.word.strip(), float(w.start), float(w.end), float(w.probability)))
        raw = " ".join(t.strip() for t in texts).split()
        kept = loop_free(raw)
        if words and len(words) == len(raw):
            words = [words[i] for i in kept]
        text = drop_repeats(" ".join(raw[i] for i in kept))
        if words and len(text.split()) < len(words):
            words = words[: len(text.split())]
        transcript = Transcript(text, words, audio_s, (time.perf_counter() - started) * 1000.0, window,
                                confidence=math.exp(sum(logprobs) / len(logprobs)) if logprobs else 1.0)
        reason = hallucination_reason(transcript, no_speech)
        if reason:
            log.info("dropped %r as a likely hallucination (%s)", text, reason)
            return Transcript("", [], audio_s, transcript.stt_ms, window, dropped_reason=reason)
        return transcript


def loop_free(words: list[str], min_copies: int = 3) -> list[int]:
    """Indices of `words` without Whisper's loop inside a sentence ("ask not ask not ask not ask" → "ask
    not"): a group of one to four words said three or more times in a row is kept once, and so is a copy
    cut short after the last one. People do repeat themselves ("no, no"), but three times in a row is a loop."""
    norm = [normalise(w) for w in words]
    kept: list[int] = []
    i = 0
    while i < len(words):
        for n in range(1, 5):
            gram = norm[i : i + n]
            if len(gram) < n or not all(gram):
                continue
            copies = 1
            while norm[i + copies * n : i + (copies + 1) * n] == gram:
                copies += 1
            if copies >= min_copies:
                j = i + copies * n
                partial = 0
                while partial < n - 1 and j + partial < len(words) and norm[j + partial] == gram[partial]:
                    partial += 1
                kept.extend(range(i, i + n))
                i = j + partial
                break
        else:
            kept.append(i)
            i += 1
    return kept


def drop_repeats(text: str) -> str:
    """Cut Whisper's loop on a short window: text that starts the utterance over again."""
    sentences = re.split(r"(?<=[.!?])\s+", text)
    if len(sentences) < 2:
        return text
    first = normalise(sentences[0]).split()[:2]
    kept = [sentences[0]]
    for sentence in sentences[1:]:
        norm = normalise(sentence)
        if not norm or (len(first) == 2 and norm.split()[:2] == first) or norm in normalise(" ".join(kept)):
            break
        kept.append(sentence)
    return " ".join(kept)


def hallucination_reason(transcript: Transcript, no_speech_probs: list[float]) -> str:
    """Why a transcript should be dropped rather than answered ("" to keep it)."""
    norm = normalise(transcript.text)
    if not norm:
        return "no words"
    if no_speech_probs and min(no_speech_probs) > 0.6:
        return "no-speech probability"
    probs = [w.prob for w in transcript.words]
    mean_prob = sum(probs) / len(probs) if probs else transcript.confidence
    if norm in HALLUCINATIONS and (mean_prob < 0.8 or transcript.audio_s < 0.5):
        return "a phrase Whisper says to silence"  # said clearly ("Thank you.") it is kept
    if probs and mean_prob < 0.25:
        return "low word confidence"
    return ""
