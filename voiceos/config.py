"""Configuration: one small dataclass per stage, filled from defaults, a TOML file and CLI flags.

Environment variables and paths are read at the edges (CLI, `default_log_dir`), never deep inside a stage.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from types import UnionType
from typing import Any, Union, get_args, get_origin, get_type_hints

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


class OnDeviceLoss(Enum):
    """What chat does when its microphone or speaker goes away (`[audio] on_device_loss`)."""

    FOLLOW = "follow"  # the system's new default, with a notice
    STOP = "stop"  # the session ends (exit 5)


def cpu_cores() -> int:
    """The CPU cores this process may run on (its CPU affinity where the OS reports one)."""
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity else (os.cpu_count() or 1)


def default_threads() -> int:
    return max(1, min(4, cpu_cores()))


# --- what each field accepts: its annotation gives the type, `Allowed` in its metadata the range or choices ---


@dataclass(frozen=True)
class Allowed:
    """What a config field accepts beyond its annotated type: numbers from `lo` to `hi` (an end marked open is
    excluded), strings among `choices`. `what` names the accepted values in errors in place of the type's
    name; `unit` follows in brackets."""

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False
    choices: tuple[str, ...] = ()
    what: str = ""
    unit: str = ""


ANYTHING = Allowed()  # a field without metadata: its type is all that is checked
THREADS = Allowed(1, cpu_cores(), unit="CPU cores")
TOKENS = "tokens"
WHISPER_LANGUAGES = (  # faster-whisper's
    "af", "am", "ar", "as", "az", "ba", "be", "bg", "bn", "bo", "br", "bs", "ca", "cs", "cy", "da", "de", "el", "en",
    "es", "et", "eu", "fa", "fi", "fo", "fr", "gl", "gu", "ha", "haw", "he", "hi", "hr", "ht", "hu", "hy", "id", "is",
    "it", "ja", "jw", "ka", "kk", "km", "kn", "ko", "la", "lb", "ln", "lo", "lt", "lv", "mg", "mi", "mk", "ml", "mn",
    "mr", "ms", "mt", "my", "ne", "nl", "nn", "no", "oc", "pa", "pl", "ps", "pt", "ro", "ru", "sa", "sd", "si", "sk",
    "sl", "sn", "so", "sq", "sr", "su", "sv", "sw", "ta", "te", "tg", "th", "tk", "tl", "tr", "tt", "uk", "ur", "uz",
    "vi", "yi", "yo", "zh", "yue",
)
COMPUTE_TYPES = ("default", "auto", "int8", "int8_float32", "int8_float16", "int8_bfloat16", "int16", "float16",
                 "bfloat16", "float32")  # CTranslate2's


def allowed(default: Any, spec: Allowed) -> Any:
    """A dataclass field that accepts `spec`; a callable `default` is a default factory."""
    if callable(default):
        return field(default_factory=default, metadata={"allowed": spec})
    return field(default=default, metadata={"allowed": spec})


def between(default: Any, lo: float, hi: float, unit: str = "", *, lo_open: bool = False,
            hi_open: bool = False) -> Any:
    """A number field bounded by `lo` and `hi` (both included unless marked open)."""
    return allowed(default, Allowed(lo, hi, lo_open, hi_open, unit=unit))


def probability(default: float) -> Any:
    """A probability strictly between 0 and 1."""
    return between(default, 0, 1, lo_open=True, hi_open=True)


def milliseconds(default: int, lo: int = 1, hi: int = 10_000) -> Any:
    """A duration in whole milliseconds, at least 1 ms unless `lo` says otherwise."""
    return between(default, lo, hi, "ms")


def one_of(default: str, choices: tuple[str, ...] | list[str], what: str = "") -> Any:
    """A string field that takes one of `choices`."""
    return allowed(default, Allowed(choices=tuple(choices), what=what))


LLM_FALLBACKS = ("none", "local")
PROMPT_FORMATS = ("auto", "chatml", "gemma", "transcript")  # llm/prompt_format.py's FORMATS, or "auto"
DEVICE = Allowed(0, 999, what="a device name or an index")  # PortAudio's index, or part of a device's name


@dataclass
class AudioConfig:
    input_device: str | int | None = allowed(None, DEVICE)  # None = default (PULSE_SOURCE)
    output_device: str | int | None = allowed(None, DEVICE)
    block_ms: int = milliseconds(32, hi=1000)  # input callback block
    output_latency: str = one_of("low", ("low", "high"))
    # a device that goes away: "follow" the new default (with a notice) or "stop"
    on_device_loss: str = one_of(OnDeviceLoss.FOLLOW.value, [policy.value for policy in OnDeviceLoss])


@dataclass
class VadConfig:
    threshold: float = probability(0.5)  # Silero speech probability that starts speech
    neg_threshold: float = probability(0.35)  # probability below which a frame counts as silence
    echo_threshold: float = probability(0.85)  # raised threshold while Samantha speaks (half-duplex gating)
    min_speech_ms: int = milliseconds(160, lo=0, hi=5000)  # shorter bursts are not speech
    preroll_ms: int = milliseconds(320, lo=0, hi=5000)  # audio kept before speech start


@dataclass
class EndpointConfig:
    """When a pause ends the user's turn."""

    speculate_after_ms: int = milliseconds(32)  # silence after which the turn so far is transcribed (maybe answered)
    partial_every_ms: int = milliseconds(1500, lo=100, hi=60_000)  # unbroken speech after which the words are read
    complete_silence_ms: int = milliseconds(360)  # silence that ends a turn whose words sound complete
    incomplete_silence_ms: int = milliseconds(1500)  # silence that ends a turn that sounds unfinished ("and so, um")
    max_silence_ms: int = milliseconds(2500)  # after this, the turn ends whatever it sounds like
    confident_end_p: float = probability(0.5)  # P(end) at which finished-sounding words are a confident end...
    confident_max_ms: int = milliseconds(750)  # ...that waits at most this long, however long the speaker paused before
    max_turn_s: float = between(28.0, 1, 30, "s")  # an utterance longer than this is cut into a turn (Whisper: 30 s)


@dataclass
class SttConfig:
    model: str | None = None  # registry name or CTranslate2 folder; None = registry default
    compute_type: str = one_of("int8", COMPUTE_TYPES)
    threads: int = allowed(default_threads, THREADS)  # a pass over the full 30 s window (plain cascade, offline)
    live_threads: int = allowed(1, THREADS)  # a live pass on a short window: tiny.en decodes faster on one
    beam_size: int = between(1, 1, 16)
    language: str = one_of("en", WHISPER_LANGUAGES, what='a Whisper language code such as "en" or "de"')
    short_window: bool = True  # encode only as many 10 ms frames as the audio needs (+ margin)
    min_window_s: float = between(5.0, 0, 30, "s", lo_open=True)  # shortest encoder window (shorter ones loop more)


@dataclass
class LlmConfig:
    model: str | None = None  # registry name or .gguf path; None = registry default
    # an OpenAI-compatible server's base URL (--llm-url, e.g. http://127.0.0.1:8080/v1); None = the embedded model
    url: str | None = None
    fallback: str = one_of("none", LLM_FALLBACKS)  # the server down at the start: fail ("none") or use "local"
    prompt_format: str = one_of("auto", PROMPT_FORMATS)  # "auto": the model's chat template (a server's: ChatML)
    threads: int = allowed(default_threads, THREADS)
    n_ctx: int = between(2048, 256, 131_072, TOKENS)
    max_reply_tokens: int = between(90, 1, 4096, TOKENS)
    temperature: float = between(0.7, 0, 2)
    top_p: float = between(0.9, 0, 1, lo_open=True)
    top_k: int = between(40, 0, 1000, "tokens; 0 = no limit")
    repeat_penalty: float = between(1.1, 1, 2)
    seed: int = between(7, 0, 2**31 - 1)
    history_budget_tokens: int = between(1100, 0, 131_072, TOKENS)  # tokens of conversation kept (persona excluded)


@dataclass
class TtsConfig:
    voice: str | None = None  # espeak-ng voice file, as `espeak-ng --voices` lists it (gmw/en-US); None = English
    rate_wpm: int = between(185, 80, 450, "words per minute")  # espeak-ng's range
    volume: float = between(1.0, 0, 1)


@dataclass
class SessionConfig:
    persona: Path | None = None  # persona TOML; None = the shipped Samantha
    log_dir: Path | None = None
    speculate: bool = True  # think in the pauses (streaming mode); False = the plain cascade
    barge_in_ms: int = milliseconds(300)  # user speech over Samantha for this long stops her
    echo_tail_ms: int = milliseconds(400, lo=0)  # after playback ends, keep the raised threshold this long
    recalibrate: bool = False
    memory: bool = True  # remember the user across sessions (False: a clean session, nothing kept)
    memory_file: Path | None = None  # where; None = memory.json in the user data folder

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

    def threads(self) -> dict[str, int]:
        """The CPU threads of each engine, for logs and benchmark files."""
        return {"stt": self.stt.threads, "stt_live": self.stt.live_threads, "llm": self.llm.threads}


# (section, key, other key, strictly): the key must stay below (strictly) or at most the other key
ORDER = (
    ("vad", "neg_threshold", "threshold", True),
    ("vad", "threshold", "echo_threshold", False),
    ("endpoint", "complete_silence_ms", "incomplete_silence_ms", False),
    ("endpoint", "incomplete_silence_ms", "max_silence_ms", False),
    ("llm", "max_reply_tokens", "n_ctx", True),
)


def load_config(path: Path | None) -> Config:
    """Defaults, overlaid by a TOML file whose tables are named after the sections above; checked (`validate`)."""
    config = Config()
    if path is None:
        return config
    try:
        data = tomllib.loads(Path(path).read_text())
    except FileNotFoundError as exc:
        raise ConfigError(f"config file {path} not found") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
    sections = [f.name for f in dataclasses.fields(config)]
    for section, values in data.items():
        if section not in sections:
            raise ConfigError(f"{path}: unknown section [{section}] (known: {', '.join(sections)})")
        if not isinstance(values, dict):
            raise ConfigError(f"{path} {section} = {_shown(values)}: must be a table ([{section}])")
        _apply(getattr(config, section), values, f"{path} [{section}]")
    validate(config, str(path))
    return config


def _apply(target: Any, values: dict[str, Any], where: str) -> None:
    known = {f.name for f in dataclasses.fields(target)}
    hints = get_type_hints(type(target))
    for key, value in values.items():
        if key not in known:
            raise ConfigError(f"{where}: unknown key {key!r} (known: {', '.join(known)})")
        setattr(target, key, _from_toml(value, hints[key]))


def _from_toml(value: Any, hint: Any) -> Any:
    """`value` as its field holds it: a string for a path field becomes a Path, an integer for a number a float."""
    kinds = _kinds(hint)
    if Path in kinds and isinstance(value, str):
        return Path(value).expanduser()
    if float in kinds and type(value) is int:
        return float(value)
    return value


def validate(config: Config, where: str = "config") -> None:
    """Raise `ConfigError` for the first value of `config` of the wrong type or out of its field's range, and for
    the first broken `ORDER` rule; the one-line message starts with `where` (the config file)."""
    for section in dataclasses.fields(config):
        part = getattr(config, section.name)
        hints = get_type_hints(type(part))
        for f in dataclasses.fields(part):
            value = getattr(part, f.name)
            check(f"{where} [{section.name}] {f.name} = {_shown(value)}", value, hints[f.name],
                  f.metadata.get("allowed", ANYTHING))
    for section_name, key, other, strictly in ORDER:
        part = getattr(config, section_name)
        value, limit = getattr(part, key), getattr(part, other)
        if value > limit or (strictly and value == limit):
            raise ConfigError(f"{where} [{section_name}] {key} = {_shown(value)}: must be "
                              f"{'below' if strictly else 'at most'} [{section_name}] {other} = {_shown(limit)}")


def check(name: str, value: Any, hint: Any, spec: Allowed) -> None:
    """Raise `ConfigError("{name}: must be …")` unless `value` is of type `hint` and within `spec`.
    `name` says which value it is (`config.toml [llm] n_ctx = -1`, `--threads 0`)."""
    if not _fits(value, hint, spec):
        raise ConfigError(f"{name}: must be {_requirement(hint, spec)}")


def _fits(value: Any, hint: Any, spec: Allowed) -> bool:
    if not any(_is_kind(value, kind) for kind in _kinds(hint)):
        return False
    if isinstance(value, str) and spec.choices:
        return value in spec.choices
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        above = spec.lo is None or (value > spec.lo if spec.lo_open else value >= spec.lo)
        below = spec.hi is None or (value < spec.hi if spec.hi_open else value <= spec.hi)
        return above and below  # NaN is neither
    return True


def _kinds(hint: Any) -> tuple[Any, ...]:
    """The types a field's annotation admits (`str | int | None` → str, int, NoneType)."""
    return get_args(hint) if get_origin(hint) in (Union, UnionType) else (hint,)


def _is_kind(value: Any, kind: Any) -> bool:
    """isinstance, except that a bool is no number and an int is a float too."""
    if isinstance(value, bool) and kind in (int, float):
        return False
    if kind is float:
        return isinstance(value, (int, float))
    return isinstance(value, kind)


_KIND_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false", Path: "a path"}


def _requirement(hint: Any, spec: Allowed) -> str:
    """What a value must be, in words: "an integer from 1 to 10000 (ms)", "one of "follow", "stop""."""
    if spec.what:
        text = spec.what
    elif spec.choices:
        text = "one of " + ", ".join(_shown(choice) for choice in spec.choices)
    else:
        text = " or ".join(_KIND_NAMES[kind] for kind in _kinds(hint) if kind is not type(None))
    if spec.lo is not None:
        text += " " + _range(spec)
    return text + (f" ({spec.unit})" if spec.unit else "")


def _range(spec: Allowed) -> str:
    """Where a number's bounds are, in words ("from 1 to 10000", "above 0 and at most 1", "of at least 1")."""
    if spec.hi is None:
        return f"above {spec.lo}" if spec.lo_open else f"of at least {spec.lo}"
    if not (spec.lo_open or spec.hi_open):
        return f"from {spec.lo} to {spec.hi}"
    low = f"above {spec.lo}" if spec.lo_open else f"at least {spec.lo}"
    high = f"below {spec.hi}" if spec.hi_open else f"at most {spec.hi}"
    return f"{low} and {high}"


def _shown(value: Any, limit: int = 60) -> str:
    """`value` as TOML would write it, on one line, cut short when long."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, (str, Path)):
        text = json.dumps(str(value), ensure_ascii=False)
    else:
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
