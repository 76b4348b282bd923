"""Not hearing herself: a delay-and-subtract echo canceller plus half-duplex gating.

While Samantha's voice may be coming back into the microphone (during playback and `echo_tail_ms` after),
each microphone frame is compared with what was played: the last 256 ms of microphone audio is
cross-correlated with the reference over 0–0.7 s of delay; when they match (normalised correlation above
`match`), the best-aligned, least-squares-scaled reference is subtracted and the VAD hears the residual —
the user's voice, if any. On top of that the turn detector uses the raised `echo_threshold` (half-duplex
gating), so reverberation the subtraction misses is not taken for the user. A digital loopback cancels almost
exactly; open laptop speakers leave some residue, which the raised threshold absorbs.
"""

from __future__ import annotations

import collections
from typing import Protocol

import numpy as np

from voiceos.config import FRAME_SAMPLES, SAMPLE_RATE, SessionConfig


class PlaybackReference(Protocol):
    def reference(self, t0: float, t1: float) -> np.ndarray: ...

    def last_audible_t(self) -> float: ...


class EchoGate:
    def __init__(self, playback: PlaybackReference | None, session: SessionConfig, *,
                 max_delay_s: float = 0.7, window_frames: int = 8, match: float = 0.3,
                 search_every: int = 4) -> None:
        self.playback = playback
        self.tail_s = session.echo_tail_ms / 1000.0
        self.max_delay_s = max_delay_s
        self.match = match
        self.search_every = search_every
        self._mic: collections.deque[np.ndarray] = collections.deque(maxlen=window_frames)
        self._frames = 0
        self._lag_s: float | None = None  # current echo delay estimate (s)
        self.correlation = 0.0
        self.cancelled_frames = 0

    def active(self, t: float) -> bool:
        """Is her voice possibly in the microphone at session time t?"""
        if self.playback is None:
            return False
        return t - self.playback.last_audible_t() <= self.tail_s + self.max_delay_s

    def clean(self, frame: np.ndarray, t: float) -> tuple[np.ndarray, bool]:
        """The frame the VAD should hear (echo subtracted) and whether the echo gate is active."""
        self._mic.append(frame)
        if not self.active(t):
            self._lag_s = None
            return frame, False
        assert self.playback is not None
        mic = np.concatenate(self._mic)
        n = len(mic)
        t_end = t + FRAME_SAMPLES / SAMPLE_RATE
        t0 = t_end - n / SAMPLE_RATE - self.max_delay_s
        ref = self.playback.reference(t0, t_end + 0.05)
        if len(ref) < n or not np.any(ref):
            return frame, True
        self._frames += 1
        if self._lag_s is None or self._frames % self.search_every == 0:
            self._search(mic, ref, t0, t_end)
        if self._lag_s is None:
            return frame, True
        k = int(round((t_end - n / SAMPLE_RATE - self._lag_s - t0) * SAMPLE_RATE))
        k = min(max(k, 0), len(ref) - n)
        aligned = ref[k : k + n]
        energy = float(np.dot(aligned, aligned))
        if energy <= 1e-9:
            return frame, True
        gain = float(np.dot(mic, aligned)) / energy
        if gain <= 0:
            return frame, True
        self.cancelled_frames += 1
        return (frame - gain * aligned[-FRAME_SAMPLES:]).astype(np.float32), True

    def _search(self, mic: np.ndarray, ref: np.ndarray, t0: float, t_end: float) -> None:
        n = len(mic)
        size = 1 << int(np.ceil(np.log2(len(ref) + n)))
        corr = np.fft.irfft(np.conj(np.fft.rfft(mic, size)) * np.fft.rfft(ref, size), size)[: len(ref) - n + 1]
        csum = np.concatenate([[0.0], np.cumsum(ref.astype(np.float64) ** 2)])
        seg_energy = csum[n:] - csum[:-n]
        mic_energy = float(np.dot(mic, mic))
        if mic_energy <= 1e-9:
            return
        ncc = corr / np.sqrt(np.maximum(seg_energy, 1e-12) * mic_energy)
        k = int(np.argmax(ncc))
        self.correlation = float(ncc[k])
        if self.correlation >= self.match:
            # mic window starts at t_end - n/rate; the matching reference starts at t0 + k/rate
            self._lag_s = (t_end - n / SAMPLE_RATE) - (t0 + k / SAMPLE_RATE)
        elif self._lag_s is not None and self.correlation < self.match / 2:
            self._lag_s = None
