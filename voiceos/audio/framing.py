"""Blocks of any length into the 512-sample (32 ms) frames the VAD and the turn detector work on."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from voiceos.config import FRAME_SAMPLES, SAMPLE_RATE


class Framer:
    """Cuts a stream of blocks into whole frames, carrying the remainder to the next block."""

    def __init__(self) -> None:
        self._carry = np.zeros(0, np.float32)
        self.end_t = 0.0  # session time just after the last whole frame given out

    def frames(self, samples: np.ndarray, start: float) -> Iterator[tuple[np.ndarray, float]]:
        """(frame, session time of its first sample) for every whole frame the block completes."""
        if self._carry.size:
            samples = np.concatenate([self._carry, samples])
            start = self.end_t
        n = len(samples) // FRAME_SAMPLES
        self._carry = samples[n * FRAME_SAMPLES :]
        self.end_t = start + n * FRAME_SAMPLES / SAMPLE_RATE
        for i in range(n):
            yield samples[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES], start + i * FRAME_SAMPLES / SAMPLE_RATE
