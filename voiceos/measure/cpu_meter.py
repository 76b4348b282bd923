"""CPU accounting over intervals of the session clock, from the kernel's counters.

A light sampler thread reads `/proc/stat` (all cores) and this process's CPU time every 40 ms and keeps
cumulative counters; `span(t0, t1)` interpolates them at both ends, so any interval (a pause between
two words) gets its idle and busy CPU-seconds. Counters tick in 1/USER_HZ (10 ms) per core, so sampling
faster buys little precision; each wake-up costs ~0.1 ms of CPU (more in a VM), ~0.3% of a core at 40 ms.
"""

from __future__ import annotations

import bisect
import logging
import os
import threading
import time
from dataclasses import dataclass

from voiceos.measure.clock import SessionClock

log = logging.getLogger(__name__)

TICK_S = 1.0 / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class CpuSpan:
    """CPU-seconds over one interval, all cores together."""

    idle_s: float
    busy_s: float
    ours_s: float  # CPU-seconds spent by this process (all its threads)

    def __add__(self, other: CpuSpan) -> CpuSpan:
        return CpuSpan(self.idle_s + other.idle_s, self.busy_s + other.busy_s, self.ours_s + other.ours_s)


ZERO_SPAN = CpuSpan(0.0, 0.0, 0.0)


def read_proc_stat(fd: int | None = None) -> tuple[float, float]:
    """Cumulative (idle, busy) CPU-seconds of the whole machine since boot."""
    if fd is None:
        with open("/proc/stat", "rb") as fh:
            first = fh.readline()
    else:
        first = os.pread(fd, 160, 0).split(b"\n", 1)[0]
    fields = first.split()[1:]
    values = [int(v) for v in fields[:8]]  # user nice system idle iowait irq softirq steal
    idle = values[3] + values[4]
    busy = values[0] + values[1] + values[2] + values[5] + values[6] + values[7]
    return idle * TICK_S, busy * TICK_S


class CpuMeter:
    """Samples CPU counters in a daemon thread; thread-safe reads."""

    def __init__(self, clock: SessionClock, period_s: float = 0.04, keep_s: float = 3600.0) -> None:
        self.clock = clock
        self.period_s = period_s
        self._max = int(keep_s / period_s)
        self._t: list[float] = []
        self._idle: list[float] = []
        self._busy: list[float] = []
        self._ours: list[float] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cpu-meter", daemon=True)
        self.cores = os.cpu_count() or 1
        self.sampler_cpu_s = 0.0  # the sampler's own CPU time
        self._started_at = 0.0
        self._fd = os.open("/proc/stat", os.O_RDONLY)

    def start(self) -> CpuMeter:
        self._started_at = self.clock.now()
        self._sample()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=1.0)
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1

    def overhead(self) -> float:
        """The sampler's CPU use as a fraction of one core since it started."""
        elapsed = self.clock.now() - self._started_at
        return self.sampler_cpu_s / elapsed if elapsed > 0 else 0.0

    def _run(self) -> None:
        # time.sleep costs about half the CPU of Event.wait(timeout) per wake-up; stop() waits one period.
        due = time.monotonic()
        while not self._stop.is_set():
            due += self.period_s
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:  # fell behind (a loaded machine): sample now, do not try to catch up
                due = time.monotonic()
            if self._stop.is_set():
                break
            self._sample()
            self.sampler_cpu_s = time.thread_time()

    def _sample(self) -> None:
        with self._lock:  # read inside the lock: samples from two threads stay in time order
            idle, busy = read_proc_stat(self._fd if self._fd >= 0 else None)
            ours = time.process_time()
            now = self.clock.now()
            self._t.append(now)
            self._idle.append(idle)
            self._busy.append(busy)
            self._ours.append(ours)
            if len(self._t) > self._max:
                drop = len(self._t) - self._max
                del self._t[:drop], self._idle[:drop], self._busy[:drop], self._ours[:drop]

    def sample_now(self) -> None:
        """Take a sample immediately (used at interval ends so the newest counters are known)."""
        self._sample()

    def _at(self, t: float) -> tuple[float, float, float]:
        ts = self._t
        i = bisect.bisect_left(ts, t)
        if i <= 0:
            return self._idle[0], self._busy[0], self._ours[0]
        if i >= len(ts):
            return self._idle[-1], self._busy[-1], self._ours[-1]
        w = (t - ts[i - 1]) / (ts[i] - ts[i - 1]) if ts[i] > ts[i - 1] else 0.0

        def lerp(values: list[float]) -> float:
            return values[i - 1] + w * (values[i] - values[i - 1])

        return lerp(self._idle), lerp(self._busy), lerp(self._ours)

    def span(self, t0: float, t1: float) -> CpuSpan:
        """Idle/busy/ours CPU-seconds between two session-clock times (0 when empty)."""
        if t1 <= t0:
            return ZERO_SPAN
        with self._lock:
            if not self._t:
                return ZERO_SPAN
            i0, b0, o0 = self._at(t0)
            i1, b1, o1 = self._at(t1)
        return CpuSpan(max(0.0, i1 - i0), max(0.0, b1 - b0), max(0.0, o1 - o0))
