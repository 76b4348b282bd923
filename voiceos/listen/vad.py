"""Voice activity: Silero VAD v6 (the ONNX model in faster-whisper's assets) on streaming 32 ms frames.

faster-whisper's `SileroVADModel.__call__` resets the recurrent state on every call, so this module
drives the ONNX session itself and carries `h`, `c` and the 64-sample context from frame to frame.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Protocol

import numpy as np

from voiceos.config import FRAME_SAMPLES

log = logging.getLogger(__name__)

CONTEXT_SAMPLES = 64  # Silero v6 at 16 kHz looks at 64 samples of the previous frame


class VoiceActivity(Protocol):
    def __call__(self, frame: np.ndarray) -> float:
        """Probability (0..1) that this 512-sample frame holds speech; state carries to the next call."""
        ...


def silero_model_path() -> Path:
    """The registry's installed copy if present, else the asset inside faster-whisper."""
    from voiceos import registry

    try:
        return registry.resolve(None, "vad").path
    except Exception:
        from faster_whisper.utils import get_assets_path

        return Path(get_assets_path()) / "silero_vad_v6.onnx"


class StreamingVad:
    """Speech probability for each 512-sample frame, state carried across calls. One thread only."""

    def __init__(self, model_path: Path | None = None) -> None:
        import onnxruntime

        opts = onnxruntime.SessionOptions()
        opts.inter_op_num_threads = 1
        opts.intra_op_num_threads = 1
        opts.enable_cpu_mem_arena = False
        opts.log_severity_level = 4
        path = model_path or silero_model_path()
        self._session = onnxruntime.InferenceSession(
            str(path), providers=["CPUExecutionProvider"], sess_options=opts
        )
        self.reset()

    def reset(self) -> None:
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._context = np.zeros(CONTEXT_SAMPLES, dtype=np.float32)

    def __call__(self, frame: np.ndarray) -> float:
        """Probability (0..1) that this 32 ms frame holds speech."""
        if frame.shape != (FRAME_SAMPLES,):
            raise ValueError(f"VAD frames must be {FRAME_SAMPLES} samples, got {frame.shape}")
        batch = np.concatenate([self._context, frame.astype(np.float32, copy=False)])[None, :]
        out, self._h, self._c = self._session.run(None, {"input": batch, "h": self._h, "c": self._c})
        self._context = frame[-CONTEXT_SAMPLES:].astype(np.float32, copy=True)
        return float(np.asarray(out).reshape(-1)[0])

    def probabilities(self, samples: np.ndarray) -> np.ndarray:
        """Frame-by-frame probabilities of a whole buffer (continuing the current state)."""
        n = len(samples) // FRAME_SAMPLES
        return np.array([self(samples[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES]) for i in range(n)])
