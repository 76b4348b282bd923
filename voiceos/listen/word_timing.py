"""Word boundaries accurate enough to measure pauses.

Whisper's word timestamps come from cross-attention: on short clips its boundaries between words can be
off by half a second, and it lets a word stretch over the silence after it (or before it). `refine_words`
keeps Whisper's words and order but puts each boundary on a silence the audio actually has (10 ms frame
energy): the silent runs inside the speech are matched to the boundaries in order (a monotone alignment
that prefers long silences and boundaries Whisper placed nearby), so a 250 ms pause measures as ~250 ms,
wherever Whisper put it, and no pause is invented where the words touch.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from voiceos.config import SAMPLE_RATE
from voiceos.listen.transcript import Word

HOP_S = 0.01
MIN_GAP_S = 0.06  # shorter silences are closures inside speech, not pauses
# What a boundary "pays" (seconds of silence) per second it sits away from a silence. Whisper's boundaries
# fall inside the pause or late (it lets the word before stretch over the pause, or puts the next word's
# start a little after its onset) far more often than early, so a silence lying after Whisper's boundary
# costs more than one lying before it.
LATE_WEIGHT = 0.5  # the silence ends before Whisper's boundary
EARLY_WEIGHT = 1.5  # the silence starts after Whisper's boundary
MIN_WORD_S = 0.01


def frame_energy_db(samples: np.ndarray, hop_s: float = HOP_S) -> np.ndarray:
    """Loudness (dB) of each `hop_s` block of `samples`."""
    hop = int(round(hop_s * SAMPLE_RATE))
    n = len(samples) // hop
    if n == 0:
        return np.zeros(0)
    frames = samples[: n * hop].reshape(n, hop).astype(np.float64)
    energy: np.ndarray = 10.0 * np.log10(np.mean(frames * frames, axis=1) + 1e-12)
    return energy


def silence_mask(energy_db: np.ndarray) -> np.ndarray:
    if energy_db.size == 0:
        return np.zeros(0, dtype=bool)
    floor = float(np.percentile(energy_db, 5))
    peak = float(np.percentile(energy_db, 95))
    threshold = max(floor + 12.0, peak - 38.0)
    return energy_db < threshold


def silent_runs(mask: np.ndarray, lo: int, hi: int, min_frames: int = 1) -> list[tuple[int, int]]:
    """Maximal runs [start, end) of silent frames inside frames [lo, hi), at least `min_frames` long."""
    runs = []
    start = None
    for k in range(lo, hi):
        if mask[k] and start is None:
            start = k
        elif not mask[k] and start is not None:
            if k - start >= min_frames:
                runs.append((start, k))
            start = None
    if start is not None and hi - start >= min_frames:
        runs.append((start, hi))
    return runs


def _align(bounds: list[tuple[float, float]], runs: list[tuple[float, float]]) -> list[int | None]:
    """Match silences to word boundaries in order; each used at most once. Returns a run index per boundary.

    A match scores the silence's length minus how far it lies from Whisper's boundary (the stretch between
    its end of one word and start of the next), weighted by `LATE_WEIGHT`/`EARLY_WEIGHT`; the alignment
    maximising the total wins, so every long pause finds a boundary and a short closure inside a word only
    takes a boundary that is close.
    """
    nb, nr = len(bounds), len(runs)
    score = np.zeros((nb + 1, nr + 1))
    move = np.zeros((nb + 1, nr + 1), dtype=np.int8)  # 0 skip boundary, 1 skip run, 2 match

    def gain(i: int, j: int) -> float:
        (w0, w1), (r0, r1) = bounds[i], runs[j]
        return (r1 - r0) - LATE_WEIGHT * max(0.0, w0 - r1) - EARLY_WEIGHT * max(0.0, r0 - w1)

    for i in range(nb + 1):
        for j in range(nr + 1):
            if i == 0 and j == 0:
                continue
            best, how = -np.inf, 0
            if i > 0 and score[i - 1, j] > best:
                best, how = score[i - 1, j], 0
            if j > 0 and score[i, j - 1] > best:
                best, how = score[i, j - 1], 1
            if i > 0 and j > 0:
                g = gain(i - 1, j - 1)
                if g > 0 and score[i - 1, j - 1] + g > best:
                    best, how = score[i - 1, j - 1] + g, 2
            score[i, j], move[i, j] = best, how
    matched: list[int | None] = [None] * nb
    i, j = nb, nr
    while i > 0 or j > 0:
        how = move[i, j]
        if how == 2:
            matched[i - 1] = j - 1
            i, j = i - 1, j - 1
        elif how == 1:
            j -= 1
        else:
            i -= 1
    return matched


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

    first, last = words[0], words[-1]
    # Speech begins at the first sound near Whisper's first word and ends at the last sound near its last.
    lo, hi = idx(first.start - 0.3), max(idx(first.end), idx(first.start) + 1)
    sound = np.flatnonzero(~silent[lo:hi])
    begin = float((lo + sound[0]) * HOP_S) if sound.size else first.start
    lo, hi = idx(last.start), idx(last.end + 0.4)
    sound = np.flatnonzero(~silent[lo:hi])
    if not sound.size:  # Whisper put its last word on silence or past the audio: speech ends at the last sound
        lo, hi = idx(begin), n
        sound = np.flatnonzero(~silent[lo:hi])
    finish = float((lo + sound[-1] + 1) * HOP_S) if sound.size else min(last.end, n * HOP_S)
    finish = max(finish, begin + MIN_WORD_S * len(words))
    if len(words) == 1:
        return [replace(first, start=begin, end=finish)]

    # Silences inside the speech (sound on both sides), and Whisper's boundaries between the words.
    runs = [(float(a * HOP_S), float(b * HOP_S))
            for a, b in silent_runs(silent, idx(begin), idx(finish), int(round(MIN_GAP_S / HOP_S)))
            if a > idx(begin) and b < idx(finish)]
    bounds = [(min(a.end, b.start), max(a.end, b.start)) for a, b in zip(words, words[1:])]
    matched = _align(bounds, runs)

    # Each boundary: (end of the word before, start of the word after). A matched one sits on its silence;
    # an unmatched one (the words touch) stays where Whisper put it, kept between its neighbours.
    edges: list[tuple[float, float] | None] = [runs[j] if j is not None else None for j in matched]
    out: list[tuple[float, float]] = []
    for i, edge in enumerate(edges):
        if edge is not None:
            out.append(edge)
            continue
        left = out[-1][1] if out else begin
        right = next((e[0] for e in edges[i + 1 :] if e is not None), finish)
        remaining = 1 + next((k for k, e in enumerate(edges[i + 1 :]) if e is not None), len(edges) - i - 1)
        t = 0.5 * (bounds[i][0] + bounds[i][1])
        t = min(max(t, left + MIN_WORD_S), right - MIN_WORD_S * remaining)
        t = max(t, left)  # too little room: the words touch where the last one ended
        out.append((t, t))
    starts = [begin] + [b for _, b in out]
    ends = [a for a, _ in out] + [finish]
    refined = []
    for w, s, e in zip(words, starts, ends):
        refined.append(replace(w, start=s, end=max(e, s)))
    return refined
