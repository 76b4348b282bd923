"""CPU attribution over intervals of the session clock: a helper process burning one core for a known
second must show up as one core-second less idle, and not as voiceos's own CPU; our own busy thread must.

Other programs may run on this machine at the same time, so each claim is measured as a pair (a quiet
second right before the busy one) and retried a few times before it is judged; the ±20% claims stand.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from voiceos.measure.clock import SessionClock
from voiceos.measure.cpu_meter import CpuMeter, CpuSpan, read_proc_stat

LENGTH_S = 1.0
TOLERANCE = 0.20
ATTEMPTS = 4
BURN = "import sys\nprint('burning', flush=True)\nwhile True:\n    pass\n"


@pytest.fixture
def meter() -> Iterator[CpuMeter]:
    m = CpuMeter(SessionClock()).start()
    yield m
    m.stop()


def measure(meter: CpuMeter, seconds: float = LENGTH_S) -> CpuSpan:
    t0 = meter.clock.now()
    time.sleep(seconds)
    t1 = meter.clock.now()
    meter.sample_now()
    return meter.span(t0, t1)


def quiet_then_one_core_busy(meter: CpuMeter) -> tuple[CpuSpan, CpuSpan]:
    quiet = measure(meter)
    helper = subprocess.Popen([sys.executable, "-c", BURN], stdout=subprocess.PIPE, text=True)
    try:
        assert helper.stdout is not None and helper.stdout.readline().strip() == "burning"
        time.sleep(0.2)  # let it settle on a core
        busy = measure(meter)
    finally:
        helper.kill()
        helper.wait()
    return quiet, busy


def within(value: float, expected: float, tolerance: float = TOLERANCE) -> bool:
    return abs(value - expected) <= tolerance * expected


def test_a_process_burning_one_core_shows_as_one_core_second_less_idle(meter: CpuMeter) -> None:
    cores = meter.cores
    history = []
    for _ in range(ATTEMPTS):
        quiet, busy = quiet_then_one_core_busy(meter)
        history.append((quiet, busy))
        quiet_ok = within(quiet.idle_s, cores * LENGTH_S)
        drop_ok = within(quiet.idle_s - busy.idle_s, 1.0 * LENGTH_S)
        if quiet_ok and drop_ok:
            break
    else:
        pytest.fail(f"{cores} cores; (quiet, busy) spans over {ATTEMPTS} attempts: {history}")
    # the busy CPU rose by about the same core-second, and the span adds up to the cores × length
    assert within(busy.busy_s - quiet.busy_s, 1.0 * LENGTH_S, 0.3)
    assert within(busy.idle_s + busy.busy_s, cores * LENGTH_S)
    # and it is not counted as voiceos's own CPU: this process only slept
    assert busy.ours_s < 0.1 * LENGTH_S


def test_our_own_busy_thread_is_counted_as_ours(meter: CpuMeter) -> None:
    stop = threading.Event()

    def burn() -> None:
        while not stop.is_set():
            pass

    history = []
    for _ in range(ATTEMPTS):
        worker = threading.Thread(target=burn, daemon=True)
        worker.start()
        try:
            span = measure(meter)
        finally:
            stop.set()
            worker.join()
            stop.clear()
        history.append(span)
        if within(span.ours_s, 1.0 * LENGTH_S):
            break
    else:
        pytest.fail(f"our own burning thread was not counted as one core-second of ours: {history}")
    assert span.ours_s <= span.busy_s + 0.05  # ours is part of the machine's busy time


def test_span_of_an_empty_or_reversed_interval_is_zero(meter: CpuMeter) -> None:
    now = meter.clock.now()
    assert meter.span(now, now) == CpuSpan(0.0, 0.0, 0.0)
    assert meter.span(now, now - 1.0) == CpuSpan(0.0, 0.0, 0.0)


def test_spans_add_up_over_adjacent_intervals(meter: CpuMeter) -> None:
    t0 = meter.clock.now()
    time.sleep(0.6)
    t2 = meter.clock.now()
    meter.sample_now()
    t1 = (t0 + t2) / 2
    whole, a, b = meter.span(t0, t2), meter.span(t0, t1), meter.span(t1, t2)
    assert a.idle_s + b.idle_s == pytest.approx(whole.idle_s, abs=1e-6)
    assert a.busy_s + b.busy_s == pytest.approx(whole.busy_s, abs=1e-6)


def test_the_meter_costs_under_one_percent_of_a_core(meter: CpuMeter) -> None:
    time.sleep(2.0)
    assert meter.sampler_cpu_s > 0.0, "the sampler thread's CPU time was never measured"
    assert 0.0 < meter.overhead() < 0.01


def test_proc_stat_counts_all_cores() -> None:
    idle0, busy0 = read_proc_stat()
    time.sleep(0.5)
    idle1, busy1 = read_proc_stat()
    total = (idle1 - idle0) + (busy1 - busy0)
    assert within(total, (os.cpu_count() or 1) * 0.5, 0.25)


def test_numpy_leaves_no_core_spinning_once_the_engines_are_loaded(engines) -> None:  # type: ignore[no-untyped-def]
    """OpenBLAS's workers spin for a while after every product they share (faster-whisper's mel filterbank
    is one per pass); on two cores that spinning takes a core from the Whisper and LLM threads right after."""
    import numpy as np

    filters, spectrum = np.ones((80, 201), np.float32), np.ones((201, 3000), np.float32)
    (filters @ spectrum).sum()
    cpu_before = time.process_time()
    time.sleep(0.1)
    assert time.process_time() - cpu_before < 0.02
