"""Word boundaries accurate enough to measure pauses.

Whisper's word timestamps come from cross-attention and often stretch a word over the silence after it.
`refine_words` keeps Whisper's words and order but moves each boundary to the silence the audio actually
has there (10 ms frame energy), so a 250 ms pause measures as ~250 ms and no pause is invented.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from voiceos.config import SAMPLE_RATE
from voiceos.stt import Word

HOP_S = 0.01
MIN_GAP_S = 0.06  # shorter silences are closures inside speech, not pauses


def frame_energy_db(samples: np.ndarray) -> np.ndarray:
    hop = int(HOP_S * SAMPLE_RATE)
    n = len(samples) // hop
    if n == 0:
        return np.zeros(0)
    frames = samples[: n * hop].reshape(n, hop).astype(np.float64)
    return 10.0 * np.log10(np.mean(frames * frames, axis=1) + 1e-12)


def silence_mask(energy_db: np.ndarray) -> np.ndarray:
    if energy_db.size == 0:
        return np.zeros(0, dtype=bool)
    floor = float(np.percentile(energy_db, 5))
    peak = float(np.percentile(energy_db, 95))
    threshold = max(floor + 12.0, peak - 38.0)
    return energy_db < threshold


def _longest_run(mask: np.ndarray, lo: int, hi: int) -> tuple[int, int]:
    best = (lo, lo)
    start = None
    for k in range(lo, hi):
        if mask[k] and start is None:
            start = k
        if (not mask[k] or k == hi - 1) and start is not None:
            end = k + 1 if mask[k] else k
            if end - start > best[1] - best[0]:
                best = (start, end)
            start = None
    return best


def refine_words(words: list[Word], samples: np.ndarray) -> list[Word]:
    """Move word boundaries (seconds from the start of `samples`) onto the audio's real silences."""
    if not words:
        return []
    silent = silence_mask(frame_energy_db(samples))
    n = len(silent)
    if n == 0:
        return list(words)

    def idx(t: float) -> int:
        return int(min(n, max(0, round(t / HOP_S))))

    out = [replace(w) for w in words]
    # First word start: first sound near Whisper's start.
    lo, hi = idx(out[0].start - 0.3), idx(out[0].end)
    sound = np.flatnonzero(~silent[lo:hi])
    if sound.size:
        out[0] = replace(out[0], start=(lo + sound[0]) * HOP_S)
    # Last word end: last sound before the silence that follows it.
    lo, hi = idx(out[-1].start), idx(out[-1].end + 0.4)
    sound = np.flatnonzero(~silent[lo:hi])
    if sound.size:
        out[-1] = replace(out[-1], end=(lo + sound[-1] + 1) * HOP_S)
    for i in range(len(out) - 1):
        a, b = out[i], out[i + 1]
        lo = idx(a.start + 0.5 * max(0.0, a.end - a.start))
        hi = idx(b.start + 0.5 * max(0.0, b.end - b.start))
        lo, hi = min(lo, idx(a.end)), max(hi, idx(b.start))
        start, end = _longest_run(silent, lo, max(lo, hi)) if hi > lo else (lo, lo)
        if (end - start) * HOP_S >= MIN_GAP_S:
            new_end, new_start = start * HOP_S, end * HOP_S
        else:  # no real silence here: the words touch
            mid = 0.5 * (a.end + b.start) if b.start > a.end else b.start
            new_end = new_start = mid
        out[i] = replace(a, end=max(a.start + 0.01, new_end))
        out[i + 1] = replace(b, start=min(max(new_start, out[i].end), b.end - 0.01 if b.end > b.start else b.end))
    return out
