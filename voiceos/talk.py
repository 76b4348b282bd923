"""`voiceos chat` (live microphone) and `voiceos demo` (WAV files in real time)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

from voiceos.audio import read_wav, write_wav
from voiceos.audio_in import MicrophoneSource, WavSource, WavTurn, check_default_device
from voiceos.audio_out import InstantSpeaker, Speaker, VirtualSpeaker
from voiceos.config import Config
from voiceos.errors import DeviceError, VoiceosError
from voiceos.ledger import summary_line
from voiceos.session import Session, load_engines

log = logging.getLogger(__name__)

BUILTIN_QUESTION = "Hi Samantha. I just got home from a long walk by the sea. What do you like about the ocean?"


class ConsolePrinter:
    """One line for what was heard, one for the reply with its latency, one for the pause ledger."""

    def __init__(self, stream: Any = None) -> None:
        self.stream = stream or sys.stdout

    def _out(self, line: str) -> None:
        print(line, file=self.stream, flush=True)

    def heard(self, text: str) -> None:
        self._out(f"you      › {text}")

    def replied(self, text: str, record: dict[str, Any]) -> None:
        v2v = record["timings_ms"].get("voice_to_voice")
        latency = f"{v2v:.0f} ms" if v2v is not None else "not timed"
        cut = " [interrupted]" if record["reply"]["interrupted"] else ""
        self._out(f"samantha › {text or '…'}{cut}   (voice-to-voice {latency})")
        self._out(f"           {summary_line(record['pauses'])}")


def status(message: str) -> None:
    print(f"voiceos: {message}", file=sys.stderr, flush=True)


def open_speaker(session: Session, device: str | int | None, *, required: bool) -> Speaker | VirtualSpeaker:
    try:
        if device is None:
            check_default_device("output")
        return Speaker(session.clock, device).start()
    except DeviceError:
        if required:
            raise
        status("no speaker found: replies are written as WAV files only")
        return VirtualSpeaker(session.clock).start()


def chat(config: Config) -> int:
    if config.audio.input_device is None:
        check_default_device("input")
    engines = load_engines(config, progress=status)
    session = Session(config, engines, kind="chat")
    reason = "done"
    try:
        source = MicrophoneSource(session.clock, config.audio.input_device)
        speaker = open_speaker(session, config.audio.output_device, required=True)
        status(f"listening — talk to Samantha (Ctrl-C to end). Log: {session.log.path}")
        try:
            session.converse(source, speaker, printer=ConsolePrinter(),
                             mode="streaming" if config.session.speculate else "naive")
        finally:
            speaker.close()
    except KeyboardInterrupt:  # Ctrl-C is how a chat ends: a clean exit, not an error
        reason = "ended with Ctrl-C"
    except VoiceosError as exc:
        reason = f"error: {exc}"
        raise
    finally:
        session.close(reason)
        status(f"session log: {session.log.path}")
    return 0


def builtin_question(cache_dir: Path, config: Config) -> Path:
    """The demo's spoken question, made once with espeak-ng and cached."""
    path = cache_dir / "demo-question.wav"
    if not path.exists():
        from voiceos.tts import SpeechSynthesizer

        synth = SpeechSynthesizer(config.tts)
        chunk = synth.synthesize(BUILTIN_QUESTION)
        synth.close()
        write_wav(path, chunk.samples)
    return path


def demo(config: Config, inputs: list[Path], out_dir: Path, *, fast: bool = False, play: bool = True) -> int:
    from platformdirs import user_cache_dir

    if not inputs:
        inputs = [builtin_question(Path(user_cache_dir("voiceos")), config)]
    turns = [WavTurn(p.name, read_wav(p)[0]) for p in inputs]  # bad files fail here, before models load
    engines = load_engines(config, progress=status)
    session = Session(config, engines, kind="demo")
    out_dir.mkdir(parents=True, exist_ok=True)
    reason = "done"
    try:
        source = WavSource(session.clock, turns, realtime=not fast)
        if fast:
            speaker: Speaker | VirtualSpeaker | InstantSpeaker = InstantSpeaker(session.clock)
        elif play:
            speaker = open_speaker(session, config.audio.output_device, required=False)
        else:
            speaker = VirtualSpeaker(session.clock).start()
        status(f"demo: {len(turns)} turn(s) from WAV; replies go to {out_dir}")
        try:
            result = session.converse(source, speaker, printer=ConsolePrinter(), out_dir=out_dir,
                                      mode="streaming" if config.session.speculate else "naive")
        finally:
            speaker.close()
        status(f"{result.turns} turn(s) answered, {result.dropped} dropped; replies in {out_dir}")
    except KeyboardInterrupt:
        reason = "interrupted"
        raise
    except VoiceosError as exc:
        reason = f"error: {exc}"
        raise
    finally:
        session.close(reason)
        status(f"session log: {session.log.path}")
    return 0
