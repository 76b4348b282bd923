"""A finished turn → its `TurnRecord`: word timings placed on the audio's silences, the pause ledger, the
latencies from the end of speech, and what the stages report about themselves."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from voiceos.audio.echo_gate import EchoGate
from voiceos.audio.interfaces import ReplyProgress
from voiceos.config import SAMPLE_RATE, Mode
from voiceos.listen.transcript import Transcript, Word
from voiceos.listen.word_timing import HOP_S, frame_energy_db, refine_words, silence_mask
from voiceos.loop.record import (
    AudioRecord,
    CutBy,
    EchoRecord,
    EndpointRecord,
    LlmRecord,
    MemoryRecord,
    PlaybackRecord,
    ReplyRecord,
    SttRecord,
    Timings,
    Trace,
    TurnRecord,
    UserSpeech,
)
from voiceos.loop.turn_state import Utterance
from voiceos.measure.ledger import build_ledger
from voiceos.speak.voice_worker import VoicedReply
from voiceos.think.jobs import ReplyJob

if TYPE_CHECKING:
    from voiceos.loop.voice_loop import LoopMeasures


@dataclass
class FinishedTurn:
    """Everything the record of a finished turn is made from (gathered by the voice loop)."""

    turn: int
    mode: Mode
    utt: Utterance
    job: ReplyJob  # its transcript is known and not empty
    stopped_by: CutBy | None  # what stopped her from outside (barge-in, Ctrl-C, a lost device); None: nothing
    progress: ReplyProgress | None  # None when none of the reply reached the speaker
    voiced: VoicedReply
    decided_t: float  # end of turn decided (session clock)
    timed: bool  # audio came in real time, so latencies mean something
    max_lag_s: float
    gate: EchoGate
    input_overflows: int
    output_underflows: int
    exchanges_before: int
    dropped_so_far: int
    n_ctx: int

    @property
    def interrupted(self) -> bool:
        return self.stopped_by is not None

    @property
    def cut_by(self) -> CutBy | None:
        """Why her reply was cut short: what stopped her, else the guard when it gave up, else None."""
        if self.stopped_by is not None:
            return self.stopped_by
        return CutBy.GUARD if self.job.guard_cut else None


def build_turn_record(turn: FinishedTurn, measures: LoopMeasures) -> TurnRecord:
    job, transcript = turn.job, turn.job.transcript
    assert transcript is not None
    progress = turn.progress or ReplyProgress()
    words = timed_words(transcript, job)
    speech_end = words[-1].end if words else job.audio_start + last_sound_s(job.audio)
    # Speech starts where the VAD heard it, or earlier when Whisper places the first word before that.
    speech_start = min(turn.utt.speech_start, words[0].start) if words else turn.utt.speech_start
    ledger = build_ledger(words, speech_start, turn.decided_t, measures.meter, measures.rates, measures.work)
    cut_by = turn.cut_by
    return TurnRecord(
        turn=turn.turn, mode=turn.mode.value,
        user=UserSpeech(transcript.text, [_rounded(w) for w in words], round(speech_start, 4), round(speech_end, 4)),
        reply=ReplyRecord(_spoken(turn, progress), turn.interrupted, job.reply_text or " ".join(job.drafted),
                          list(job.guard_hits), job.reply_id, cut_by.value if cut_by is not None else None),
        timings_ms=_timings(turn, transcript, progress, speech_end),
        endpoint=EndpointRecord(
            round(job.end_probability, 4) if job.end_probability is not None else None,
            round(turn.utt.required_silence_s * 1000.0), round(turn.utt.longest_pause_s * 1000.0),
            round(turn.utt.voice_complete_p, 4) if turn.utt.voice_complete_p is not None else None),
        llm=LlmRecord(job.stats.prompt_tokens, job.stats.reused_tokens, job.stats.read_tokens,
                      job.stats.generated_tokens, round(job.stats.decode_tps, 2), job.speculative),
        stt=SttRecord(transcript.window_frames, round(transcript.audio_s, 3), round(transcript.earlier_s, 3)),
        loop_max_lag_ms=round(turn.max_lag_s * 1000.0, 1),
        trace_ms=_trace(turn, progress, speech_end),
        playback=PlaybackRecord(round(progress.gap_s * 1000.0, 1), round(progress.played / SAMPLE_RATE, 3),
                                len(progress.chunk_bounds)),
        pauses=ledger.to_record(),
        echo=EchoRecord(turn.gate.cancelled_frames, round(turn.gate.correlation, 3)),
        audio=AudioRecord(turn.input_overflows, turn.output_underflows),
        memory=MemoryRecord(turn.exchanges_before, turn.dropped_so_far, turn.n_ctx),
    )


def _spoken(turn: FinishedTurn, progress: ReplyProgress) -> str:
    """What she actually said: all of it, or as far as she got when she was cut off."""
    if not turn.interrupted:
        return turn.job.reply_text
    return progress.spoken_text() if progress.played else ""


def _since(turn: FinishedTurn, speech_end: float, t: float | None) -> float | None:
    """ms from the end of speech to `t`; None when not timed."""
    return round((t - speech_end) * 1000.0, 1) if t is not None and turn.timed else None


def _timings(turn: FinishedTurn, transcript: Transcript, progress: ReplyProgress, speech_end: float) -> Timings:
    job = turn.job
    heard_now_s = max(transcript.audio_s - transcript.earlier_s, 1e-6)
    return Timings(
        endpoint=_since(turn, speech_end, turn.decided_t),
        stt=round(transcript.stt_ms, 1),
        stt_rtf=round(transcript.stt_ms / 1000.0 / heard_now_s, 3),
        llm_first_token=_since(turn, speech_end, job.first_token_t),
        first_clause=_since(turn, speech_end, job.first_clause_t),
        tts_first_audio=_since(turn, speech_end, turn.voiced.first_audio_t),
        voice_to_voice=_since(turn, speech_end, progress.first_sample_t),
    )


def _trace(turn: FinishedTurn, progress: ReplyProgress, speech_end: float) -> Trace:
    job = turn.job

    def since(t: float | None) -> float | None:
        return _since(turn, speech_end, t)

    return Trace(
        pause_heard=since(job.audio_end_t), job_submitted=since(job.submitted_t), job_started=since(job.started_t),
        stt_done=since(job.stt_done_t), read_done=since(job.read_done_t), turn_decided=since(turn.decided_t),
        first_token=since(job.first_token_t), first_clause=since(job.first_clause_t),
        first_audio_ready=since(turn.voiced.first_audio_t), first_sample_out=since(progress.first_sample_t),
    )


def timed_words(transcript: Transcript, job: ReplyJob) -> list[Word]:
    """Whisper's words moved onto the audio's silences, then onto the session clock."""
    return [w.shifted(job.audio_start) for w in refine_words(transcript.words, job.audio)]


def _rounded(w: Word) -> Word:
    return Word(w.word, round(w.start, 4), round(w.end, 4), round(w.prob, 3))


def last_sound_s(samples: np.ndarray) -> float:
    """Where the last sound in `samples` ends (s): the speech end when word timings are not available
    (a reply cut off before the word-timing pass ran)."""
    silent = silence_mask(frame_energy_db(samples))
    sound = np.flatnonzero(~silent)
    return float((sound[-1] + 1) * HOP_S) if sound.size else len(samples) / SAMPLE_RATE
