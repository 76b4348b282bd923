"""`voiceos doctor` (one line per check, with the fix) and `voiceos devices`."""

from __future__ import annotations

import ctypes.util
import os
import sys
from collections.abc import Callable

from voiceos import registry
from voiceos.config import LlmConfig, SttConfig
from voiceos.errors import DeviceError, VoiceosError
from voiceos.offline import OFFLINE_ENV, looks_like_hub_id

Check = tuple[str, bool, str]  # (what, ok, detail or fix)


def print_devices() -> int:
    try:
        import sounddevice as sd

        devices = sd.query_devices()
    except Exception as exc:
        raise DeviceError(f"PortAudio is not available ({exc}); install libportaudio2") from exc
    default_in, default_out = sd.default.device
    if not len(devices):
        print("no audio devices found (use `voiceos demo --input FILE.wav` to run without them)")
        return 0
    for i, d in enumerate(devices):
        mark = ("<" if i == default_in else " ") + (">" if i == default_out else " ")
        host = sd.query_hostapis(d["hostapi"])["name"]
        print(f"{mark} {i:3d} {d['name']} ({host}, {d['max_input_channels']} in, "
              f"{d['max_output_channels']} out, {d['default_samplerate']:.0f} Hz)")
    print("< default input, > default output (PULSE_SOURCE / PULSE_SINK choose them under PulseAudio)")
    return 0


def _check(name: str, fn: Callable[[], str]) -> Check:
    try:
        return name, True, fn()
    except Exception as exc:  # every failure becomes one line with its fix
        return name, False, str(exc)


def _python() -> str:
    if sys.version_info < (3, 10):
        raise VoiceosError(f"Python {sys.version.split()[0]} is too old: voiceos needs 3.10 or newer")
    return sys.version.split()[0]


def _portaudio() -> str:
    try:
        import sounddevice as sd
    except OSError as exc:
        raise VoiceosError("PortAudio library not found: sudo apt-get install libportaudio2") from exc
    return str(sd.get_portaudio_version()[1])


def _device(kind: str) -> Callable[[], str]:
    def check() -> str:
        import sounddevice as sd

        try:
            info = sd.query_devices(kind=kind)
        except Exception as exc:
            hint = "voiceos demo --input FILE.wav works without one" if kind == "input" else \
                "voiceos demo --out DIR writes replies as WAV files without one"
            raise VoiceosError(f"no default {kind} device ({exc}); {hint}") from exc
        return str(info["name"])

    return check


def _espeak() -> str:
    if not ctypes.util.find_library("espeak-ng") and not ctypes.util.find_library("espeak"):
        raise VoiceosError("libespeak-ng not found: sudo apt-get install espeak-ng libespeak-ng1")
    from voiceos.config import TtsConfig
    from voiceos.speak.tts import SpeechSynthesizer

    synth = SpeechSynthesizer(TtsConfig())
    chunk = synth.synthesize("Hello.")
    synth.close()
    if chunk.duration < 0.1:
        raise VoiceosError("espeak-ng produced no audio")
    return f"spoke 'Hello.' in {synth.last_ms:.0f} ms ({chunk.duration:.2f} s of audio)"


def _model(entry: registry.ModelEntry) -> Callable[[], str]:
    def check() -> str:
        problems = registry.verify(entry)
        if problems:
            raise VoiceosError(problems[0])
        return f"{entry.path} (SHA-256 ok)"

    return check


def _offline(specs: list[str | None]) -> str:
    for spec in specs:
        if spec and looks_like_hub_id(spec):
            raise VoiceosError(f"{spec!r} is a model hub id; give a local path or a registry name")
    unset = [k for k, v in OFFLINE_ENV.items() if os.environ.get(k) != v]
    if unset:
        raise VoiceosError(f"offline switches not set: {', '.join(unset)}")
    return "HF_HUB_OFFLINE=1 and friends set; every model is a local file"


def _threads() -> str:
    stt, llm = SttConfig(), LlmConfig()
    return (f"{os.cpu_count()} logical cores; by default the LLM uses {llm.threads}, Whisper {stt.live_threads} "
            f"while you talk and {stt.threads} on a full 30 s window")


def _resolves(spec: str, role: str) -> Callable[[], str]:
    return lambda: str(registry.resolve(spec, role).path)


def run_doctor(llm: str | None = None, stt: str | None = None) -> int:
    checks: list[Check] = [
        _check("python", _python),
        _check("portaudio", _portaudio),
        _check("input device", _device("input")),
        _check("output device", _device("output")),
        _check("espeak-ng via pyttsx3", _espeak),
        _check("cpu threads", _threads),
        _check("offline", lambda: _offline([llm, stt])),
    ]
    try:
        entries = registry.load_registry()
    except VoiceosError as exc:
        checks.append(("model registry", False, str(exc)))
        entries = []
    for entry in entries:
        checks.append(_check(f"model {entry.name}", _model(entry)))
    for spec, role in ((llm, "llm"), (stt, "stt")):
        if spec:
            checks.append(_check(f"--{role} {spec}", _resolves(spec, role)))
    needed_fail = False
    for name, ok, detail in checks:
        print(f"{'ok  ' if ok else 'FAIL'} {name}: {detail}")
        if not ok and not name.endswith("device"):
            needed_fail = True
    devices_missing = any(not ok for name, ok, _ in checks if name.endswith("device"))
    if devices_missing:
        print("note: without audio devices, `voiceos demo` still runs (WAV in, WAV out); `voiceos chat` needs both.")
    return 1 if needed_fail else 0
