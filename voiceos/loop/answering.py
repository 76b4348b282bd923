"""The answering half of the voice loop: from the moment a turn is committed to its `turn` record.

It watches the active turn's reply (its first sound, its end), drops a turn that held no words, and
finishes a turn — answered, or cut off by a barge-in, Ctrl-C or a lost device (`CutBy`): the record is built
and logged, the exchange joins the conversation, it is announced (`loop_events`), her reply's audio is written.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from voiceos.audio.echo_gate import EchoGate
from voiceos.audio.wav import write_wav
from voiceos.loop.loop_events import (
    HerState,
    ReplyProgressed,
    StateChanged,
    TurnDropped,
    TurnFinished,
    TurnHeard,
)
from voiceos.loop.record import CutBy, TurnRecord
from voiceos.loop.turn_record_builder import FinishedTurn, build_turn_record
from voiceos.loop.turn_state import ActiveTurn, TurnState
from voiceos.think.jobs import WarmJob

if TYPE_CHECKING:
    from voiceos.loop.voice_loop import LoopMeasures, LoopOptions, LoopParts, LoopResult

KEEP_AFTER_ANSWER_S = 5.0  # work intervals older than this before a finished turn's speech are let go


class Answering:
    def __init__(self, turns: TurnState, parts: LoopParts, measures: LoopMeasures, options: LoopOptions,
                 gate: EchoGate, result: LoopResult) -> None:
        self.turns = turns
        self.parts = parts
        self.measures = measures
        self.options = options
        self.gate = gate
        self.result = result
        self.max_lag_s = 0.0  # how far behind the audio the loop ran (worst case) since the last record
        self.announcer = options.announcer
        self._progress_shown = ReplyProgressed("", "")  # the last announced

    def audible(self, active: ActiveTurn) -> bool:
        """Some of her reply has reached the speaker."""
        progress = self.parts.speaker.progress.get(active.job.reply_id)
        return progress is not None and progress.played > 0

    def first_sample_t(self, active: ActiveTurn) -> float | None:
        """When the first sample of her reply reached the speaker (session clock), if it has."""
        progress = self.parts.speaker.progress.get(active.job.reply_id)
        return progress.first_sample_t if progress is not None else None

    def silence(self, active: ActiveTurn) -> str:
        """Stop her reply without finishing the turn (it goes on); returns what she had said of it."""
        progress = self.parts.speaker.progress.get(active.job.reply_id)
        self.parts.speaker.stop()
        active.job.cancel.set()
        self.parts.voice.discard(active.job.reply_id)
        return progress.spoken_text() if progress is not None else ""

    def announce_heard(self, active: ActiveTurn) -> None:
        """The turn's words, final, announced once (as soon as they are known)."""
        if not active.announced_heard and active.job.transcript is not None:
            active.announced_heard = True
            if not active.job.transcript.is_empty:
                self.announcer.announce(TurnHeard(active.job.transcript.text))

    def _announce_state(self, state: HerState) -> None:
        self.announcer.announce(StateChanged(state, self.measures.clock.now()))

    def _announce_progress(self, active: ActiveTurn) -> None:
        """Her reply as far as it is written and as far as it has been heard, when either moved on."""
        if not self.announcer.wants(ReplyProgressed):
            return
        reply_id = active.job.reply_id
        progress = self.parts.speaker.progress.get(reply_id)
        now = ReplyProgressed(" ".join(self.parts.voice.reply(reply_id).clauses),
                              progress.spoken_text() if progress is not None else "")
        if now != self._progress_shown:
            self._progress_shown = now
            self.announcer.announce(now)

    def stop(self, active: ActiveTurn, cut_by: CutBy = CutBy.BARGE_IN) -> TurnRecord | None:
        """Silence her now and finish the turn as interrupted by `cut_by` (what was said is kept)."""
        self.silence(active)
        return self.finish(active, cut_by)

    def check(self) -> None:
        """Note the reply's first sound; finish the turn once every word of it has been played."""
        active = self.turns.active
        if active is None:
            return
        progress = self.parts.speaker.progress.get(active.job.reply_id)
        if not active.announced_start and progress is not None and progress.first_sample_t is not None:
            active.announced_start = True
            self.measures.log.write("reply_start", reply_id=active.job.reply_id,
                                    first_sample_t=round(progress.first_sample_t, 4))
            self._announce_state(HerState.SPEAKING)
        self._announce_progress(active)
        if not active.job.finished.is_set():
            return
        transcript = active.job.transcript
        if transcript is None or transcript.is_empty:
            self._drop(active, transcript.dropped_reason if transcript else "")
            return
        if not self.parts.voice.reply(active.job.reply_id).finished and not active.job.error:
            return
        if progress is not None and progress.played < progress.queued:
            return
        self.finish(active)

    def _drop(self, active: ActiveTurn, reason: str) -> None:
        self.turns.finish()
        self.result.dropped += 1
        self.measures.log.write("dropped", utterance=active.utt.utt_id, reason=reason or "no words",
                                speech_start=round(active.utt.speech_start, 4))
        self.announcer.announce(TurnDropped(reason or "no words"))
        self._announce_state(HerState.HEARING if self.turns.utt is not None else HerState.LISTENING)
        self.parts.source.turn_done()

    def finish(self, active: ActiveTurn, cut_by: CutBy | None = None) -> TurnRecord | None:
        """The turn is over: log its record, remember the exchange, write her reply's audio. `cut_by`: what
        stopped her from outside (the turn is interrupted); None when her reply ran its course (the record
        still says when the guard cut it short)."""
        interrupted = cut_by is not None
        self.turns.finish()
        job, responder = active.job, self.parts.responder
        if job.transcript is None or job.transcript.is_empty:
            self.parts.source.turn_done()
            self._announce_state(HerState.HEARING if self.turns.utt is not None else HerState.LISTENING)
            return None
        if self.measures.meter is not None:
            self.measures.meter.sample_now()
        # cut off before the worker timed its words (it does so after writing the reply): time them now
        responder.hearing.add_word_times(job, even_if_cancelled=True)
        record = self._record(active, cut_by)
        record.t = self.measures.log.write("turn", **record.fields())["t"]
        self.max_lag_s = 0.0
        self.result.turns += 1
        self.result.interrupted += int(interrupted)
        self.result.records.append(record)
        # the words as the LLM read them (the same words, maybe spelled as an earlier pass wrote them)
        learned = responder.remember(job.prompt_text or job.transcript.text, record.reply.text, interrupted)
        if learned:
            self.measures.log.write("remembered", turn=record.turn, saved=responder.conversation.memory is not None,
                                    facts=[{"kind": f.kind, "value": f.value} for f in learned])
        self.announce_heard(active)
        self._announce_progress(active)
        self.announcer.announce(TurnFinished(record))
        self._announce_state(HerState.HEARING if self.turns.utt is not None else HerState.LISTENING)
        self._write_reply_audio(job.reply_id, interrupted)
        self.parts.voice.forget_before(job.reply_id)  # a long session keeps no old replies' audio
        self.parts.speaker.forget_before(job.reply_id)
        self.measures.work.prune(active.utt.speech_start - KEEP_AFTER_ANSWER_S)
        if not interrupted:
            responder.submit(WarmJob(active.utt.utt_id))
        self.parts.source.turn_done()
        return record

    def _record(self, active: ActiveTurn, cut_by: CutBy | None) -> TurnRecord:
        parts, reply_id = self.parts, active.job.reply_id
        conversation = parts.responder.conversation
        return build_turn_record(FinishedTurn(
            turn=self.result.turns + 1, mode=self.options.mode, utt=active.utt, job=active.job,
            stopped_by=cut_by, progress=parts.speaker.progress.get(reply_id),
            voiced=parts.voice.reply(reply_id), decided_t=active.utt.end_t or self.measures.clock.now(),
            timed=parts.source.realtime, max_lag_s=self.max_lag_s, gate=self.gate,
            input_overflows=parts.source.overflows, output_underflows=parts.speaker.underflows,
            exchanges_before=len(conversation.exchanges), dropped_so_far=conversation.dropped,
            n_ctx=parts.responder.llm.n_ctx,
        ), self.measures)

    def _write_reply_audio(self, reply_id: int, interrupted: bool) -> None:
        voiced = self.parts.voice.reply(reply_id)
        if self.options.out_dir is None or not voiced.audio:
            return
        audio = np.concatenate(voiced.audio)
        if interrupted:
            audio = audio[: self.parts.speaker.played_samples(reply_id)]
        write_wav(self.options.out_dir / f"turn-{self.result.turns:02d}-samantha.wav", audio)
