"""The voice loop: audio in → VAD → turn taking → responder (STT, LLM) → voice (TTS) → audio out.

`VoiceLoop.run()` is the conversation's one responsive thread. It reads 32 ms blocks, gates its own
echo, runs the VAD and the turn detector, hands work to the responder (a worker thread) and voice (another
worker), commits or discards speculative replies, stops Samantha when she is talked over, and writes one
`turn` record per answered utterance. It never runs a model itself except the tiny VAD.
"""

from __future__ import annotations

import collections
import logging
import queue
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from voiceos.audio import write_wav
from voiceos.audio_in import AudioSource
from voiceos.audio_out import ReplyProgress
from voiceos.clock import SessionClock
from voiceos.config import FRAME_SAMPLES, SAMPLE_RATE, Config
from voiceos.cpu_meter import CpuMeter
from voiceos.echo_gate import EchoGate
from voiceos.endpoint import Phase, TurnDetector
from voiceos.errors import DeviceError
from voiceos.ledger import Rates, TimedWord, WorkLog, build_ledger
from voiceos.responder import PartialJob, ReplyJob, Responder, WarmJob
from voiceos.session_log import SessionLog
from voiceos.stt import Transcript
from voiceos.vad import StreamingVad
from voiceos.voice import VoiceWorker
from voiceos.word_timing import HOP_S, frame_energy_db, refine_words, silence_mask

log = logging.getLogger(__name__)

# A speculation dropped because the user went on keeps its words when it transcribed at least this much new
# audio (after words kept earlier) and the pause was at least this long; shorter stretches are easily misheard
# alone and cheap to transcribe again with more context.
KEEP_HEARD_AFTER_S = 3.0
KEEP_HEARD_PAUSE_S = 0.3
LEVEL_BLOCK_S = 0.008  # loudness blocks: four to a VAD frame


class Speakerlike(Protocol):
    progress: dict[int, ReplyProgress]

    def play(self, reply_id: int, samples: np.ndarray, text: str = "") -> None: ...

    def played_samples(self, reply_id: int) -> int: ...

    def stop(self) -> None: ...

    def alive(self) -> bool: ...

    def reference(self, t0: float, t1: float) -> np.ndarray: ...

    def last_audible_t(self) -> float: ...


class TurnPrinter(Protocol):
    def heard(self, text: str) -> None: ...

    def replied(self, text: str, record: dict[str, Any]) -> None: ...


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
    # Transcribed for good at a long pause inside the utterance: the first `heard_samples` of audio() say
    # `heard_text`. Later passes transcribe only what follows (a speech's last words, not all of it again).
    heard_samples: int = 0
    heard_text: str = ""

    def audio(self) -> np.ndarray:
        return np.concatenate(self.frames) if self.frames else np.zeros(0, np.float32)


@dataclass
class ActiveTurn:
    utt: Utterance
    job: ReplyJob
    committed_t: float
    printed_heard: bool = False
    announced_start: bool = False


@dataclass
class LoopResult:
    turns: int = 0
    interrupted: int = 0
    dropped: int = 0
    records: list[dict[str, Any]] = field(default_factory=list)


class VoiceLoop:
    def __init__(
        self, config: Config, *, clock: SessionClock, source: AudioSource, speaker: Speakerlike,
        vad: StreamingVad, responder: Responder, voice: VoiceWorker, session_log: SessionLog,
        meter: CpuMeter | None, rates: Rates | None, work: WorkLog, printer: TurnPrinter | None = None,
        mode: str = "streaming", out_dir: Path | None = None, max_turns: int | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.source = source
        self.speaker = speaker
        self.vad = vad
        self.responder = responder
        self.voice = voice
        self.log = session_log
        self.meter = meter
        self.rates = rates
        self.work = work
        self.printer = printer
        self.mode = mode
        self.out_dir = out_dir
        self.max_turns = max_turns
        self.detector = TurnDetector(config.vad, config.endpoint)
        if mode == "naive":
            self.detector.fixed_silence_s = NAIVE_SILENCE_S
        self.gate = EchoGate(speaker, config.session)
        self.result = LoopResult()
        self._preroll: collections.deque[tuple[np.ndarray, float]] = collections.deque(
            maxlen=max(1, config.vad.preroll_ms * SAMPLE_RATE // 1000 // FRAME_SAMPLES))
        self._utt: Utterance | None = None
        self._active: ActiveTurn | None = None
        self._next_id = 1
        self._carry = np.zeros(0, np.float32)
        self._carry_t = 0.0
        self._stopping = False
        self.max_lag_s = 0.0  # how far behind the audio the loop ran (worst case), reported per turn

    # --- main loop --------------------------------------------------------------------------------

    def run(self) -> LoopResult:
        self.log.write("ready", mode=self.mode)
        try:
            while not self._stopping:
                chunk = self.source.read(timeout=0.05)
                if chunk is not None:
                    self.max_lag_s = max(self.max_lag_s, self.clock.now() - chunk.end)
                    self._feed(chunk.samples, chunk.start)
                self._drain_responder()
                self._check_active()
                if self._utt is None and self._active is None and getattr(self.source, "heard_nothing", bool)():
                    self._turn_over()  # a WAV turn without speech (silence, noise): on to the next
                if not self.speaker.alive():
                    raise DeviceError("the output device stopped (unplugged?)")
                if self.max_turns is not None and self.result.turns >= self.max_turns and self._active is None:
                    break
                if chunk is None and self.source.finished() and self._active is None:
                    if self._utt is None:
                        break
                    self._close_turn()
        except KeyboardInterrupt:
            self._abort("interrupted by the user (Ctrl-C)")
            raise
        except DeviceError as exc:
            self._abort(str(exc))
            raise
        return self.result

    def _close_turn(self) -> None:
        """The input ended with the user's turn still open: it ends here. A speculation that stopped short of
        the last words heard is dropped, and the whole turn is transcribed."""
        utt = self._utt
        last_voiced = self.detector.last_voiced_end
        job = utt.job if utt is not None else None
        if job is not None and job.audio_start + len(job.audio) / SAMPLE_RATE < last_voiced:
            self._on_resume(last_voiced)
        self._on_end(self.detector.close(self._carry_t).t)

    def _abort(self, why: str) -> None:
        """Stop speaking, keep what was said: the reply in flight is logged as interrupted."""
        self.speaker.stop()
        if self._active is not None:
            self._active.job.cancel.set()
            self._finalize(self._active, interrupted=True)
        self.log.write("error" if "device" in why else "stopped", message=why)

    def _feed(self, samples: np.ndarray, start: float) -> None:
        if self._carry.size:
            samples = np.concatenate([self._carry, samples])
            start = self._carry_t
        n = len(samples) // FRAME_SAMPLES
        for i in range(n):
            frame = samples[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES]
            t = start + i * FRAME_SAMPLES / SAMPLE_RATE
            self._frame(frame, t)
        self._carry = samples[n * FRAME_SAMPLES :]
        self._carry_t = start + n * FRAME_SAMPLES / SAMPLE_RATE

    def _frame(self, frame: np.ndarray, t: float) -> None:
        heard, echo_possible = self.gate.clean(frame, t)
        prob = self.vad(heard)
        if echo_possible and prob < self.config.vad.echo_threshold:
            prob = 0.0  # half-duplex: while she may be heard, only clear speech counts
        if self._utt is not None:
            self._utt.frames.append(frame)
        else:
            self._preroll.append((frame, t))
            if self._active is not None and not self._audible(self._active):
                self._active.utt.frames.append(frame)  # kept in case the user was not done after all
        # loudness in 8 ms blocks places the end of the voice; the plain cascade hears Silero alone
        levels = frame_energy_db(heard, LEVEL_BLOCK_S).tolist() if self.mode == "streaming" else None
        for event in self.detector.push(prob, t, levels):
            getattr(self, f"_on_{event.kind}")(event.t)
        self._check_barge_in(t + FRAME_SAMPLES / SAMPLE_RATE)

    # --- turn events ------------------------------------------------------------------------------

    def _audible(self, active: ActiveTurn) -> bool:
        progress = self.speaker.progress.get(active.job.reply_id)
        return progress is not None and progress.played > 0

    def _on_start(self, t: float) -> None:
        active = self._active
        if active is not None and not self._audible(active):
            self._reopen(active, t)
            return
        frames = [f for f, _ in self._preroll]
        audio_start = self._preroll[0][1] if self._preroll else t
        self._preroll.clear()
        utt = Utterance(self._next_id, t, audio_start, frames)
        self._next_id += 1
        if self._active is not None:
            utt.over_reply = self._active.job.reply_id
        self._utt = utt
        log.debug("speech start %.2f", t)

    def _reopen(self, active: ActiveTurn, t: float) -> None:
        """The user speaks again before Samantha has said a word: they were not done. Her reply is
        dropped unheard and their turn goes on, first half included."""
        self.speaker.stop()
        active.job.cancel.set()
        self.voice.discard(active.job.reply_id)
        utt = active.utt
        self._keep_heard(utt, active.job, t)
        pause_start = (utt.end_t or t) - utt.required_silence_s
        self.log.write("turn_reopened", utterance=utt.utt_id, reply_id=active.job.reply_id,
                       pause_s=round(t - pause_start, 3))
        self.detector.longest_pause_s = max(self.detector.longest_pause_s, t - pause_start)
        utt.end_t, utt.job = None, None
        self._active = None
        self._utt = utt
        self._preroll.clear()

    def _on_partial(self, t: float) -> None:
        if self.mode == "streaming" and self._utt is not None and self.responder.idle():
            utt = self._utt
            self.responder.submit(PartialJob(utt.utt_id, audio=utt.audio(), heard_samples=utt.heard_samples,
                                             heard_text=utt.heard_text))

    def _on_speculate(self, t: float) -> None:
        utt = self._utt
        if self.mode != "streaming" or utt is None or self._active is not None:
            return
        job = ReplyJob(utt.utt_id, reply_id=self._new_reply_id(), audio=utt.audio(),
                       audio_start=utt.audio_start, speculative=True, submitted_t=self.clock.now(),
                       heard_samples=utt.heard_samples, heard_text=utt.heard_text)
        utt.job = job
        self.responder.submit(job)

    def _keep_heard(self, utt: Utterance, job: ReplyJob, resumed_t: float) -> None:
        """The user went on after a pause: if the dropped speculation had transcribed a long stretch that
        ended in a real pause, those words stand (a pause is a safe place to cut: no word straddles it)."""
        heard = job.transcript
        covered_s = len(job.audio) / SAMPLE_RATE
        new_s = (len(job.audio) - job.heard_samples) / SAMPLE_RATE  # a short stretch alone is easily misheard
        if (heard is None or heard.is_empty or job.naive or new_s < KEEP_HEARD_AFTER_S
                or resumed_t - (job.audio_start + covered_s) < KEEP_HEARD_PAUSE_S):
            return
        utt.heard_samples, utt.heard_text = len(job.audio), heard.text

    def _on_resume(self, t: float) -> None:
        utt = self._utt
        if utt is not None and utt.job is not None:
            job = utt.job
            self._keep_heard(utt, job, t)
            job.cancel.set()
            self.voice.discard(job.reply_id)
            self.log.write("speculation_discarded", utterance=utt.utt_id, reply_id=job.reply_id,
                           heard=job.transcript.text if job.transcript else None,
                           drafted=" ".join(job.drafted), resumed_at=round(t, 4))
            utt.job = None

    def _on_end(self, t: float) -> None:
        utt = self._utt
        self._utt = None
        if utt is None:
            return
        utt.end_t = t
        utt.required_silence_s = self.detector.required_silence_s
        utt.longest_pause_s = self.detector.longest_pause_s
        if self._active is not None:  # a short sound over her reply ("mm-hm"): not a turn of its own
            self.log.write("backchannel", utterance=utt.utt_id, speech_start=round(utt.speech_start, 4),
                           seconds=round(t - utt.speech_start, 3))
            return
        job = utt.job
        if job is None or job.cancelled():
            job = ReplyJob(utt.utt_id, reply_id=self._new_reply_id(), audio=utt.audio(),
                           audio_start=utt.audio_start, speculative=False, naive=self.mode == "naive",
                           submitted_t=self.clock.now(), heard_samples=utt.heard_samples,
                           heard_text=utt.heard_text)
            if job.naive:
                self.voice.play_whole(job.reply_id)
            self.responder.submit(job)
            utt.job = job
        self.voice.commit(job.reply_id)
        self._active = ActiveTurn(utt, job, committed_t=self.clock.now())
        if job.transcript is not None:
            self._print_heard(self._active)

    def _new_reply_id(self) -> int:
        rid = self._next_id
        self._next_id += 1
        return rid

    # --- barge-in ---------------------------------------------------------------------------------

    def _check_barge_in(self, now: float) -> None:
        active, utt = self._active, self._utt
        if active is None or utt is None or utt.over_reply != active.job.reply_id:
            return
        if self.detector.phase != Phase.SPEECH:
            return
        if now - utt.speech_start >= self.config.session.barge_in_ms / 1000.0:
            self._barge_in(reason="barge-in")

    def _barge_in(self, reason: str) -> None:
        active = self._active
        if active is None:
            return
        stopped_at = self.clock.now()
        self.speaker.stop()
        active.job.cancel.set()
        self.voice.discard(active.job.reply_id)
        record = self._finalize(active, interrupted=True)
        self.log.write("barge_in", reply_id=active.job.reply_id, reason=reason, stopped_at=round(stopped_at, 4),
                       spoken=record["reply"]["text"] if record else "")

    # --- results ----------------------------------------------------------------------------------

    def _drain_responder(self) -> None:
        while True:
            try:
                kind, payload = self.responder.events.get_nowait()
            except queue.Empty:
                return
            if kind == "transcript":
                job: ReplyJob = payload
                utt = self._utt
                if utt is not None and utt.job is job and job.transcript is not None:
                    self.detector.hear_transcript(job.transcript.text, job.end_probability)
                if self._active is not None and self._active.job is job:
                    self._print_heard(self._active)
            elif kind == "error":
                job_, exc = payload
                self.log.write("error", message=f"{type(exc).__name__}: {exc}", utterance=job_.utt_id)

    def _print_heard(self, active: ActiveTurn) -> None:
        if not active.printed_heard and active.job.transcript is not None and self.printer:
            active.printed_heard = True
            if not active.job.transcript.is_empty:
                self.printer.heard(active.job.transcript.text)

    def _check_active(self) -> None:
        active = self._active
        if active is None:
            return
        if not active.announced_start:
            progress = self.speaker.progress.get(active.job.reply_id)
            if progress is not None and progress.first_sample_t is not None:
                active.announced_start = True
                self.log.write("reply_start", reply_id=active.job.reply_id,
                               first_sample_t=round(progress.first_sample_t, 4))
        if not active.job.finished.is_set():
            return
        transcript = active.job.transcript
        if transcript is None or transcript.is_empty:
            self._drop(active, transcript)
            return
        voiced = self.voice.reply(active.job.reply_id)
        if not voiced.finished and not active.job.error:
            return
        progress = self.speaker.progress.get(active.job.reply_id)
        if progress is not None and progress.played < progress.queued:
            return
        self._finalize(active, interrupted=False)

    def _drop(self, active: ActiveTurn, transcript: Transcript | None) -> None:
        self._active = None
        self.result.dropped += 1
        self.log.write("dropped", utterance=active.utt.utt_id,
                       reason=(transcript.dropped_reason if transcript else "") or "no words",
                       speech_start=round(active.utt.speech_start, 4))
        self._turn_over()

    def _turn_over(self) -> None:
        turn_done = getattr(self.source, "turn_done", None)
        if turn_done is not None:
            turn_done()

    def _finalize(self, active: ActiveTurn, *, interrupted: bool) -> dict[str, Any] | None:
        self._active = None
        job, utt = active.job, active.utt
        transcript = job.transcript
        if transcript is None or transcript.is_empty:
            self._turn_over()
            return None
        progress = self.speaker.progress.get(job.reply_id, ReplyProgress())
        spoken = spoken_text(progress) if interrupted else job.reply_text
        if interrupted and progress.played == 0:
            spoken = ""
        words = self._timed_words(transcript, job, utt)
        speech_end = words[-1].end if words else job.audio_start + last_sound_s(job.audio)
        decided = utt.end_t if utt.end_t is not None else self.clock.now()
        if self.meter is not None:
            self.meter.sample_now()
        # Speech starts where the VAD heard it, or earlier when Whisper places the first word before that.
        speech_start = min(utt.speech_start, words[0].start) if words else utt.speech_start
        ledger = build_ledger(words, speech_start, decided, self.meter, self.rates, self.work)
        voiced = self.voice.reply(job.reply_id)

        timed = getattr(self.source, "realtime", True)  # audio fed faster than real time has no latency

        def since_end(t: float | None) -> float | None:
            return round((t - speech_end) * 1000.0, 1) if t is not None and timed else None

        record = self.log.write(
            "turn",
            turn=self.result.turns + 1,
            mode=self.mode,
            user={
                "text": transcript.text,
                "words": [{"word": w.word, "start": round(w.start, 4), "end": round(w.end, 4),
                           "prob": round(w.prob, 3)} for w in words],
                "speech_start": round(speech_start, 4),
                "speech_end": round(speech_end, 4),
            },
            reply={"text": spoken, "interrupted": interrupted, "generated": job.reply_text or " ".join(job.drafted),
                   "guard_hits": job.guard_hits, "reply_id": job.reply_id},
            timings_ms={
                "endpoint": since_end(decided),
                "stt": round(transcript.stt_ms, 1),
                "stt_rtf": round(transcript.stt_ms / 1000.0 / max(transcript.audio_s - transcript.earlier_s, 1e-6), 3),
                "llm_first_token": since_end(job.first_token_t),
                "first_clause": since_end(job.first_clause_t),
                "tts_first_audio": since_end(voiced.first_audio_t),
                "voice_to_voice": since_end(progress.first_sample_t),
            },
            endpoint={"end_probability": round(job.end_probability, 4) if job.end_probability is not None else None,
                      "required_silence_ms": round(utt.required_silence_s * 1000.0),
                      "longest_inner_pause_ms": round(utt.longest_pause_s * 1000.0)},
            llm={"prompt_tokens": job.stats.prompt_tokens, "reused_tokens": job.stats.reused_tokens,
                 "read_tokens": job.stats.read_tokens, "generated_tokens": job.stats.generated_tokens,
                 "decode_tps": round(job.stats.decode_tps, 2), "speculative": job.speculative},
            stt={"window_frames": transcript.window_frames, "audio_s": round(transcript.audio_s, 3),
                 "heard_earlier_s": round(transcript.earlier_s, 3)},
            loop_max_lag_ms=round(self.max_lag_s * 1000.0, 1),
            trace_ms={  # where the time went, from speech end (session clock)
                "pause_heard": since_end(job.audio_start + len(job.audio) / SAMPLE_RATE),
                "job_submitted": since_end(job.submitted_t), "job_started": since_end(job.started_t),
                "stt_done": since_end(job.stt_done_t), "read_done": since_end(job.read_done_t),
                "turn_decided": since_end(decided),
                "first_token": since_end(job.first_token_t), "first_clause": since_end(job.first_clause_t),
                "first_audio_ready": since_end(voiced.first_audio_t),
                "first_sample_out": since_end(progress.first_sample_t),
            },
            playback={"gaps_ms": round(playback_gap_s(progress) * 1000.0, 1),
                      "seconds": round(progress.played / SAMPLE_RATE, 3), "clauses": len(progress.chunk_bounds)},
            pauses=ledger.to_record(),
            echo={"cancelled_frames": self.gate.cancelled_frames, "correlation": round(self.gate.correlation, 3)},
            audio={"input_overflows": self.source.overflows,
                   "output_underflows": getattr(self.speaker, "underflows", 0)},
            memory={"exchanges_before": len(self.responder.conversation.exchanges),
                    "dropped_so_far": self.responder.conversation.dropped, "n_ctx": self.responder.llm.n_ctx},
        )
        self.max_lag_s = 0.0
        self.result.turns += 1
        self.result.interrupted += int(interrupted)
        self.result.records.append(record)
        with self.responder.conversation_lock:
            # the words as the LLM read them (the same words, maybe spelled as an earlier pass wrote them)
            self.responder.conversation.add(active.job.prompt_text or transcript.text, spoken, interrupted)
        if self.printer:
            self._print_heard(active)
            self.printer.replied(spoken, record)
        if self.out_dir is not None and voiced.audio:
            audio = np.concatenate(voiced.audio)
            if interrupted:
                audio = audio[: progress.played]
            write_wav(self.out_dir / f"turn-{self.result.turns:02d}-samantha.wav", audio)
        self.work.prune(utt.speech_start - 5.0)
        if not interrupted:
            self.responder.submit(WarmJob(utt.utt_id))
        self._turn_over()
        return record

    def _timed_words(self, transcript: Transcript, job: ReplyJob, utt: Utterance) -> list[TimedWord]:
        """Whisper's words moved onto the audio's silences, then onto the session clock."""
        refined = refine_words(transcript.words, job.audio)
        return [TimedWord(w.word, job.audio_start + w.start, job.audio_start + w.end, w.prob) for w in refined]


NAIVE_SILENCE_S = 0.8  # the plain cascade's fixed end-of-turn silence (Pipecat's default stop_secs)


def last_sound_s(samples: np.ndarray) -> float:
    """Where the last sound in `samples` ends (s): the speech end when word timings are not available
    (a reply cut off before the word-timing pass ran)."""
    silent = silence_mask(frame_energy_db(samples))
    sound = np.flatnonzero(~silent)
    return float((sound[-1] + 1) * HOP_S) if sound.size else len(samples) / SAMPLE_RATE


def playback_gap_s(progress: ReplyProgress) -> float:
    """Silence the device played inside a reply because the next clause was not ready (0 = gapless)."""
    if progress.first_sample_t is None or progress.last_sample_t is None:
        return 0.0
    return max(0.0, (progress.last_sample_t - progress.first_sample_t) - progress.played / SAMPLE_RATE)


def spoken_text(progress: ReplyProgress) -> str:
    """The words actually played: whole clauses, then the played share of the clause cut off."""
    words: list[str] = []
    start = 0
    for end, text in progress.chunk_bounds:
        if progress.played >= end:
            words.extend(text.split())
        elif progress.played > start:
            share = (progress.played - start) / max(1, end - start)
            clause_words = text.split()
            words.extend(clause_words[: int(len(clause_words) * share)])
            break
        else:
            break
        start = end
    return " ".join(words)
