"""End of turn: where the user's speech starts, pauses, resumes and ends, from VAD frame probabilities.

The detector works on the audio clock (frame times), so it behaves the same whether audio arrives in
real time or faster. It emits:
- `start`      speech began (after `min_speech_ms` of speech; `t` is the first speech frame)
- `partial`    another `partial_every_ms` of unbroken speech (transcribe and read while they talk; at
               pauses inside an utterance the `speculate` pass plays that role)
- `speculate`  a pause reached `speculate_after_ms` (answer early, speculatively)
- `resume`     speech came back before the turn ended (throw the speculation away)
- `end`        the pause reached the silence this turn needs; the turn is over

How much silence ends a turn depends on what was said and how this person pauses:
`turn_sounds_complete()` looks at the transcript so far (sentence punctuation, a trailing conjunction or
filler), so "…the air is pure." ends sooner than "and so my fellow Americans"; and a speaker who has
already paused for a second mid-utterance (a speech, a slow thinker) gets `pause_factor` times their
longest pause so far before the turn is taken from them, unless the words sound finished and the LLM is
confident the turn ends there (`confident_end_p`): then `confident_max_ms` is enough, as a listener would
answer "…ask what you can do for your country." without waiting out the speaker's longest pause.
A long thinking pause keeps the first half.

Silence is counted from where the voice stopped, not from where Silero let go: its speech probability
trails the voice by a frame or two (its state carries the last syllable), so with only the probability a
"360 ms" pause would really be longer. Given each frame's loudness (`levels_db`, a few equal
sub-blocks), the detector moves the end back to the last sub-block still within `LOUD_BELOW_PEAK_DB` of
the utterance's loudest — by at most `MAX_VAD_LAG_S`, so steady noise or a quiet trailing sound leaves the
end where Silero put it. For the same reason a frame where Silero is unsure (between its two thresholds)
after `VOICE_GONE_S` of quiet already counts as pause, so the speculative pass starts a frame sooner.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from voiceos.config import EndpointConfig, VadConfig

FRAME_S = 0.032
LOUD_BELOW_PEAK_DB = 30.0  # a sub-block this close to the utterance's loudest still holds voice
MAX_VAD_LAG_S = 0.1  # how far back of Silero's last speech frame the voice's end may be put
VOICE_GONE_S = 0.048  # quiet this long, with Silero unsure (below `threshold`), and the pause has begun


class Phase(Enum):
    IDLE = "idle"
    SPEECH = "speech"
    PAUSE = "pause"


@dataclass(frozen=True)
class TurnEvent:
    kind: str  # start, partial, speculate, resume, end
    t: float  # audio time (session clock) the event refers to
    silence_s: float = 0.0


_TRAILING_OPEN = {
    "and", "but", "or", "so", "because", "cause", "if", "when", "while", "that", "which", "who", "the", "a", "an",
    "to", "of", "in", "on", "at", "for", "with", "about", "my", "your", "our", "their", "his", "her", "is",
    "are", "was", "were", "um", "uh", "er", "like", "then", "than", "also", "just", "maybe", "i", "we",
    "it's", "i'm", "what", "how", "not", "very", "really", "from", "by", "as", "into", "think", "mean",
}


_OPENERS = {"and", "so", "but", "or", "well", "because", "then", "also", "now"}


def turn_sounds_complete(text: str) -> bool:
    """True when the words so far sound like a finished turn (a question or a full sentence)."""
    stripped = text.strip()
    if not stripped:
        return False
    words = re.findall(r"[A-Za-z']+", stripped.lower())
    if not words:
        return False
    if stripped.endswith("?") and not stripped.endswith("...?"):
        return True  # "How about you?", "So what?"
    if words[-1] in _TRAILING_OPEN or stripped.endswith((",", "...", "…", "-", "—", ";", ":")):
        return False
    if stripped.endswith("!"):
        return True
    return stripped.endswith(".") and len(words) >= 2


def _unpunctuated_but_whole(text: str) -> bool:
    """Whisper sometimes writes a turn in lower case with no punctuation at all ("and so my fellow americans
    ask not … for your country"): then only the words and the LLM can tell whether it is finished."""
    words = re.findall(r"[A-Za-z']+", text.lower())
    if len(words) < 3 or re.search(r"[.,?!;:…]", text) or words[-1] in _TRAILING_OPEN:
        return False
    return not (words[0] in _OPENERS and len(words) <= 6)  # "and so my fellow": a preamble


def confident_end(end_probability: float | None, cfg: EndpointConfig) -> bool:
    """The LLM is sure enough the turn ends here to answer a finished-sounding turn without delay."""
    return end_probability is not None and end_probability >= cfg.confident_end_p


def silence_needed_ms(text: str, end_probability: float | None, cfg: EndpointConfig) -> int:
    """The silence that should end this turn, from its words and the LLM's end-of-turn probability.

    Whisper puts a full stop after almost any stretch of audio, so its punctuation alone cannot tell
    "and so my fellow Americans." from "Sunday is the best part of the week."; the language model can
    (P(end) 0.04 against 0.85 here). A question mark or a clear trailing connective decides outright.
    """
    stripped = text.strip()
    confident = confident_end(end_probability, cfg)
    if not turn_sounds_complete(stripped) and not (confident and _unpunctuated_but_whole(stripped)):
        return cfg.incomplete_silence_ms
    if stripped.endswith("?") or end_probability is None:
        return cfg.complete_silence_ms
    words = re.findall(r"[a-z']+", stripped.lower())
    if words and words[0] in _OPENERS and len(words) <= 6 and end_probability < 0.9:
        # "And so, my fellow Americans …": a short turn that opens with a connective is a preamble
        return cfg.incomplete_silence_ms
    if end_probability >= 0.15:
        return cfg.complete_silence_ms
    if end_probability >= 0.03:  # finished by its words, the model unsure: a little longer than "complete"
        return cfg.complete_silence_ms + (cfg.incomplete_silence_ms - cfg.complete_silence_ms) // 6
    return (cfg.complete_silence_ms + 2 * cfg.incomplete_silence_ms) // 3


class TurnDetector:
    """Feed one VAD probability per 32 ms frame; get turn events. Single-threaded."""

    def __init__(self, vad: VadConfig, endpoint: EndpointConfig, pause_factor: float = 1.25) -> None:
        self.vad = vad
        self.cfg = endpoint
        self.partial_every_s = endpoint.partial_every_ms / 1000.0
        self.phase = Phase.IDLE
        self.speech_start = 0.0
        self.last_voiced_end = 0.0
        self._run_start = 0.0
        self._run = 0  # consecutive speech frames
        self._last_partial = 0.0
        self._speculated = False
        self.pause_factor = pause_factor
        self.longest_pause_s = 0.0  # longest pause the user resumed from, this utterance
        self.required_silence_s = endpoint.incomplete_silence_ms / 1000.0
        self.fixed_silence_s: float | None = None  # naive mode: one fixed silence for every turn
        self._peak_db = -math.inf  # loudest sub-block of this utterance's speech frames
        self._last_loud_end = 0.0  # end of the last sub-block within LOUD_BELOW_PEAK_DB of that peak

    def hear_transcript(self, text: str, end_probability: float | None = None) -> None:
        """The transcript of the turn so far (from the speculative pass) sets the silence it needs."""
        if self.fixed_silence_s is not None:
            return
        ms = silence_needed_ms(text, end_probability, self.cfg)
        slow_speaker_s = self.pause_factor * self.longest_pause_s
        if ms <= self.cfg.complete_silence_ms and confident_end(end_probability, self.cfg):
            slow_speaker_s = min(slow_speaker_s, self.cfg.confident_max_ms / 1000.0)
        self.required_silence_s = max(ms / 1000.0, slow_speaker_s)

    def _reset_required(self) -> None:
        if self.fixed_silence_s is not None:
            self.required_silence_s = self.fixed_silence_s
        else:
            self.required_silence_s = max(self.cfg.incomplete_silence_ms / 1000.0,
                                          self.pause_factor * self.longest_pause_s)

    @property
    def voice_end(self) -> float:
        """Where the voice of the speech so far stopped (session clock): Silero's last speech frame, or up
        to `MAX_VAD_LAG_S` before it where the loudness fell first."""
        if self._peak_db == -math.inf:
            return self.last_voiced_end
        return max(self.last_voiced_end - MAX_VAD_LAG_S, min(self._last_loud_end, self.last_voiced_end))

    def _hear_levels(self, levels_db: Sequence[float], t: float, speechy: bool) -> None:
        if speechy:
            self._peak_db = max(self._peak_db, *levels_db)
        step = FRAME_S / len(levels_db)
        for i, level in enumerate(levels_db):
            if level >= self._peak_db - LOUD_BELOW_PEAK_DB:
                self._last_loud_end = t + (i + 1) * step

    def push(self, prob: float, t: float, levels_db: Sequence[float] | None = None) -> list[TurnEvent]:
        """`t` is the session-clock time of the frame's first sample; `levels_db`, if given, the frame's
        loudness in equal sub-blocks (dB), which lets the end of the voice be placed before Silero's."""
        events: list[TurnEvent] = []
        end = t + FRAME_S
        if levels_db:
            self._hear_levels(levels_db, t, prob >= self.vad.threshold)
        # Silero in two minds (between its two thresholds) after the voice has gone: the pause has begun
        faded = bool(levels_db) and end - self._last_loud_end >= VOICE_GONE_S
        speechy = prob >= self.vad.threshold or (
            self.phase == Phase.SPEECH and prob >= self.vad.neg_threshold and not faded)
        if speechy:
            if self._run == 0:
                self._run_start = t
            self._run += 1
        else:
            self._run = 0
            if self.phase == Phase.IDLE:
                self._peak_db = -math.inf  # a click too short to be speech sets no level
        min_frames = max(1, round(self.vad.min_speech_ms / 1000.0 / FRAME_S))
        if self.phase == Phase.IDLE:
            if self._run >= min_frames:
                self.phase = Phase.SPEECH
                self.speech_start = self._run_start
                self.last_voiced_end = end
                self._last_partial = self._run_start
                self._speculated = False
                self.longest_pause_s = 0.0
                self._reset_required()
                events.append(TurnEvent("start", self._run_start))
            return events
        if self.phase == Phase.SPEECH:
            if speechy:
                self.last_voiced_end = end
                if end - self._last_partial >= self.partial_every_s:
                    self._last_partial = end
                    events.append(TurnEvent("partial", end))
                if end - self.speech_start >= self.cfg.max_turn_s:
                    events.append(self._end(end))
                return events
            self.phase = Phase.PAUSE  # this frame is the first of the pause: fall through and time it
        # PAUSE
        if self._run >= 3:  # ~96 ms of speech: the user goes on
            self.longest_pause_s = max(self.longest_pause_s, self._run_start - self.last_voiced_end)
            self._last_partial = self._run_start  # `partial` counts unbroken speech
            self.phase = Phase.SPEECH
            self.last_voiced_end = end
            self._speculated = False
            self._reset_required()
            events.append(TurnEvent("resume", self._run_start))
            return events
        silence = end - self.last_voiced_end
        if not self._speculated and silence >= self.cfg.speculate_after_ms / 1000.0:
            self._speculated = True
            events.append(TurnEvent("speculate", end, silence))
        if end - self.voice_end >= min(self.required_silence_s, self.cfg.max_silence_ms / 1000.0):
            events.append(self._end(end))
        return events

    def close(self, t: float) -> TurnEvent:
        """The audio ended (the last WAV was read): a turn still open ends here, whatever its silence."""
        return self._end(max(t, self.last_voiced_end))

    def _end(self, t: float) -> TurnEvent:
        silence = max(0.0, t - self.voice_end)
        self.phase = Phase.IDLE
        self._run = 0
        self._peak_db = -math.inf
        return TurnEvent("end", t, silence)
