"""Not hearing herself: echo identification, delay-and-subtract, and half-duplex gating.

While Samantha's voice may come back into the microphone (during playback and `echo_tail_ms` after), the
last 256 ms of microphone audio is cross-correlated with what was played over 0–0.7 s of delay. When they
match (normalised correlation ≥ `match`: the microphone is mostly her) at the same delay in two searches in a
row, the delay and the speaker→microphone coupling are learned. The second search is what tells her echo from
a voice like hers: espeak-ng's user and espeak-ng's Samantha can match somewhere in 0.7 s (tests/test_echo_gate.py),
but at another delay each time, while an echo path keeps its delay. Each frame then:
1. has the aligned, scaled reference subtracted (a digital loopback cancels almost exactly);
2. counts as the user only if it is clearly louder (`margin_db`) than the echo expected from the coupling
   and the loudest output level around the learned delay, and
3. Silero's probability clears the raised `echo_threshold` (applied by the voice loop).
User speech does not correlate with her voice, so it never teaches the gate a higher coupling: with a headset
(coupling ~0) barge-in is easy; with open speakers the user must be heard over her echo, as with a person.
"""

from __future__ import annotations

import collections

import numpy as np

from voiceos.audio.interfaces import Playback
from voiceos.config import FRAME_SAMPLES, SAMPLE_RATE, SessionConfig

LAG_AGREE_S = 0.002  # two searches in a row must find the echo this close to the same delay


class EchoGate:
    def __init__(self, playback: Playback | None, session: SessionConfig, *,
                 max_delay_s: float = 0.7, window_frames: int = 8, match: float = 0.5,
                 margin_db: float = 6.0, search_every: int = 2) -> None:
        self.playback = playback
        self.tail_s = session.echo_tail_ms / 1000.0
        self.max_delay_s = max_delay_s
        self.match = match
        self.margin = 10 ** (margin_db / 20.0)
        self.search_every = search_every
        self._mic: collections.deque[np.ndarray] = collections.deque(maxlen=window_frames)
        self._frames = 0
        self.lag_s: float | None = None  # learned echo delay (s)
        self.coupling = 0.0  # learned echo level relative to the output level
        self.correlation = 0.0  # best normalised correlation of an echo learned (0..1)
        self.cancelled_frames = 0  # frames in which a matching echo was subtracted
        self.gated_frames = 0  # frames judged to be only her echo
        self._candidate_lag_s: float | None = None  # the last search's match, learned when the next one agrees

    def active(self, t: float) -> bool:
        """Is her voice possibly in the microphone at session time t?"""
        if self.playback is None:
            return False
        return t - self.playback.last_audible_t() <= self.tail_s + self.max_delay_s

    def clean(self, frame: np.ndarray, t: float) -> tuple[np.ndarray, bool]:
        """The frame the VAD should hear and whether her echo may be in it. A frame judged to be only
        echo comes back as silence."""
        self._mic.append(frame)
        if not self.active(t):
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
        if self._frames % self.search_every == 0:
            self._search(mic, ref, t0, t_end)
        heard = frame
        if self.lag_s is not None:
            k = int(round((t_end - n / SAMPLE_RATE - self.lag_s - t0) * SAMPLE_RATE))
            k = min(max(k, 0), len(ref) - n)
            aligned = ref[k : k + n]
            energy = float(np.dot(aligned, aligned))
            if energy > 1e-9:
                gain = float(np.dot(mic, aligned)) / energy
                if gain > 0:
                    heard = (frame - gain * aligned[-FRAME_SAMPLES:]).astype(np.float32)
                    self.cancelled_frames += 1
            # Loudest output around the learned delay (±60 ms for jitter) times the coupling.
            lo = max(0, k + n - FRAME_SAMPLES - 960)
            hi = min(len(ref), k + n + 960)
            near = ref[lo:hi]
            out_rms = float(np.sqrt(np.max(np.convolve(near * near, np.ones(160) / 160, "valid")))) if len(
                near) >= 160 else 0.0
            heard_rms = float(np.sqrt(np.mean(heard * heard)))
            if heard_rms < self.coupling * out_rms * self.margin:
                self.gated_frames += 1
                return np.zeros_like(frame), True
        return heard, True

    def _search(self, mic: np.ndarray, ref: np.ndarray, t0: float, t_end: float) -> None:
        n = len(mic)
        mic_energy = float(np.dot(mic, mic))
        if mic_energy <= 1e-9:
            return
        size = 1 << int(np.ceil(np.log2(len(ref) + n)))
        corr = np.fft.irfft(np.conj(np.fft.rfft(mic, size)) * np.fft.rfft(ref, size), size)[: len(ref) - n + 1]
        csum = np.concatenate([[0.0], np.cumsum(ref.astype(np.float64) ** 2)])
        seg_energy = csum[n:] - csum[:-n]
        ncc = corr / np.sqrt(np.maximum(seg_energy, 1e-12) * mic_energy)
        k = int(np.argmax(ncc))
        if ncc[k] < self.match or seg_energy[k] <= 1e-9:
            self._candidate_lag_s = None
            return
        # the microphone window starts at t_end - n/rate; the matching reference starts at t0 + k/rate
        lag_s = (t_end - n / SAMPLE_RATE) - (t0 + k / SAMPLE_RATE)
        candidate, self._candidate_lag_s = self._candidate_lag_s, lag_s
        if candidate is None or abs(candidate - lag_s) > LAG_AGREE_S:
            return  # an echo path keeps its delay; a voice like hers matches once, somewhere else each time
        self.correlation = max(self.correlation, float(ncc[k]))
        self.lag_s = lag_s
        coupling = float(np.sqrt(mic_energy / seg_energy[k]))
        self.coupling = coupling if self.coupling == 0.0 else 0.7 * self.coupling + 0.3 * coupling
