"""The pause ledger: the pauses between the user's words and the compute that sat idle in them.

Per turn (all times on the session clock): the gaps between consecutive words, the lead (speech start →
first word) and the tail (last word end → end of turn decided); the CPU idle/busy in those pauses from
`CpuMeter`; what that idle time could have done at this machine's measured rates; and `used_fraction`,
the share of the pauses' CPU time voiceos spent on useful work for the turn (from `WorkLog`).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from voiceos.listen.transcript import Word
from voiceos.measure.cpu_meter import ZERO_SPAN, CpuMeter, CpuSpan

TOKENS_PER_PAGE = 400
TOKENS_PER_BOOK = 120_000
SAMANTHA_BOOK_S = 0.02


@dataclass(frozen=True)
class Rates:
    """The measured throughput of the loaded model: on this machine per CPU-second (all cores counted), or,
    for a model on a server, per wall second of the server's (`served_by`)."""

    decode_per_cpu_s: float  # tokens decoded per CPU-second (served: per second)
    read_per_cpu_s: float  # prompt tokens read per CPU-second (served: per second)
    decode_tps: float  # tokens per wall second with `threads`
    read_tps: float
    threads: int  # 0 for a server (its threads are its own)
    measured_at: str  # ISO time of the measurement
    model: str
    how: str = ""
    served_by: str = ""  # the server's URL; "" = this machine


class WorkLog:
    """Intervals in which voiceos did useful work for the turn (speculative STT, prefill, speculative reply)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._intervals: list[tuple[float, float, str]] = []

    def add(self, start: float, end: float, kind: str) -> None:
        with self._lock:
            self._intervals.append((start, end, kind))

    def between(self, t0: float, t1: float) -> list[tuple[float, float, str]]:
        with self._lock:
            return [(max(a, t0), min(b, t1), k) for a, b, k in self._intervals if b > t0 and a < t1]

    def prune(self, before: float) -> None:
        with self._lock:
            self._intervals = [iv for iv in self._intervals if iv[1] >= before]


@dataclass
class Pause:
    kind: str  # lead, gap, tail
    start: float
    end: float
    cpu: CpuSpan = ZERO_SPAN
    useful_cpu_s: float = 0.0

    @property
    def seconds(self) -> float:
        return max(0.0, self.end - self.start)


@dataclass
class PauseLedger:
    pauses: list[Pause] = field(default_factory=list)
    speech_s: float = 0.0
    rates: Rates | None = None

    @property
    def gaps(self) -> list[Pause]:
        return [p for p in self.pauses if p.kind == "gap"]

    def total(self, kind: str | None = None) -> float:
        return sum(p.seconds for p in self.pauses if kind is None or p.kind == kind)

    def cpu(self) -> CpuSpan:
        span = ZERO_SPAN
        for p in self.pauses:
            span = span + p.cpu
        return span

    def to_record(self) -> PauseRecord:
        cpu = self.cpu()
        useful = sum(p.useful_cpu_s for p in self.pauses)
        capacity = cpu.idle_s + cpu.busy_s
        lead = next((p for p in self.pauses if p.kind == "lead"), None)
        tail = next((p for p in self.pauses if p.kind == "tail"), None)
        return PauseRecord(
            gaps_ms=[round(p.seconds * 1000.0, 1) for p in self.gaps],
            lead_ms=round(lead.seconds * 1000.0, 1) if lead else 0.0,
            tail_ms=round(tail.seconds * 1000.0, 1) if tail else 0.0,
            pause_s=round(self.total("gap"), 3),
            all_pauses_s=round(self.total(), 3),
            speech_s=round(self.speech_s, 3),
            cpu_idle_s=round(cpu.idle_s, 3),
            cpu_busy_s=round(cpu.busy_s, 3),
            cpu_used_by_us_s=round(cpu.ours_s, 3),
            useful_cpu_s=round(useful, 3),
            used_fraction=round(useful / capacity, 3) if capacity > 0 else 0.0,
            detail=[PauseDetail(p.kind, round(p.start, 4), round(p.end, 4), round(p.cpu.idle_s, 4),
                                round(p.cpu.busy_s, 4), round(p.useful_cpu_s, 4)) for p in self.pauses],
            **thought_equivalents(cpu.idle_s, self.total(), self.rates),
        )


@dataclass
class PauseDetail:
    """One pause of a turn on the session clock, with the CPU-seconds in it."""

    kind: str  # lead, gap, tail
    start: float = 0.0
    end: float = 0.0
    cpu_idle_s: float = 0.0
    cpu_busy_s: float = 0.0
    useful_cpu_s: float = 0.0


@dataclass
class PauseRecord:
    """The pause ledger of one turn as the session log holds it (`turn.pauses`; see DESIGN.md)."""

    gaps_ms: list[float] = field(default_factory=list)  # every gap between consecutive words
    lead_ms: float = 0.0  # speech start → first word
    tail_ms: float = 0.0  # last word end → end of turn decided
    pause_s: float = 0.0  # the sum of the gaps
    all_pauses_s: float = 0.0  # gaps, lead and tail
    speech_s: float = 0.0
    cpu_idle_s: float = 0.0  # CPU-seconds (all cores) idle in the pauses
    cpu_busy_s: float = 0.0
    cpu_used_by_us_s: float = 0.0  # the part of the busy time voiceos spent
    useful_cpu_s: float = 0.0  # the part of that spent on this turn's work (reading, drafting)
    used_fraction: float = 0.0  # useful_cpu_s / (idle + busy)
    detail: list[PauseDetail] = field(default_factory=list)
    could_decode_tokens: float | None = None  # cpu_idle_s at this machine's measured rates
    could_read_tokens: float | None = None
    could_read_pages: float | None = None
    could_read_books: float | None = None
    samantha_ratio: float | None = None
    rates_measured_at: str | None = None


def thought_equivalents(idle_cpu_s: float, pause_s: float, rates: Rates | None) -> dict[str, Any]:
    """What the pauses could have done at the measured rates, and the Samantha ratio (PauseRecord fields): the
    `idle_cpu_s` of this machine for the embedded model; for a served one, the server through all `pause_s`."""
    if rates is None:
        return {}
    idle_s = pause_s if rates.served_by else idle_cpu_s
    read = idle_s * rates.read_per_cpu_s
    return {
        "could_decode_tokens": round(idle_s * rates.decode_per_cpu_s, 1),
        "could_read_tokens": round(read, 1),
        "could_read_pages": round(read / TOKENS_PER_PAGE, 3),
        "could_read_books": round(read / TOKENS_PER_BOOK, 6),
        "samantha_ratio": round(samantha_ratio(rates), 1),
        "rates_measured_at": rates.measured_at,
    }


def samantha_ratio(rates: Rates) -> float:
    """How many times longer this machine (all threads) needs to read a book than Samantha's 0.02 s."""
    return (TOKENS_PER_BOOK / rates.read_tps) / SAMANTHA_BOOK_S if rates.read_tps > 0 else float("inf")


def build_ledger(
    words: list[Word],
    speech_start: float,
    turn_decided: float,
    meter: CpuMeter | None,
    rates: Rates | None,
    work: WorkLog | None,
) -> PauseLedger:
    """Lay the pauses of one turn out on the session clock and account the CPU in each."""
    pauses: list[Pause] = []
    if words:
        pauses.append(Pause("lead", speech_start, max(speech_start, words[0].start)))
        for a, b in zip(words, words[1:]):
            if b.start > a.end:
                pauses.append(Pause("gap", a.end, b.start))
            else:
                pauses.append(Pause("gap", a.end, a.end))
        pauses.append(Pause("tail", words[-1].end, max(words[-1].end, turn_decided)))
        speech_s = words[-1].end - speech_start
    else:
        pauses.append(Pause("tail", speech_start, max(speech_start, turn_decided)))
        speech_s = 0.0
    if meter is not None:
        for pause in pauses:
            pause.cpu = meter.span(pause.start, pause.end)
            if work is not None:
                pause.useful_cpu_s = sum(meter.span(a, b).ours_s for a, b, _ in work.between(pause.start, pause.end))
    return PauseLedger(pauses, speech_s, rates)


WORK_DONE = {"partial": "read your words", "reply": "drafted a reply"}  # WorkLog kinds, for a person


def pause_work(meter: CpuMeter | None, work: WorkLog, start: float, end: float, *,
               drafting: bool) -> tuple[float, tuple[str, ...]]:
    """A pause just over, as it is shown live: the CPU-seconds left idle in it, and what voiceos did with it
    (the work logged in it so far, and a reply it is `drafting`, whose work is logged when it is done)."""
    idle_s = meter.span(start, end).idle_s if meter is not None else 0.0
    kinds = {kind for _a, _b, kind in work.between(start, end)} | ({"reply"} if drafting else set())
    return idle_s, tuple(text for kind, text in WORK_DONE.items() if kind in kinds)


def summary_line(pauses: PauseRecord) -> str:
    """The one line shown per turn: 'between your words: 1.9 s of pauses, 3.6 CPU-s idle — enough to read 2 pages'."""
    pages = pauses.could_read_pages
    enough = f" — enough to read {reading_amount(pages)}" if pages is not None else ""
    return (
        f"between your words: {pauses.all_pauses_s:.1f} s of pauses, {pauses.cpu_idle_s:.1f} CPU-s idle"
        f"{enough}; put to work: {pauses.used_fraction * 100:.0f}%"
    )


def reading_amount(pages: float) -> str:
    """Pages of reading for a person: "3 pages", "a page", "120 tokens"."""
    if pages >= 1.5:
        return f"{pages:.0f} pages"
    if pages >= 0.95:
        return "a page"
    return f"{pages * TOKENS_PER_PAGE:.0f} tokens"
