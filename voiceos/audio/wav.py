"""WAV files in and out, and resampling.

Inside voiceos all audio is 16 kHz mono float32 in [-1, 1]; `read_wav` converts any common WAV
(8/16/24/32-bit, float, any rate, stereo) on the way in and says clearly when it cannot. A WAV cut short
(its header promises more than the file holds) is used as far as it goes, with a warning.
"""

from __future__ import annotations

import logging
import wave
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from voiceos.config import SAMPLE_RATE
from voiceos.errors import AudioInputError

log = logging.getLogger(__name__)

TRUNCATED_BY_S = 1e-3  # missing audio shorter than this is rounding, not a file cut short
_UNKNOWN_LENGTHS = (0, 0xFFFFFFFF)  # data sizes of WAVs written as a stream, before their length was known


@dataclass(frozen=True)
class WavLength:
    """A WAV file's length by its header, and by the bytes of its `data` chunk actually in the file."""

    promised_s: float
    present_s: float

    @property
    def truncated(self) -> bool:
        return self.promised_s - self.present_s > TRUNCATED_BY_S


@dataclass(frozen=True)
class WavInfo:
    """What a WAV file held before conversion."""

    path: Path
    rate: int  # Hz
    channels: int
    duration: float  # seconds of audio read
    header: WavLength | None = None  # what a WAV's header promises and what the file holds (None: not told)

    @property
    def truncated(self) -> bool:
        """The file holds less audio than its header promises (a copy or a recording cut short)."""
        return self.header is not None and self.header.truncated

    @property
    def truncation_warning(self) -> str | None:
        """One line for the user when the file is truncated, else None."""
        if self.header is None or not self.header.truncated:
            return None
        present, promised = _seconds_apart(self.header.present_s, self.header.promised_s)
        return f"{self.path} is truncated: {present} s of {promised} s present; using what is there"


Warn = Callable[[str], None]


def read_wav(path: Path | str, *, warn: Warn | None = None) -> tuple[np.ndarray, WavInfo]:
    """Read any common audio file as 16 kHz mono float32; raise AudioInputError with one clear line.

    A truncated WAV is used as far as it goes: `warn` gets "warning: <path> is truncated: …" (the commands
    pass their status line); without `warn` the warning is logged."""
    path = Path(path)
    if path.is_dir():
        raise AudioInputError(f"{path} is a directory, not an audio file")
    if not path.exists():
        raise AudioInputError(f"{path}: no such file")
    if not path.is_file():
        raise AudioInputError(f"{path}: not a regular file")
    if path.stat().st_size == 0:
        raise AudioInputError(f"{path}: the file is empty")
    try:
        header = wav_length(path)
    except OSError as exc:
        raise AudioInputError(f"{path}: cannot be read ({exc.strerror or type(exc).__name__})") from exc
    import av  # PyAV comes with faster-whisper and decodes/resamples every common format
    from faster_whisper.audio import decode_audio

    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            streams = container.streams.audio
            if not streams:
                raise AudioInputError(f"{path}: no audio stream in the file")
            rate = int(streams[0].rate or 0)
            channels = int(streams[0].channels or 0)
        samples = decode_audio(str(path), sampling_rate=SAMPLE_RATE)
    except AudioInputError:
        raise
    except Exception as exc:  # PyAV raises many error types for corrupt input
        raise AudioInputError(f"{path}: not a readable audio file ({type(exc).__name__})") from exc
    samples = np.asarray(samples, dtype=np.float32)
    if samples.size == 0:
        if header is not None and header.truncated:
            raise AudioInputError(f"{path}: the file holds no audio samples (it ends after its header, which "
                                  f"promises {header.promised_s:.1f} s)")
        raise AudioInputError(f"{path}: the file holds no audio samples")
    if not np.isfinite(samples).all():
        raise AudioInputError(f"{path}: the audio holds invalid (NaN/inf) samples")
    info = WavInfo(path, rate, channels, len(samples) / SAMPLE_RATE, header)
    warning = info.truncation_warning
    if warning is not None:
        if warn is not None:
            warn(f"warning: {warning}")
        else:
            log.warning("%s", warning)
    return samples, info


def wav_length(path: Path) -> WavLength | None:
    """What a RIFF/WAVE file's header promises (its `data` chunk's size over the byte rate) and how much of
    that chunk the file holds; None for other files, a header too broken to say, or a streamed WAV that
    gives no length."""
    file_size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        byte_rate = 0
        while True:
            chunk = f.read(8)
            if len(chunk) < 8:
                return None
            kind, size = chunk[:4], int.from_bytes(chunk[4:], "little")
            if kind == b"data":
                if not byte_rate or size in _UNKNOWN_LENGTHS:
                    return None
                present = min(size, max(file_size - f.tell(), 0))
                return WavLength(size / byte_rate, present / byte_rate)
            if kind == b"fmt ":
                fmt = f.read(size)
                if len(fmt) < 16:
                    return None
                byte_rate = int.from_bytes(fmt[8:12], "little")
                f.seek(size % 2, 1)  # chunks are padded to an even length
            else:
                f.seek(size + size % 2, 1)


def _seconds_apart(present_s: float, promised_s: float) -> tuple[str, str]:
    """Both durations with as few decimals (1 to 3) as tell them apart."""
    for decimals in (1, 2, 3):
        a, b = f"{present_s:.{decimals}f}", f"{promised_s:.{decimals}f}"
        if a != b:
            break
    return a, b


def write_wav(path: Path | str, samples: np.ndarray, rate: int = SAMPLE_RATE) -> Path:
    """Write mono float32 samples as a 16-bit PCM WAV."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pcm = (np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2")
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(pcm.tobytes())
    return path


def resample(samples: np.ndarray, rate_in: int, rate_out: int = SAMPLE_RATE) -> np.ndarray:
    """Band-limited resampling of a mono block (windowed-sinc via FFT; fine for speech)."""
    if rate_in == rate_out or samples.size == 0:
        return samples.astype(np.float32, copy=False)
    n_out = int(round(len(samples) * rate_out / rate_in))
    spectrum = np.fft.rfft(samples)
    keep = min(len(spectrum), n_out // 2 + 1)
    out = np.fft.irfft(spectrum[:keep], n_out) * (n_out / len(samples))
    return out.astype(np.float32)
