"""Small statistics shared by the reports: percentiles and number formatting."""

from __future__ import annotations

from collections.abc import Iterable


def percentile(values: Iterable[float | None], q: float) -> float | None:
    """The q-th percentile (0–100) by linear interpolation between closest ranks (numpy's default), over the
    values that are not None; None when there are none."""
    ordered = sorted(v for v in values if v is not None)
    if not ordered:
        return None
    k = (len(ordered) - 1) * q / 100.0
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def fmt(value: float | None, digits: int = 0) -> str:
    """A number for a table cell: "-" when it is missing."""
    return "-" if value is None else f"{value:.{digits}f}"
