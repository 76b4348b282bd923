"""When the user speaks while a turn is being answered: they were not done, or they talk over her.

- before a word of her reply is audible: the turn is reopened (her draft dropped unheard);
- over her first words (within `MERGE_WITHIN_S` of them, for `barge_in_ms`): the two halves are merged into
  one turn, and her fragment is left out of the conversation;
- later, for `barge_in_ms`: a barge-in — she stops, and what she said is kept, cut where she stopped.
A shorter sound over her reply is a backchannel (the voice loop logs it when that utterance ends).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from voiceos.config import Config
from voiceos.listen.turn_detector import Phase, TurnDetector
from voiceos.loop.answering import Answering
from voiceos.loop.record import CutBy
from voiceos.loop.turn_state import MERGE_WITHIN_S, ActiveTurn, TurnState
from voiceos.measure.clock import SessionClock
from voiceos.measure.session_log import SessionLog

if TYPE_CHECKING:
    from voiceos.loop.voice_loop import LoopParts, LoopResult


class GoingOn:
    def __init__(self, config: Config, parts: LoopParts, turns: TurnState, answering: Answering,
                 detector: TurnDetector, clock: SessionClock, log: SessionLog, result: LoopResult, *,
                 streaming: bool) -> None:
        self.barge_in_s = config.session.barge_in_ms / 1000.0
        self.parts = parts
        self.turns = turns
        self.answering = answering
        self.detector = detector
        self.clock = clock
        self.log = log
        self.result = result
        self.streaming = streaming

    def may_go_on(self, active: ActiveTurn, t: float) -> bool:
        """The user may still be going on with the active turn: her reply is not audible yet, began less than
        `MERGE_WITHIN_S` ago, or was talked over that soon (its frames are kept in case)."""
        first = self.answering.first_sample_t(active)
        if first is None:
            return True
        utt = self.turns.utt
        started = utt.speech_start if utt is not None and utt.over_reply == active.job.reply_id else t
        return started - first < MERGE_WITHIN_S

    def reopen(self, t: float) -> None:
        """The user speaks again before Samantha has said a word: they were not done. Her reply is
        dropped unheard and their turn goes on, first half included."""
        self.parts.speaker.stop()
        active, pause_s = self.turns.reopen(t)
        active.job.cancel.set()
        self.parts.voice.discard(active.job.reply_id)
        self.log.write("turn_reopened", utterance=active.utt.utt_id, reply_id=active.job.reply_id,
                       pause_s=round(pause_s, 3))
        self.detector.went_on_after_end(pause_s)
        self.result.reopened += 1

    def check(self, now: float) -> None:
        """Speech over her reply for `barge_in_ms`: a merge if it began over her first words, else a barge-in."""
        active, utt = self.turns.active, self.turns.utt
        if active is None or utt is None or utt.over_reply != active.job.reply_id:
            return
        if self.detector.phase != Phase.SPEECH or now - utt.speech_start < self.barge_in_s:
            return
        first = self.answering.first_sample_t(active)
        if self.streaming and first is not None and utt.speech_start - first < MERGE_WITHIN_S:
            self.merge(utt.speech_start)
        else:
            self.barge_in(reason="barge-in")

    def merge(self, t: float) -> None:
        """The user went on over her first words ("I'm —"): they were not done. She stops, her fragment is
        left out of the conversation, and both halves of their turn are answered together."""
        active = self.turns.active
        assert active is not None
        spoken = self.answering.silence(active)
        active, pause_s = self.turns.merge(t)
        self.log.write("turn_merged", utterance=active.utt.utt_id, reply_id=active.job.reply_id, spoken=spoken,
                       pause_s=round(pause_s, 3), resumed_at=round(t, 4))
        self.detector.went_on_after_end(pause_s)
        self.result.merged += 1

    def barge_in(self, reason: str) -> None:
        """She stops; the turn is finished as interrupted, with what she said."""
        active = self.turns.active
        if active is None:
            return
        stopped_at = self.clock.now()
        record = self.answering.stop(active, CutBy.BARGE_IN)
        self.log.write("barge_in", reply_id=active.job.reply_id, reason=reason, stopped_at=round(stopped_at, 4),
                       spoken=record.reply.text if record else "")
