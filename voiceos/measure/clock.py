"""The session clock: seconds since the session started, on `time.perf_counter()` (monotonic)."""

from __future__ import annotations

import time


class SessionClock:
    def __init__(self) -> None:
        self.origin = time.perf_counter()

    def now(self) -> float:
        return time.perf_counter() - self.origin

    def at(self, perf_counter_value: float) -> float:
        """Map a `time.perf_counter()` reading onto the session clock."""
        return perf_counter_value - self.origin
