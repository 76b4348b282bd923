"""End of turn: where the user's speech starts, pauses, resumes and ends, from VAD frame probabilities.

The detector works on the audio clock (frame times), so it behaves the same whether audio arrives in
real time or faster. It emits the events of `turn_events`: `SpeechStarted`, `SpeechGoesOn` (transcribe
and read while they talk), `PauseBegan` (answer early, speculatively), `SpeechResumed` (throw the
speculation away) and `TurnEnded`.

How much silence ends a turn depends on what was said (`turn_end_rules.silence_needed_ms`: "…the air is
pure." ends sooner than "and so my fellow Americans"), on how it sounded (the audio end-of-turn model's
P(complete), `hear_voice`, asked only where it could change the answer) and on how this person pauses: a
speaker who has already paused mid-utterance gets `PAUSE_FACTOR` times their longest pause so far, and
`PACE_FACTOR` times their pace (the median of their latest pauses between words this session,
`went_on_after`), before the turn is taken from them. Someone saying one word at a time ("Samantha … do …
you …": `WORD_BY_WORD_BURSTS` short stretches of speech in a row) gets `WORD_BY_WORD_FACTOR` times the median
of this utterance's pauses, from their third word on: "Samantha, do you?" after two pauses is no end. When
the words sound finished and the LLM is confident the turn ends there (`confident_end_p`), none of this
applies and `confident_max_ms` is enough, as a listener would answer "…ask what you can do for your
country." without waiting out the speaker's longest pause.

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
import statistics
from collections import deque
from collections.abc import Sequence
from enum import Enum

from voiceos.config import EndpointConfig, VadConfig
from voiceos.listen.turn_end_rules import confident_end, silence_needed_ms, voice_matters
from voiceos.listen.turn_events import (
    PauseBegan,
    SpeechGoesOn,
    SpeechResumed,
    SpeechStarted,
    TurnEnded,
    TurnEvent,
)

FRAME_S = 0.032
LOUD_BELOW_PEAK_DB = 30.0  # a sub-block this close to the utterance's loudest still holds voice
MAX_VAD_LAG_S = 0.1  # how far back of Silero's last speech frame the voice's end may be put
VOICE_GONE_S = 0.048  # quiet this long, with Silero unsure (below `threshold`), and the pause has begun
RESUME_FRAMES = 3  # ~96 ms of speech in a pause: the user goes on
PAUSE_FACTOR = 1.25  # a speaker who paused this long mid-turn gets this many times that pause before the end
PACE_FACTOR = 1.4  # ...and this many times their pace: the pauses between their words, learned over the session
PACE_PAUSES = 12  # the pace is the median of this many latest pauses the user went on from
PACE_MIN_PAUSES = 3  # fewer than this and the pace is not known yet
PACE_PAUSE_RANGE_S = (0.1, 0.8)  # a pause between words; a longer one is a thought of its own (PAUSE_FACTOR)
WORD_BURST_MAX_S = 0.8  # speech between two pauses this short is a word or two
WORD_BY_WORD_BURSTS = 3  # this many such stretches in a row, and the user is speaking word by word...
WORD_BY_WORD_FACTOR = 2.0  # ...and gets this many times the median of this utterance's pauses


class Phase(Enum):
    IDLE = "idle"
    SPEECH = "speech"
    PAUSE = "pause"


class TurnDetector:
    """Feed one VAD probability per 32 ms frame; get turn events. Single-threaded."""

    def __init__(self, vad: VadConfig, endpoint: EndpointConfig, pause_factor: float = PAUSE_FACTOR) -> None:
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
        self._utterance_pauses: list[float] = []  # every pause the user resumed from, this utterance
        self._bursts: list[float] = []  # how long each stretch of speech between pauses lasted, this utterance
        self._burst_start = 0.0
        self._ended_rhythm: tuple[list[float], list[float], float] = ([], [], 0.0)  # of the last turn ended
        self.pauses: deque[float] = deque(maxlen=PACE_PAUSES)  # pauses the user went on from, this session
        self._text = ""  # the words of the turn so far, their P(end), and the voice's P(complete)
        self._end_probability: float | None = None
        self.voice_complete_p: float | None = None
        self.required_silence_s = endpoint.incomplete_silence_ms / 1000.0
        self.fixed_silence_s: float | None = None  # naive mode: one fixed silence for every turn
        self._peak_db = -math.inf  # loudest sub-block of this utterance's speech frames
        self._last_loud_end = 0.0  # end of the last sub-block within LOUD_BELOW_PEAK_DB of that peak

    @property
    def pace_s(self) -> float:
        """How long this user pauses between words this session: the median of their latest pauses inside
        turns (0 until `PACE_MIN_PAUSES` were heard)."""
        return statistics.median(self.pauses) if len(self.pauses) >= PACE_MIN_PAUSES else 0.0

    def went_on_after(self, pause_s: float) -> None:
        """The user went on after a pause of `pause_s` (inside a turn, or over a turn taken too soon)."""
        self.longest_pause_s = max(self.longest_pause_s, pause_s)
        self._utterance_pauses.append(pause_s)
        if PACE_PAUSE_RANGE_S[0] <= pause_s <= PACE_PAUSE_RANGE_S[1]:
            self.pauses.append(pause_s)

    def went_on_after_end(self, pause_s: float) -> None:
        """The user went on with the turn that just ended, after `pause_s` (it was reopened, or merged over
        her first words): its stretches of speech and its pauses count for this utterance again."""
        bursts, pauses, longest = self._ended_rhythm
        self._bursts = bursts + self._bursts
        self._utterance_pauses = pauses + self._utterance_pauses
        self.longest_pause_s = max(self.longest_pause_s, longest)
        self.went_on_after(pause_s)

    def hear_transcript(self, text: str, end_probability: float | None = None) -> None:
        """The transcript of the turn so far (from the speculative pass) sets the silence it needs."""
        self._text, self._end_probability = text, end_probability
        self._decide()

    def wants_voice(self) -> bool:
        """The audio end-of-turn model's verdict on this pause is not in yet, and could change the decision."""
        return (self.fixed_silence_s is None and self.voice_complete_p is None and self.phase == Phase.PAUSE
                and voice_matters(self._text, self._end_probability, self.cfg))

    def hear_voice(self, complete_p: float) -> None:
        """The audio end-of-turn model's P(complete) for the turn so far."""
        self.voice_complete_p = complete_p
        self._decide()

    def _slow_speaker_s(self) -> float:
        return max(self.pause_factor * self.longest_pause_s, PACE_FACTOR * self.pace_s, self._word_by_word_s())

    def _word_by_word_s(self) -> float:
        """The wait for a user saying one word at a time, or 0 if they are not."""
        recent = self._bursts[-WORD_BY_WORD_BURSTS:]
        if len(recent) < WORD_BY_WORD_BURSTS or max(recent) > WORD_BURST_MAX_S or not self._utterance_pauses:
            return 0.0
        return WORD_BY_WORD_FACTOR * statistics.median(self._utterance_pauses)

    def _decide(self) -> None:
        if self.fixed_silence_s is not None:
            return
        ms = silence_needed_ms(self._text, self._end_probability, self.cfg, self.voice_complete_p)
        slow_speaker_s = self._slow_speaker_s()
        if ms <= self.cfg.complete_silence_ms and confident_end(self._end_probability, self.cfg):
            slow_speaker_s = min(slow_speaker_s, self.cfg.confident_max_ms / 1000.0)
        self.required_silence_s = max(ms / 1000.0, slow_speaker_s)

    def _reset_required(self) -> None:
        self._text, self._end_probability, self.voice_complete_p = "", None, None
        if self.fixed_silence_s is not None:
            self.required_silence_s = self.fixed_silence_s
        else:
            self.required_silence_s = max(self.cfg.incomplete_silence_ms / 1000.0, self._slow_speaker_s())

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
                self._utterance_pauses, self._bursts, self._burst_start = [], [], self._run_start
                self._reset_required()
                events.append(SpeechStarted(self._run_start))
            return events
        if self.phase == Phase.SPEECH:
            if speechy:
                self.last_voiced_end = end
                if end - self._last_partial >= self.partial_every_s:
                    self._last_partial = end
                    events.append(SpeechGoesOn(end))
                if end - self.speech_start >= self.cfg.max_turn_s:
                    events.append(self._end(end))
                return events
            self.phase = Phase.PAUSE  # this frame is the first of the pause: fall through and time it
            self._bursts.append(self.voice_end - self._burst_start)
        # PAUSE
        if self._run >= RESUME_FRAMES:
            self.went_on_after(self._run_start - self.voice_end)
            self._burst_start = self._run_start
            self._last_partial = self._run_start  # `partial` counts unbroken speech
            self.phase = Phase.SPEECH
            self.last_voiced_end = end
            self._speculated = False
            self._reset_required()
            events.append(SpeechResumed(self._run_start))
            return events
        silence = end - self.last_voiced_end
        if not self._speculated and silence >= self.cfg.speculate_after_ms / 1000.0:
            self._speculated = True
            events.append(PauseBegan(end, silence))
        if end - self.voice_end >= min(self.required_silence_s, self.cfg.max_silence_ms / 1000.0):
            events.append(self._end(end))
        return events

    def close(self, t: float) -> TurnEnded:
        """The audio ended (the last WAV was read): a turn still open ends here, whatever its silence."""
        return self._end(max(t, self.last_voiced_end))

    def _end(self, t: float) -> TurnEnded:
        silence = max(0.0, t - self.voice_end)
        self._ended_rhythm = (self._bursts, self._utterance_pauses, self.longest_pause_s)
        self.phase = Phase.IDLE
        self._run = 0
        self._peak_db = -math.inf
        return TurnEnded(t, silence)
