"""The voice loop: audio in → echo gate → VAD → turn detector → responder (STT, LLM) → voice (TTS) → audio out.

`VoiceLoop.run()` is the conversation's one responsive thread. It reads 32 ms blocks, gates its own
echo, runs the VAD and the turn detector, hands work to the responder (a worker thread) and voice (another
worker), commits or discards speculative replies, stops Samantha when she is talked over, and writes one
`turn` record per answered utterance. It never runs a model itself except the tiny VAD. What it does is
announced (`loop_events`, through `LoopOptions.announcer`) to whoever watches, without waiting for them.
"""

from __future__ import annotations

import logging
import queue
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from voiceos import interrupts
from voiceos.audio.echo_gate import EchoGate
from voiceos.audio.framing import Framer
from voiceos.audio.interfaces import AudioSource, Playback
from voiceos.config import FRAME_SAMPLES, SAMPLE_RATE, Config, Mode
from voiceos.errors import DeviceError
from voiceos.interrupts import interrupts_deferred, raise_if_interrupted
from voiceos.listen.smart_turn import TurnCompletion
from voiceos.listen.turn_detector import TurnDetector
from voiceos.listen.turn_events import (
    PauseBegan,
    SpeechGoesOn,
    SpeechResumed,
    SpeechStarted,
    TurnEnded,
    TurnEvent,
)
from voiceos.listen.vad import VoiceActivity
from voiceos.listen.word_timing import frame_energy_db
from voiceos.loop.announcer import Announcer
from voiceos.loop.answering import Answering
from voiceos.loop.device_changes import DeviceChanges
from voiceos.loop.going_on import GoingOn
from voiceos.loop.loop_events import HerState, InputLevel, PauseMeasured, StateChanged, WordsSoFar
from voiceos.loop.record import CutBy, TurnRecord
from voiceos.loop.turn_state import TurnState, Utterance
from voiceos.measure.clock import SessionClock
from voiceos.measure.cpu_meter import CpuMeter
from voiceos.measure.ledger import Rates, WorkLog, pause_work
from voiceos.measure.session_log import SessionLog
from voiceos.speak.voice_worker import VoiceWorker
from voiceos.think.events import JobFailed, TranscriptReady, WordsHeard
from voiceos.think.jobs import PartialJob, ReplyJob
from voiceos.think.responder import Responder

log = logging.getLogger(__name__)

LEVEL_BLOCK_S = 0.008  # loudness blocks: four to a VAD frame
TRANSCRIPT_WAIT_S = 2.0  # on Ctrl-C, how long the words of a turn being transcribed are waited for
NAIVE_SILENCE_S = 0.8  # the plain cascade's fixed end-of-turn silence (Pipecat's default stop_secs)
LEVEL_EVERY_FRAMES = 3  # the input level is announced about ten times a second


@dataclass
class LoopParts:
    """The stages the loop drives."""

    source: AudioSource
    speaker: Playback
    vad: VoiceActivity
    responder: Responder
    voice: VoiceWorker
    turn_model: TurnCompletion | None = None  # the audio end-of-turn model (None: words and LLM alone)
    devices: DeviceChanges | None = None  # live devices, watched (chat); None: the source and speaker alone


@dataclass
class LoopMeasures:
    """What the loop measures with and writes to."""

    clock: SessionClock
    log: SessionLog
    meter: CpuMeter | None
    rates: Rates | None
    work: WorkLog


@dataclass
class LoopOptions:
    mode: Mode = Mode.STREAMING
    announcer: Announcer = field(default_factory=Announcer)  # who watches the loop (the view, the printer)
    out_dir: Path | None = None  # reply WAVs go here
    max_turns: int | None = None
    on_ready: Callable[[], None] | None = None  # called once the source delivers audio and the loop listens


@dataclass
class LoopResult:
    turns: int = 0
    interrupted: int = 0
    dropped: int = 0
    reopened: int = 0  # turns taken back before she was heard (the user went on)
    merged: int = 0  # turns taken back after her first words (the user went on over them)
    records: list[TurnRecord] = field(default_factory=list)


class VoiceLoop:
    def __init__(self, config: Config, parts: LoopParts, measures: LoopMeasures,
                 options: LoopOptions | None = None) -> None:
        self.config = config
        self.parts = parts
        self.measures = measures
        self.options = options or LoopOptions()
        self.source, self.speaker = parts.source, parts.speaker
        self.responder, self.voice = parts.responder, parts.voice
        self.clock, self.log = measures.clock, measures.log
        self.streaming = self.options.mode is Mode.STREAMING
        self.detector = TurnDetector(config.vad, config.endpoint)
        if not self.streaming:
            self.detector.fixed_silence_s = NAIVE_SILENCE_S
        self.gate = EchoGate(self.speaker, config.session)
        self.turns = TurnState(config.vad.preroll_ms)
        self.result = LoopResult()
        self.answering = Answering(self.turns, parts, measures, self.options, self.gate, self.result)
        self.going_on = GoingOn(config, parts, self.turns, self.answering, self.detector, self.clock, self.log,
                                self.result, streaming=self.streaming)
        self.framer = Framer()
        self.announcer = self.options.announcer
        self._frames = 0
        self._pause_from: float | None = None  # where the pause she is thinking in began (session clock)

    def workers_idle(self) -> bool:
        """Neither worker has anything left to do (tests step the audio only then)."""
        return self.responder.idle() and self.voice.idle()

    # --- main loop --------------------------------------------------------------------------------

    def run(self) -> LoopResult:
        self.log.write("ready", mode=self.options.mode.value)
        if self.options.on_ready is not None:
            self.options.on_ready()
        self._announce_state(HerState.LISTENING)
        try:
            while self._step():
                pass
        except KeyboardInterrupt:
            interrupts.hold()  # the session ends: the way out is not cut short by another Ctrl-C
            self._abort("stopped", f"interrupted by the user ({interrupts.received()})", CutBy.CTRL_C)
            raise
        except DeviceError as exc:
            with interrupts_deferred():
                self._abort("error", str(exc), CutBy.DEVICE_LOST)
            raise
        finally:
            self._announce_state(HerState.STOPPED)
        return self.result

    def _announce_state(self, state: HerState) -> None:
        self.announcer.announce(StateChanged(state, self.clock.now()))

    def _step(self) -> bool:
        """One block of audio (or a timeout) through the loop; False when the conversation is over."""
        raise_if_interrupted()
        devices = self.parts.devices
        chunk = devices.read(timeout=0.05) if devices is not None else self.source.read(timeout=0.05)
        if chunk is not None:
            self.answering.max_lag_s = max(self.answering.max_lag_s, self.clock.now() - chunk.end)
            for frame, t in self.framer.frames(chunk.samples, chunk.start):
                self._frame(frame, t)
        self._drain_responder()
        self.answering.check()
        if self.turns.utt is None and self.turns.active is None and self.source.heard_nothing():
            self.source.turn_done()  # a WAV turn without speech (silence, noise): on to the next
        if devices is not None:
            devices.check(self._cut_for_device)
        elif not self.speaker.alive():
            raise DeviceError("the output device stopped (unplugged?)")
        max_turns = self.options.max_turns
        if max_turns is not None and self.result.turns >= max_turns and self.turns.active is None:
            return False
        if chunk is None and self.source.finished() and self.turns.active is None:
            if self.turns.utt is None:
                return False
            self._close_turn()
        return True

    def _close_turn(self) -> None:
        """The input ended with the user's turn still open: it ends here. A speculation that stopped short of
        the last words heard is dropped, and the whole turn is transcribed."""
        utt = self.turns.utt
        last_voiced = self.detector.last_voiced_end
        if utt is not None and utt.job is not None and utt.job.audio_end_t < last_voiced:
            self._on_resume(last_voiced)
        self._on(self.detector.close(self.framer.end_t))

    def _cut_for_device(self) -> None:
        """Her reply in flight stops where it is: the device it was going to moved or went away."""
        active = self.turns.active
        if active is not None:
            self.answering.stop(active, CutBy.DEVICE_LOST)

    def _abort(self, kind: str, why: str, cut_by: CutBy) -> None:
        """Stop speaking, keep what was said: the reply in flight is logged as interrupted by `cut_by`. A
        turn whose words are still being transcribed gets a moment for them: they belong in its record."""
        active = self.turns.active
        if active is not None:
            deadline = time.monotonic() + TRANSCRIPT_WAIT_S
            while active.job.transcript is None and not active.job.finished.is_set() and time.monotonic() < deadline:
                time.sleep(0.02)
            self.answering.stop(active, cut_by)
        else:
            self.speaker.stop()
        self.log.write(kind, message=why)

    def _frame(self, frame: np.ndarray, t: float) -> None:
        heard, echo_possible = self.gate.clean(frame, t)
        self._frames += 1
        if self._frames % LEVEL_EVERY_FRAMES == 0 and self.announcer.wants(InputLevel):
            self.announcer.announce(InputLevel(10.0 * float(np.log10(np.mean(frame * frame) + 1e-12))))
        prob = self.parts.vad(heard)
        if echo_possible and prob < self.config.vad.echo_threshold:
            prob = 0.0  # half-duplex: while she may be heard, only clear speech counts
        active = self.turns.active
        self.turns.keep(frame, t, may_go_on=active is not None and self.going_on.may_go_on(active, t))
        # loudness in 8 ms blocks places the end of the voice; the plain cascade hears Silero alone
        levels = frame_energy_db(heard, LEVEL_BLOCK_S).tolist() if self.streaming else None
        for event in self.detector.push(prob, t, levels):
            self._on(event)
        self.going_on.check(t + FRAME_SAMPLES / SAMPLE_RATE)

    # --- turn events ------------------------------------------------------------------------------

    def _on(self, event: TurnEvent) -> None:
        match event:
            case SpeechStarted(t=t):
                self._on_start(t)
            case SpeechGoesOn():
                self._on_partial()
            case PauseBegan(t=t, silence_s=silence_s):
                self._pause_from = t - silence_s
                if self.turns.utt is not None and self.turns.active is None:
                    self._announce_state(HerState.THINKING)
                self._on_speculate()
            case SpeechResumed(t=t):
                self._announce_pause(t, ended_turn=False)
                self._on_resume(t)
                if self.turns.active is None:
                    self._announce_state(HerState.HEARING)
            case TurnEnded(t=t, silence_s=silence_s):
                if self.turns.utt is not None and self.turns.active is None:  # not a sound over her reply
                    self._pause_from = t - silence_s  # from where the voice stopped
                    self._announce_pause(t, ended_turn=True)
                    self._announce_state(HerState.THINKING)
                self._pause_from = None
                self._on_end(t)

    def _announce_pause(self, end: float, *, ended_turn: bool) -> None:
        """The pause she noticed is over: how long, the CPU left idle in it, what she did with it."""
        start, self._pause_from = self._pause_from, None
        utt = self.turns.utt
        if start is None or utt is None or not self.announcer.wants(PauseMeasured):
            return
        drafting = utt.job is not None and utt.job.submitted_t >= start
        idle_s, did = pause_work(self.measures.meter, self.measures.work, start, end, drafting=drafting)
        self.announcer.announce(PauseMeasured(start, end - start, idle_s, did, ended_turn))

    def _on_start(self, t: float) -> None:
        active = self.turns.active
        if active is not None and not self.answering.audible(active):
            self.going_on.reopen(t)
            self._announce_state(HerState.HEARING)
            return
        self.turns.open(t)
        if active is None:  # a sound over her reply is heard as such once it stops her (or not)
            self._announce_state(HerState.HEARING)
        log.debug("speech start %.2f", t)

    def _on_partial(self) -> None:
        utt = self.turns.utt
        if self.streaming and utt is not None and self.responder.idle():
            self.responder.submit(PartialJob(utt.utt_id, audio=utt.audio(), heard_samples=utt.heard_samples,
                                             heard_text=utt.heard_text))

    def _on_speculate(self) -> None:
        utt = self.turns.utt
        if not self.streaming or utt is None or self.turns.active is not None:
            return
        utt.job = self._reply_job(utt, speculative=True)
        self.responder.submit(utt.job)

    def _reply_job(self, utt: Utterance, *, speculative: bool) -> ReplyJob:
        return ReplyJob(utt.utt_id, reply_id=self.turns.new_id(), audio=utt.audio(), audio_start=utt.audio_start,
                        speculative=speculative, mode=self.options.mode, submitted_t=self.clock.now(),
                        heard_samples=utt.heard_samples, heard_text=utt.heard_text)

    def _on_resume(self, t: float) -> None:
        utt = self.turns.utt
        if utt is None or utt.job is None:
            return
        job = utt.job
        utt.keep_heard(job, t)
        job.cancel.set()
        self.voice.discard(job.reply_id)
        self.log.write("speculation_discarded", utterance=utt.utt_id, reply_id=job.reply_id,
                       heard=job.transcript.text if job.transcript else None,
                       drafted=" ".join(job.drafted), resumed_at=round(t, 4))
        utt.job = None

    def _on_end(self, t: float) -> None:
        utt = self.turns.close(t, required_silence_s=self.detector.required_silence_s,
                               longest_pause_s=self.detector.longest_pause_s)
        if utt is None:
            return
        utt.voice_complete_p = self.detector.voice_complete_p
        if self.turns.active is not None:  # a short sound over her reply ("mm-hm"): not a turn of its own
            self.log.write("backchannel", utterance=utt.utt_id, speech_start=round(utt.speech_start, 4),
                           seconds=round(t - utt.speech_start, 3))
            return
        job = utt.job
        if job is None or job.cancelled():
            job = self._reply_job(utt, speculative=False)
            self.responder.submit(job)
        self.voice.commit(job.reply_id, whole=job.naive)
        self.log.write("turn_end", utterance=utt.utt_id, reply_id=job.reply_id, speech_end=round(t, 4))
        active = self.turns.commit(utt, job, self.clock.now())
        if job.transcript is not None:
            self.answering.announce_heard(active)

    def _ask_the_voice(self, utt: Utterance) -> None:
        """When it could change the decision, ask the audio end-of-turn model whether the voice sounds
        finished. By now the audio holds a few hundred ms of the pause, as the model was trained. It runs here, on
        the loop's thread, holding the frames back meanwhile (they queue; nothing is lost)."""
        if self.parts.turn_model is not None and self.detector.wants_voice():
            self.detector.hear_voice(self.parts.turn_model(utt.audio()))

    # --- results ----------------------------------------------------------------------------------

    def _drain_responder(self) -> None:
        while True:
            try:
                event = self.responder.events.get_nowait()
            except queue.Empty:
                return
            match event:
                case TranscriptReady(job=job):
                    utt, active = self.turns.utt, self.turns.active
                    if utt is not None and utt.job is job and job.transcript is not None:
                        self.detector.hear_transcript(job.transcript.text, job.end_probability)
                        self.announcer.announce(WordsSoFar(job.transcript.text))
                        self._ask_the_voice(utt)
                    if active is not None and active.job is job:
                        self.answering.announce_heard(active)
                case WordsHeard(utt_id=utt_id, text=text):
                    utt = self.turns.utt
                    if utt is not None and utt.utt_id == utt_id:
                        self.announcer.announce(WordsSoFar(text))
                case JobFailed(job=job, message=message):
                    self.log.write("error", message=message, utterance=job.utt_id)
