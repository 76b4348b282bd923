"""WAV files in and out, and resampling.

Inside voiceos all audio is 16 kHz mono float32 in [-1, 1]; `read_wav` converts any common WAV
(8/16/24/32-bit, float, any rate, stereo) on the way in and says clearly when it cannot.
"""

from __future__ import annotations

import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from voiceos.config import SAMPLE_RATE
from voiceos.errors import AudioInputError


@dataclass(frozen=True)
class WavInfo:
    """What a WAV file held before conversion."""

    path: Path
    rate: int  # Hz
    channels: int
    duration: float  # seconds


def read_wav(path: Path | str) -> tuple[np.ndarray, WavInfo]:
    """Read any common audio file as 16 kHz mono float32; raise AudioInputError with one clear line."""
    path = Path(path)
    if not path.is_file():
        raise AudioInputError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise AudioInputError(f"{path}: the file is empty")
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
        raise AudioInputError(f"{path}: the file holds no audio samples")
    if not np.isfinite(samples).all():
        raise AudioInputError(f"{path}: the audio holds invalid (NaN/inf) samples")
    return samples, WavInfo(path, rate, channels, len(samples) / SAMPLE_RATE)


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
