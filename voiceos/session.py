"""Wiring: load the models once, then run conversations on any audio source and speaker.

`load_engines` resolves and loads STT, LLM, VAD and persona (and the machine's calibrated rates);
`Session` owns the session clock, CPU meter and log; `Session.converse` runs one conversation.
"""

from __future__ import annotations

import logging
import os
import platform
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from voiceos import __version__, registry
from voiceos.audio_in import AudioSource
from voiceos.calibration import cpu_model, load_or_measure
from voiceos.clock import SessionClock
from voiceos.config import SAMPLE_RATE, Config
from voiceos.cpu_meter import CpuMeter
from voiceos.ledger import Rates, WorkLog, samantha_ratio
from voiceos.llm import LocalLlm, in_passing_thread
from voiceos.memory import Conversation
from voiceos.offline import enforce_offline
from voiceos.persona import Persona, load_persona
from voiceos.responder import Responder
from voiceos.session_log import SessionLog, default_log_dir
from voiceos.stt import Transcriber
from voiceos.vad import StreamingVad, silero_model_path
from voiceos.voice import VoiceWorker
from voiceos.voice_loop import LoopResult, Speakerlike, TurnPrinter, VoiceLoop

log = logging.getLogger(__name__)


@dataclass
class Engines:
    transcriber: Transcriber
    llm: LocalLlm
    persona: Persona
    vad_path: Path
    stt_model: registry.ResolvedModel
    llm_model: registry.ResolvedModel
    rates: Rates | None = None
    rates_measured_now: bool = False
    info: dict[str, Any] = field(default_factory=dict)


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
    llm_model = registry.resolve(config.llm.model, "llm")
    persona = load_persona(config.session.persona)
    if progress:
        progress(f"loading speech recognition ({stt_model.name})…")
    transcriber = Transcriber(stt_model.path, config.stt)
    transcriber.transcribe(np.zeros(SAMPLE_RATE, np.float32), word_timestamps=True)  # warm-up
    if progress:
        progress(f"loading the language model ({llm_model.name})…")
    llm = LocalLlm(llm_model.path, config.llm)
    engines = Engines(transcriber, llm, persona, silero_model_path(), stt_model, llm_model)
    if calibrate:
        engines.rates, engines.rates_measured_now = load_or_measure(
            llm, recalibrate=config.session.recalibrate, progress=progress)
    return engines


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


def model_info(engines: Engines) -> dict[str, Any]:
    def one(m: registry.ResolvedModel) -> dict[str, Any]:
        entry = m.entry
        return {"name": m.name, "path": str(m.path),
                "sha256": entry.checks[0].sha256 if entry else None}

    return {"stt": one(engines.stt_model), "llm": one(engines.llm_model),
            "llm_format": engines.llm.fmt.name, "vad": str(engines.vad_path)}


class Session:
    """One session: its clock, CPU meter, log and the workers that outlive single conversations."""

    def __init__(self, config: Config, engines: Engines, *, log_dir: Path | None = None,
                 log_name: str | None = None, kind: str = "chat") -> None:
        self.config = config
        self.engines = engines
        self.clock = SessionClock()
        self.meter = CpuMeter(self.clock).start()
        self.log = SessionLog(log_dir or config.session.log_dir or default_log_dir(), self.clock, log_name)
        self.work = WorkLog()
        self.kind = kind
        self.results: list[LoopResult] = []
        self.conversation: Conversation | None = None
        rates = engines.rates
        self.log.write(
            "session_start", kind=kind, versions=versions(), models=model_info(engines), machine=machine(),
            threads={"stt": config.stt.threads, "llm": config.llm.threads},
            rates=(rates.__dict__ | {"samantha_ratio": round(samantha_ratio(rates), 1),
                                     "measured_now": engines.rates_measured_now}) if rates else None,
            config={"speculate": config.session.speculate, "endpoint": config.endpoint.__dict__,
                    "stt_short_window": config.stt.short_window},
        )

    def converse(self, source: AudioSource, speaker: Speakerlike, *, mode: str = "streaming",
                 printer: TurnPrinter | None = None, out_dir: Path | None = None,
                 max_turns: int | None = None) -> LoopResult:
        """Run one conversation (fresh memory) until the source ends or Ctrl-C."""
        engines = self.engines
        conversation = Conversation(engines.persona, engines.llm.fmt, engines.llm.count_tokens,
                                    self.config.llm.history_budget_tokens)
        self.conversation = conversation  # the latest conversation's memory (tests and bench look at it)
        voice = VoiceWorker(self.config.tts, self.clock, speaker).start()
        responder = Responder(engines.transcriber, engines.llm, conversation, voice, self.clock, self.work).start()
        loop = VoiceLoop(
            self.config, clock=self.clock, source=source, speaker=speaker,
            vad=StreamingVad(engines.vad_path), responder=responder, voice=voice, session_log=self.log,
            meter=self.meter, rates=engines.rates, work=self.work, printer=printer, mode=mode,
            out_dir=out_dir, max_turns=max_turns,
        )
        # persona + history evaluated before listening starts (not on this thread, which lives on: see llm.py)
        in_passing_thread(lambda: engines.llm.prefill(conversation.prefix()))
        source.start()
        self.results.append(loop.result)
        try:
            return loop.run()
        finally:
            source.close()
            responder.close()
            voice.close()

    def close(self, reason: str = "done") -> None:
        turns = sum(r.turns for r in self.results)
        self.meter.stop()
        self.log.write("session_end", reason=reason, turns=turns,
                       interrupted=sum(r.interrupted for r in self.results),
                       dropped=sum(r.dropped for r in self.results),
                       cpu_meter_overhead=round(self.meter.overhead(), 5))
        self.log.close()
