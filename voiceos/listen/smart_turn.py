"""Does the turn sound finished? Smart Turn v3.2 (pipecat-ai, BSD-2): an audio end-of-turn model.

The model hears the last 8 s of the turn (left-padded with zeros) as 80-bin Whisper log-mel features and
gives P(complete) from the voice itself: pitch falling at the end of a statement, a word drawn out before a
hesitation. It complements the two signals the turn detector already has (the words, and the LLM's
P(end)); it is not trusted alone (on read sentences its P(complete) ranges 0.02–0.99).

The log-mel is Whisper's (Hann window 400, hop 160, Slaney mel filters, log10 clamped 8 below the peak,
scaled to about [-1, 1]) after zero-mean unit-variance normalisation of the waveform, as the model was
trained with `WhisperFeatureExtractor(chunk_length=8, do_normalize=True)`.
"""

from __future__ import annotations

import logging
from functools import cache
from pathlib import Path
from typing import Protocol

import numpy as np

from voiceos.config import SAMPLE_RATE
from voiceos.errors import ModelError

log = logging.getLogger(__name__)

WINDOW_S = 8  # the model hears the last 8 seconds
N_FFT = 400
HOP = 160
N_MELS = 80


class TurnCompletion(Protocol):
    def __call__(self, audio: np.ndarray) -> float:
        """P(the speaker has finished their turn) from the turn's 16 kHz mono audio, up to its last sample."""
        ...


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney's mel scale: linear below 1 kHz, logarithmic above."""
    mel = 3.0 * hz / 200.0
    log_region = hz >= 1000.0
    mel[log_region] = 15.0 + np.log(hz[log_region] / 1000.0) * (27.0 / np.log(6.4))
    return mel


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    hz = 200.0 * mel / 3.0
    log_region = mel >= 15.0
    hz[log_region] = 1000.0 * np.exp((np.log(6.4) / 27.0) * (mel[log_region] - 15.0))
    return hz


@cache
def _mel_filters() -> np.ndarray:
    """(N_FFT//2+1, N_MELS) Slaney-normalised triangular filters from 0 Hz to Nyquist."""
    edges = _mel_to_hz(np.linspace(_hz_to_mel(np.array([0.0]))[0], _hz_to_mel(np.array([SAMPLE_RATE / 2]))[0],
                                   N_MELS + 2))
    bins = np.linspace(0, SAMPLE_RATE // 2, N_FFT // 2 + 1)
    slopes = edges[None, :] - bins[:, None]
    widths = np.diff(edges)
    down = -slopes[:, :-2] / widths[:-1]
    up = slopes[:, 2:] / widths[1:]
    filters = np.maximum(0.0, np.minimum(down, up))
    normalised: np.ndarray = filters * (2.0 / (edges[2:] - edges[:-2]))[None, :]
    return normalised


def log_mel(audio: np.ndarray) -> np.ndarray:
    """(80, 800) features of the last `WINDOW_S` seconds of `audio`, left-padded with zeros."""
    n = WINDOW_S * SAMPLE_RATE
    x = np.asarray(audio, dtype=np.float32)[-n:]
    x = np.pad(x, (n - len(x), 0))
    x = (x - x.mean()) / np.sqrt(x.var() + 1e-7)
    padded = np.pad(x.astype(np.float64), (N_FFT // 2, N_FFT // 2), mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP]
    power = np.abs(np.fft.rfft(frames * np.hanning(N_FFT + 1)[:-1], axis=-1)) ** 2
    spec = np.log10(np.maximum(1e-10, power @ _mel_filters())).T[:, :-1]
    spec = np.maximum(spec, spec.max() - 8.0)
    features: np.ndarray = ((spec + 4.0) / 4.0).astype(np.float32)
    return features


class SmartTurn:
    """The ONNX model on one thread (it is called in pauses, when the cores are otherwise free)."""

    def __init__(self, model_path: Path) -> None:
        import onnxruntime

        opts = onnxruntime.SessionOptions()
        opts.inter_op_num_threads = 1
        opts.intra_op_num_threads = 1
        opts.log_severity_level = 4
        try:
            self._session = onnxruntime.InferenceSession(str(model_path), providers=["CPUExecutionProvider"],
                                                         sess_options=opts)
        except Exception as exc:
            raise ModelError(f"cannot load the end-of-turn model {model_path}: {exc}") from exc

    def __call__(self, audio: np.ndarray) -> float:
        features = log_mel(audio)[None, :, :]
        out = self._session.run(None, {"input_features": features})[0]
        return float(np.asarray(out).reshape(-1)[0])
