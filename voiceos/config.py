"""Configuration: one small dataclass per stage, filled from defaults, a TOML file and CLI flags.

Environment variables and paths are read at the edges (CLI, `default_log_dir`), never deep inside a stage.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from voiceos.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SAMPLE_RATE = 16_000  # Hz; every stage inside voiceos works on 16 kHz mono float32
FRAME_SAMPLES = 512  # 32 ms at 16 kHz: one Silero VAD frame


class Mode(Enum):
    """How a turn is answered."""

    STREAMING = "streaming"  # think in the pauses: transcribe, read and draft while the user talks
    NAIVE = "naive"  # the plain cascade: wait for a fixed silence, transcribe, write the whole reply, speak


def default_threads() -> int:
    return max(1, min(4, os.cpu_count() or 1))


@dataclass
class AudioConfig:
    input_device: str | int | None = None  # PortAudio index or name; None = default (PULSE_SOURCE)
    output_device: str | int | None = None
    block_ms: int = 32  # input callback block
    output_latency: str = "low"


@dataclass
class VadConfig:
    threshold: float = 0.5  # Silero speech probability that starts speech
    neg_threshold: float = 0.35  # probability below which a frame counts as silence
    echo_threshold: float = 0.85  # raised threshold while Samantha speaks (half-duplex gating)
    min_speech_ms: int = 160  # shorter bursts are not speech
    preroll_ms: int = 320  # audio kept before speech start


@dataclass
class EndpointConfig:
    """When a pause ends the user's turn."""

    speculate_after_ms: int = 32  # silence after which the turn so far is transcribed (and maybe answered)
    partial_every_ms: int = 1500  # unbroken speech after which the words so far are transcribed and read
    complete_silence_ms: int = 360  # silence that ends a turn whose words sound complete
    incomplete_silence_ms: int = 1500  # silence that ends a turn that sounds unfinished ("and so, um")
    max_silence_ms: int = 2500  # after this, the turn ends whatever it sounds like
    confident_end_p: float = 0.5  # P(end) at which finished-sounding words are taken as a confident end...
    confident_max_ms: int = 750  # ...that waits at most this long, however long the speaker paused before
    max_turn_s: float = 28.0  # an utterance longer than this is cut into a turn


@dataclass
class SttConfig:
    model: str | None = None  # registry name or CTranslate2 folder; None = registry default
    compute_type: str = "int8"
    threads: int = field(default_factory=default_threads)
    beam_size: int = 1
    language: str = "en"
    short_window: bool = True  # encode only as many 10 ms frames as the audio needs (+ margin)
    min_window_s: float = 5.0  # shortest encoder window (500 frames); shorter ones loop more often


@dataclass
class LlmConfig:
    model: str | None = None  # registry name or .gguf path; None = registry default
    threads: int = field(default_factory=default_threads)
    n_ctx: int = 2048
    max_reply_tokens: int = 90
    temperature: float = 0.7
    top_p: float = 0.9
    top_k: int = 40
    repeat_penalty: float = 1.1
    seed: int = 7
    history_budget_tokens: int = 1100  # tokens of conversation kept (persona excluded)


@dataclass
class TtsConfig:
    voice: str | None = None  # espeak-ng voice id; None = English default
    rate_wpm: int = 185
    volume: float = 1.0


@dataclass
class SessionConfig:
    persona: Path | None = None  # persona TOML; None = the shipped Samantha
    log_dir: Path | None = None
    speculate: bool = True  # think in the pauses (streaming mode); False = the plain cascade
    barge_in_ms: int = 300  # user speech over Samantha for this long stops her
    echo_tail_ms: int = 400  # after playback ends, keep the raised threshold this long
    recalibrate: bool = False

    @property
    def mode(self) -> Mode:
        return Mode.STREAMING if self.speculate else Mode.NAIVE


@dataclass
class Config:
    audio: AudioConfig = field(default_factory=AudioConfig)
    vad: VadConfig = field(default_factory=VadConfig)
    endpoint: EndpointConfig = field(default_factory=EndpointConfig)
    stt: SttConfig = field(default_factory=SttConfig)
    llm: LlmConfig = field(default_factory=LlmConfig)
    tts: TtsConfig = field(default_factory=TtsConfig)
    session: SessionConfig = field(default_factory=SessionConfig)


def load_config(path: Path | None) -> Config:
    """Defaults, overlaid by a TOML file whose tables are named after the sections above."""
    config = Config()
    if path is None:
        return config
    try:
        data = tomllib.loads(Path(path).read_text())
    except FileNotFoundError as exc:
        raise ConfigError(f"config file {path} not found") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
    for section, values in data.items():
        target = getattr(config, section, None)
        if target is None or not isinstance(values, dict):
            raise ConfigError(f"{path}: unknown section [{section}]")
        _apply(target, values, f"{path} [{section}]")
    return config


def _apply(target: Any, values: dict[str, Any], where: str) -> None:
    known = {f.name: f for f in dataclasses.fields(target)}
    for key, value in values.items():
        if key not in known:
            raise ConfigError(f"{where}: unknown key {key!r} (known: {', '.join(known)})")
        if key in ("persona", "log_dir") and value is not None:
            value = Path(value).expanduser()
        setattr(target, key, value)
