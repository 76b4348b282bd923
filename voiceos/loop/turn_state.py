"""The voice loop's bookkeeping of turns: the utterance being heard, the turn being answered, the audio
kept before speech starts — and the rules that move audio and words between them. No models, no threads:
the voice loop calls it from its one thread, and tests drive it directly.

An utterance opens when speech starts (with the pre-roll audio before it) and closes when the turn ends;
it then becomes the active turn while her reply is written and spoken. If the user speaks again before a
word of that reply is audible, the active turn is reopened: it was not over after all. If they go on over her
first words (within `MERGE_WITHIN_S` of them), the two halves are merged into one turn the same way: the
active turn's utterance keeps every frame heard until then, so nothing said in between is lost.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field

import numpy as np

from voiceos.config import FRAME_SAMPLES, SAMPLE_RATE
from voiceos.think.jobs import ReplyJob

# A speculation dropped because the user went on keeps its words when it transcribed at least this much new
# audio (after words kept earlier) and the pause was at least this long; shorter stretches are easily misheard
# alone and cheap to transcribe again with more context.
KEEP_HEARD_AFTER_S = 3.0
KEEP_HEARD_PAUSE_S = 0.3
MERGE_WITHIN_S = 1.5  # the user goes on over her first words this soon after they began: still their turn


@dataclass
class Utterance:
    utt_id: int
    speech_start: float  # session clock
    audio_start: float  # session time of the first buffered sample (pre-roll included)
    frames: list[np.ndarray] = field(default_factory=list)
    job: ReplyJob | None = None  # the reply in the making (speculative until committed)
    end_t: float | None = None  # end of turn decided
    over_reply: int | None = None  # reply_id of Samantha's reply this speech started over
    required_silence_s: float = 0.0  # the silence that ended it
    longest_pause_s: float = 0.0
    voice_complete_p: float | None = None  # the audio end-of-turn model's P(complete) when the turn ended
    # Transcribed for good at a long pause inside the utterance: the first `heard_samples` of audio() say
    # `heard_text`. Later passes transcribe only what follows (a speech's last words, not all of it again).
    heard_samples: int = 0
    heard_text: str = ""

    def audio(self) -> np.ndarray:
        return np.concatenate(self.frames) if self.frames else np.zeros(0, np.float32)

    def keep_heard(self, job: ReplyJob, resumed_t: float) -> None:
        """The user went on after a pause: if the dropped speculation `job` had transcribed a long stretch
        that ended in a real pause, those words stand (a pause is a safe place to cut: no word straddles it)."""
        heard = job.transcript
        new_s = (len(job.audio) - job.heard_samples) / SAMPLE_RATE  # a short stretch alone is easily misheard
        if (heard is None or heard.is_empty or job.naive or new_s < KEEP_HEARD_AFTER_S
                or resumed_t - job.audio_end_t < KEEP_HEARD_PAUSE_S):
            return
        self.heard_samples, self.heard_text = len(job.audio), heard.text


@dataclass
class ActiveTurn:
    """A turn that is over and being answered."""

    utt: Utterance
    job: ReplyJob
    committed_t: float
    announced_heard: bool = False
    announced_start: bool = False


class TurnState:
    def __init__(self, preroll_ms: int) -> None:
        self._preroll: collections.deque[tuple[np.ndarray, float]] = collections.deque(
            maxlen=max(1, preroll_ms * SAMPLE_RATE // 1000 // FRAME_SAMPLES))
        self.utt: Utterance | None = None  # the utterance being heard
        self.active: ActiveTurn | None = None  # the turn being answered
        self._next_id = 1

    def new_id(self) -> int:
        """A fresh id for an utterance or a reply (one sequence, so logs never mix them up)."""
        new = self._next_id
        self._next_id += 1
        return new

    def keep(self, frame: np.ndarray, t: float, *, may_go_on: bool) -> None:
        """Keep a microphone frame: in the open utterance, else in the pre-roll — and in the active turn's
        utterance too while the user may still be going on with it (`may_go_on`: her reply is not audible
        yet, or began less than `MERGE_WITHIN_S` ago), so a reopened or merged turn has all its audio."""
        if self.utt is not None:
            self.utt.frames.append(frame)
        else:
            self._preroll.append((frame, t))
        active = self.active
        if active is not None and may_go_on and active.utt is not self.utt:
            active.utt.frames.append(frame)

    def open(self, t: float) -> Utterance:
        """Speech started at `t`: a new utterance, with the pre-roll before it."""
        frames = [f for f, _ in self._preroll]
        audio_start = self._preroll[0][1] if self._preroll else t
        self._preroll.clear()
        utt = Utterance(self.new_id(), t, audio_start, frames)
        if self.active is not None:
            utt.over_reply = self.active.job.reply_id
        self.utt = utt
        return utt

    def reopen(self, t: float) -> tuple[ActiveTurn, float]:
        """The user speaks again at `t` before a word of her reply was heard: the active turn goes on as the
        open utterance (its dropped reply's long stretch of words kept). Returns the turn that was active and
        the pause the user resumed from (s)."""
        active = self.active
        assert active is not None
        utt = active.utt
        utt.keep_heard(active.job, t)
        pause_start = (utt.end_t or t) - utt.required_silence_s
        utt.end_t, utt.job = None, None
        self.active, self.utt = None, utt
        self._preroll.clear()
        return active, t - pause_start

    def merge(self, t: float) -> tuple[ActiveTurn, float]:
        """The user went on over her first words (their speech began at `t`): the utterance they started is
        dropped and the active turn's utterance, which kept every frame since, is open again in its place.
        Returns the turn that was active and the pause the user resumed from (s)."""
        active = self.active
        assert active is not None and self.utt is not None
        utt = active.utt
        pause_start = (utt.end_t or t) - utt.required_silence_s
        utt.end_t, utt.job = None, None
        self.active, self.utt = None, utt
        return active, t - pause_start

    def close(self, t: float, *, required_silence_s: float, longest_pause_s: float) -> Utterance | None:
        """The turn ended at `t`: the open utterance, closed (None when there was none)."""
        utt, self.utt = self.utt, None
        if utt is not None:
            utt.end_t = t
            utt.required_silence_s = required_silence_s
            utt.longest_pause_s = longest_pause_s
        return utt

    def commit(self, utt: Utterance, job: ReplyJob, now: float) -> ActiveTurn:
        utt.job = job
        self.active = ActiveTurn(utt, job, committed_t=now)
        return self.active

    def finish(self) -> ActiveTurn | None:
        """The active turn is done with (answered, dropped or cut off)."""
        active, self.active = self.active, None
        return active
