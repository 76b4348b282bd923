"""`voiceos demo`: the same loop fed from WAV files in real time; replies written as WAV files."""

from __future__ import annotations

from pathlib import Path

from voiceos.audio.speaker import InstantSpeaker, Speaker, VirtualSpeaker
from voiceos.audio.wav import read_wav, write_wav
from voiceos.audio.wav_source import WavSource, WavTurn
from voiceos.commands.chat import open_speaker
from voiceos.commands.console import session_closed, status
from voiceos.commands.watching import watched
from voiceos.config import Config
from voiceos.loop.announcer import Announcer
from voiceos.loop.session import Session, load_engines
from voiceos.loop.voice_loop import LoopOptions

BUILTIN_QUESTION = "Hi Samantha. I just got home from a long walk by the sea. What do you like about the ocean?"


def builtin_question(cache_dir: Path, config: Config) -> Path:
    """The demo's spoken question, made once with espeak-ng and cached."""
    path = cache_dir / "demo-question.wav"
    if not path.exists():
        from voiceos.speak.tts import SpeechSynthesizer

        synth = SpeechSynthesizer(config.tts)
        chunk = synth.synthesize(BUILTIN_QUESTION)
        synth.close()
        write_wav(path, chunk.samples)
    return path


def demo(config: Config, inputs: list[Path], out_dir: Path, *, fast: bool = False, play: bool = True,
         live: bool = False) -> int:
    """`live`: the live view on the terminal (else the turns are printed as lines)."""
    from platformdirs import user_cache_dir

    if not inputs:
        inputs = [builtin_question(Path(user_cache_dir("voiceos")), config)]
    turns = [WavTurn(p.name, read_wav(p, warn=status)[0]) for p in inputs]  # bad files fail before models load
    engines = load_engines(config, progress=status)
    session = Session(config, engines, kind="demo")
    out_dir.mkdir(parents=True, exist_ok=True)
    with session_closed(session):
        source = WavSource(session.clock, turns, realtime=not fast)
        speaker: Speaker | VirtualSpeaker | InstantSpeaker
        if fast:
            speaker = InstantSpeaker(session.clock)
        elif play:
            speaker = open_speaker(session, config.audio.output_device, required=False)
        else:
            speaker = VirtualSpeaker(session.clock).start()
        status(f"demo: {len(turns)} turn(s) from WAV; replies go to {out_dir}")
        announcer = Announcer()
        try:
            with watched(session, announcer, live=live):
                result = session.converse(source, speaker, LoopOptions(config.session.mode, announcer=announcer,
                                                                       out_dir=out_dir))
        finally:
            speaker.close()
        status(f"{result.turns} turn(s) answered, {result.dropped} dropped; replies in {out_dir}")
    return 0
