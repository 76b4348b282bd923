"""Wiring: load the models once, then run conversations on any audio source and speaker.

`load_engines` resolves and loads STT, LLM, VAD and persona (and the machine's calibrated rates);
`Session` owns the session clock, CPU meter and log; `Session.converse` runs one conversation through a
`VoiceLoop` built from the engines.
"""

from __future__ import annotations

import contextlib
import logging
import os
import platform
import sys
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from voiceos import __version__, registry
from voiceos.audio.interfaces import AudioSource, Playback
from voiceos.config import Config
from voiceos.errors import LlmServerError
from voiceos.interrupts import interrupts_deferred, raise_if_interrupted
from voiceos.listen.smart_turn import SmartTurn, TurnCompletion
from voiceos.listen.transcriber import Transcriber
from voiceos.listen.transcript import SpeechRecognizer
from voiceos.listen.vad import StreamingVad, VoiceActivity, silero_model_path
from voiceos.llm.engine import LocalLlm, in_passing_thread
from voiceos.llm.model import LanguageModel
from voiceos.llm.served import ServedLlm
from voiceos.loop.device_changes import DeviceChanges
from voiceos.loop.voice_loop import LoopMeasures, LoopOptions, LoopParts, LoopResult, VoiceLoop
from voiceos.measure.calibration import cpu_model, load_or_measure
from voiceos.measure.clock import SessionClock
from voiceos.measure.cpu_meter import CpuMeter
from voiceos.measure.ledger import Rates, WorkLog, samantha_ratio
from voiceos.measure.session_log import SessionLog, default_log_dir
from voiceos.offline import enforce_offline
from voiceos.speak.tts import Synthesizer
from voiceos.speak.voice_worker import VoiceWorker
from voiceos.think.conversation import Conversation
from voiceos.think.persona import Persona, load_persona
from voiceos.think.prompt_fitting import check_context
from voiceos.think.responder import Responder
from voiceos.think.user_profile import ProfileStore, default_memory_path

log = logging.getLogger(__name__)


@dataclass
class Engines:
    """The loaded models a session runs on (real ones from `load_engines`, scripted ones in tests)."""

    transcriber: SpeechRecognizer
    llm: LanguageModel
    persona: Persona
    make_vad: Callable[[], VoiceActivity]  # one VAD per conversation: it carries state from frame to frame
    make_synthesizer: Callable[[], Synthesizer] | None = None  # None: espeak-ng through pyttsx3
    turn_model: TurnCompletion | None = None  # the audio end-of-turn model (None: words and LLM alone)
    models: dict[str, Any] = field(default_factory=dict)  # names, paths and checksums, for the log
    rates: Rates | None = None
    rates_measured_now: bool = False


def keep_blas_to_one_thread() -> None:
    """numpy's OpenBLAS keeps its worker threads spinning for a while after every product it shares
    out (faster-whisper's mel filterbank, each pass). On a 2-core laptop that takes a core from the
    CTranslate2 threads that run next (tests/test_cpu_meter.py shows the spinning). The matrices numpy
    multiplies here are small, so one BLAS thread loses nothing."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")


def load_engines(config: Config, progress: Callable[[str], None] | None = None,
                 calibrate: bool = True) -> Engines:
    enforce_offline()
    keep_blas_to_one_thread()
    stt_model = registry.resolve(config.stt.model, "stt")
    persona = load_persona(config.session.persona)
    served = connect_llm(config, progress)  # first: a server that cannot be reached fails at once
    llm_model = registry.resolve(config.llm.model, "llm") if served is None else None  # a bad name: before loading
    if progress:
        progress(f"loading speech recognition ({stt_model.name})…")
    transcriber = Transcriber(stt_model.path, config.stt)
    transcriber.warm_up()
    raise_if_interrupted()
    llm, llm_entry = served or load_local_llm(config, progress, llm_model)
    raise_if_interrupted()  # llama.cpp's log callback swallows a Ctrl-C pressed while it loads
    check_context(llm, persona)  # before any log is opened: n_ctx must hold the persona and a reply
    vad_path = silero_model_path()
    turn_model = registry.resolve(None, "turn")
    smart_turn = SmartTurn(turn_model.path)
    raise_if_interrupted()
    engines = Engines(transcriber, llm, persona, lambda: StreamingVad(vad_path), turn_model=smart_turn,
                      models={"stt": _model_entry(stt_model), "llm": llm_entry,
                              "llm_format": llm.fmt.name, "vad": str(vad_path), "turn": _model_entry(turn_model)})
    if calibrate:
        engines.rates, engines.rates_measured_now = load_or_measure(
            llm, recalibrate=config.session.recalibrate, progress=progress)
        raise_if_interrupted()
    return engines


def connect_llm(config: Config, progress: Callable[[str], None] | None = None,
                ) -> tuple[ServedLlm, dict[str, Any]] | None:
    """The LLM on the server of `[llm] url`, with its entry for the log; None without a URL, or when that
    server cannot be reached and `[llm] fallback = "local"` (the embedded model is used)."""
    if not config.llm.url:
        return None
    if progress:
        progress(f"connecting to the LLM server at {config.llm.url}…")
    try:
        served = ServedLlm(config.llm.url, config.llm)
    except LlmServerError as exc:
        if config.llm.fallback != "local":
            raise
        log.warning("%s; using the embedded model (--llm-fallback local)", exc)
        if progress:
            progress(f"{exc}; using the embedded model instead (--llm-fallback local)")
        return None
    return served, {"url": served.url, "name": served.info.model, "server": served.info.kind,
                    "tokenizer": served.info.tokenizer or "estimated", "format": served.fmt.name}


def load_local_llm(config: Config, progress: Callable[[str], None] | None = None,
                   llm_model: registry.ResolvedModel | None = None) -> tuple[LocalLlm, dict[str, Any]]:
    """The embedded LLM (`[llm] model`, or `llm_model` when it is resolved already), with its entry for the
    log."""
    llm_model = llm_model or registry.resolve(config.llm.model, "llm")
    if progress:
        progress(f"loading the language model ({llm_model.name})…")
    return LocalLlm(llm_model.path, config.llm), _model_entry(llm_model)


def _model_entry(model: registry.ResolvedModel) -> dict[str, Any]:
    entry = model.entry
    return {"name": model.name, "path": str(model.path), "sha256": entry.checks[0].sha256 if entry else None}


def versions() -> dict[str, str]:
    out = {"voiceos": __version__, "python": platform.python_version()}
    for dist in ("faster-whisper", "ctranslate2", "llama-cpp-python", "onnxruntime", "pyttsx3", "sounddevice",
                 "numpy"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def machine() -> dict[str, Any]:
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "platform": platform.platform(),
            "python": sys.version.split()[0]}


class Session:
    """One session: its clock, CPU meter, log and the workers that outlive single conversations."""

    def __init__(self, config: Config, engines: Engines, *, log_dir: Path | None = None,
                 log_name: str | None = None, kind: str = "chat", clock: SessionClock | None = None) -> None:
        self.config = config
        self.engines = engines
        # what she remembers of the user across sessions; a bad memory file stops here, before the log opens
        memory_file = config.session.memory_file or default_memory_path()
        self.memory = ProfileStore(memory_file) if config.session.memory else None
        remembered = self.memory.load() if self.memory is not None else None
        self.clock = clock or SessionClock()
        self.meter = CpuMeter(self.clock).start()
        self.log = SessionLog(log_dir or config.session.log_dir or default_log_dir(), self.clock, log_name)
        self.work = WorkLog()
        self.kind = kind
        self.results: list[LoopResult] = []
        self.conversation: Conversation | None = None
        rates = engines.rates
        self.log.write(
            "session_start", kind=kind, versions=versions(), models=engines.models, machine=machine(),
            threads=config.threads(),
            rates=(asdict(rates) | {"samantha_ratio": round(samantha_ratio(rates), 1),
                                    "measured_now": engines.rates_measured_now}) if rates else None,
            config={"speculate": config.session.speculate, "endpoint": asdict(config.endpoint),
                    "stt_short_window": config.stt.short_window},
            memory=({"file": str(self.memory.path), "facts": [{"kind": f.kind, "value": f.value, "learned": f.learned}
                                                             for f in remembered.facts]}
                    if self.memory is not None and remembered is not None else None),
        )

    def converse(self, source: AudioSource, speaker: Playback, options: LoopOptions | None = None,
                 devices: DeviceChanges | None = None) -> LoopResult:
        """Run one conversation (fresh memory) until the source ends or Ctrl-C."""
        with self.open_loop(source, speaker, options, devices) as loop:
            return loop.run()

    @contextlib.contextmanager
    def open_loop(self, source: AudioSource, speaker: Playback, options: LoopOptions | None = None,
                  devices: DeviceChanges | None = None) -> Iterator[VoiceLoop]:
        """A voice loop for one conversation, its workers started and the source open; closed on exit."""
        engines = self.engines
        conversation = Conversation(engines.persona, engines.llm.fmt, engines.llm.count_tokens,
                                    self.config.llm.history_budget_tokens, memory=self.memory)
        self.conversation = conversation  # the latest conversation's memory (tests and bench look at it)
        started = contextlib.ExitStack()  # what is started is stopped, even when a Ctrl-C cuts the setup short
        try:
            voice = VoiceWorker(self.config.tts, self.clock, speaker, engines.make_synthesizer).start()
            started.callback(voice.close)
            responder = Responder(engines.transcriber, engines.llm, conversation, voice, self.clock,
                                  self.work).start()
            started.callback(responder.close)
            loop = VoiceLoop(
                self.config,
                LoopParts(source, speaker, engines.make_vad(), responder, voice, engines.turn_model, devices),
                LoopMeasures(self.clock, self.log, self.meter, engines.rates, self.work),
                options,
            )
            # persona + history read before listening starts (not on this thread, which lives on: llm/engine.py)
            in_passing_thread(lambda: engines.llm.prefill(conversation.prefix()))
            self.results.append(loop.result)
            started.callback(source.close)
            source.start()
            yield loop
        finally:
            with interrupts_deferred():  # a second Ctrl-C does not leave workers running
                started.close()  # the source, then the responder, then the voice

    def close(self, reason: str = "done") -> None:
        with interrupts_deferred():  # the log's last line is written whole, whatever is pressed
            self._close(reason)

    def _close(self, reason: str) -> None:
        turns = sum(r.turns for r in self.results)
        self.meter.stop()
        self.log.write("session_end", reason=reason, turns=turns,
                       interrupted=sum(r.interrupted for r in self.results),
                       dropped=sum(r.dropped for r in self.results),
                       cpu_meter_overhead=round(self.meter.overhead(), 5))
        self.log.close()
