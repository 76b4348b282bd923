"""Audio devices as PortAudio sees them: find one by index or name, and check that a default exists."""

from __future__ import annotations

from voiceos.errors import DeviceError


def find_device(spec: str | int | None, kind: str) -> int | None:
    """A PortAudio device index from an index or (part of) a name; None for the default."""
    import sounddevice as sd

    if spec is None or spec == "":
        return None
    try:
        devices = sd.query_devices()
    except Exception as exc:
        raise DeviceError(f"PortAudio cannot list devices: {exc}") from exc
    channel_key = "max_input_channels" if kind == "input" else "max_output_channels"
    if isinstance(spec, int) or str(spec).isdigit():
        index = int(spec)
        if not 0 <= index < len(devices) or devices[index][channel_key] < 1:
            raise DeviceError(f"no {kind} device with index {index}; see `voiceos devices`")
        return index
    matches = [i for i, d in enumerate(devices) if str(spec).lower() in d["name"].lower() and d[channel_key] > 0]
    if not matches:
        raise DeviceError(f"no {kind} device named {spec!r}; see `voiceos devices`")
    return matches[0]


def check_default_device(kind: str) -> None:
    """Raise a DeviceError that points at the offline demo when there is no default device."""
    import sounddevice as sd

    try:
        sd.query_devices(kind=kind)
    except Exception as exc:
        hint = "use `voiceos demo --input FILE.wav` to talk from WAV files" if kind == "input" else (
            "use `voiceos demo --out DIR` to write replies as WAV files")
        raise DeviceError(f"no audio {kind} device found ({exc}); {hint}") from exc
