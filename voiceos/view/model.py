"""The live view's state, built from the loop's events. No terminal and no clock: tests feed it events.

`ViewModel.apply` runs on the view's listener thread; the drawing thread reads the model under `lock`, and
draws again only when `version` moved (a change that shows: the input meter moving by a cell, not by a dB).
"""

from __future__ import annotations

import collections
import math
import threading
from dataclasses import dataclass, field

from voiceos.loop.loop_events import (
    HerState,
    InputLevel,
    LoopEvent,
    MicrophoneMuted,
    PauseMeasured,
    ReplyProgressed,
    StateChanged,
    StatusMessage,
    TurnDropped,
    TurnFinished,
    TurnHeard,
    WordsSoFar,
)
from voiceos.loop.record import TurnRecord
from voiceos.measure.ledger import TOKENS_PER_PAGE

LEVEL_FLOOR_DB = -60.0  # the input meter's empty end
LEVEL_CELLS = 20
PAUSE_ROWS = 6  # pauses shown
PAUSE_SHOWN_S = 0.1  # shorter pauses are not shown as rows (a breath between syllables)
EXCHANGES_SHOWN = 3  # earlier exchanges shown above the current one


@dataclass(frozen=True)
class PauseRow:
    turn: int
    seconds: float
    idle_cpu_s: float
    did: tuple[str, ...]
    ended_turn: bool


@dataclass(frozen=True)
class Exchange:
    """A finished turn as the view shows it."""

    heard: str
    reply: str
    cut_reason: str | None
    voice_to_voice_ms: float | None


@dataclass
class SessionTotals:
    """The pause ledger summed over the session's turns."""

    turns: int = 0
    pause_s: float = 0.0  # all pauses: lead, gaps and tail
    idle_cpu_s: float = 0.0
    capacity_cpu_s: float = 0.0  # idle + busy in the pauses
    useful_cpu_s: float = 0.0
    read_tokens: float | None = None  # what the idle time could have read (None: rates not measured)
    samantha_ratio: float | None = None

    def add(self, record: TurnRecord) -> None:
        pauses = record.pauses
        self.turns += 1
        self.pause_s += pauses.all_pauses_s
        self.idle_cpu_s += pauses.cpu_idle_s
        self.capacity_cpu_s += pauses.cpu_idle_s + pauses.cpu_busy_s
        self.useful_cpu_s += pauses.useful_cpu_s
        if pauses.could_read_tokens is not None:
            self.read_tokens = (self.read_tokens or 0.0) + pauses.could_read_tokens
        if pauses.samantha_ratio is not None:
            self.samantha_ratio = pauses.samantha_ratio

    @property
    def pages(self) -> float | None:
        return self.read_tokens / TOKENS_PER_PAGE if self.read_tokens is not None else None

    @property
    def used_fraction(self) -> float:
        return self.useful_cpu_s / self.capacity_cpu_s if self.capacity_cpu_s > 0 else 0.0


def level_cells(db: float) -> int:
    """How many cells of the input meter a level fills."""
    return 0 if math.isinf(db) else round(LEVEL_CELLS * min(1.0, max(0.0, 1.0 - db / LEVEL_FLOOR_DB)))


@dataclass
class ViewModel:
    state: HerState | None = None  # None: not listening yet
    level: int = 0  # cells of the input meter filled
    muted: bool = False
    words: str = ""  # the current turn's words
    words_final: bool = False  # the words her reply is written for (not a guess while you talk)
    reply_written: str = ""
    reply_spoken: str = ""
    exchanges: collections.deque[Exchange] = field(default_factory=lambda: collections.deque(maxlen=EXCHANGES_SHOWN))
    pauses: collections.deque[PauseRow] = field(default_factory=lambda: collections.deque(maxlen=PAUSE_ROWS))
    totals: SessionTotals = field(default_factory=SessionTotals)
    last_turn: TurnRecord | None = None
    status: str = ""
    help_shown: bool = False
    version: int = 0  # moves on with every change that shows
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def apply(self, event: LoopEvent) -> None:
        with self.lock:
            if isinstance(event, InputLevel) and level_cells(event.db) == self.level:
                return  # ten a second; most move the meter by less than a cell
            self._apply(event)
            self.version += 1

    def _apply(self, event: LoopEvent) -> None:
        match event:
            case StateChanged(state=state):
                if state is HerState.HEARING and self.words_final:
                    self._start_turn()  # a new turn over the last one's reply (she was talked over)
                self.state = state
            case InputLevel(db=db):
                self.level = level_cells(db)
            case MicrophoneMuted(muted=muted):
                self.muted = muted
            case WordsSoFar(text=text):
                if not self.words_final:
                    self.words = text
            case TurnHeard(text=text):
                self.words, self.words_final = text, True
            case PauseMeasured() if event.seconds >= PAUSE_SHOWN_S or event.ended_turn:
                self.pauses.append(PauseRow(self.totals.turns + 1, event.seconds, event.idle_cpu_s, event.did,
                                            event.ended_turn))
            case ReplyProgressed(written=written, spoken=spoken):
                self.reply_written, self.reply_spoken = written, spoken
            case TurnFinished(record=record):
                self.exchanges.append(Exchange(record.user.text, record.reply.text, record.reply.cut_reason,
                                               record.timings_ms.voice_to_voice))
                self.totals.add(record)
                self.last_turn = record
                self._start_turn()
            case TurnDropped():
                self._start_turn()
            case StatusMessage(text=text):
                self.status = text

    def _start_turn(self) -> None:
        self.words, self.words_final = "", False
        self.reply_written = self.reply_spoken = ""

    def toggle_help(self) -> None:
        with self.lock:
            self.help_shown = not self.help_shown
            self.version += 1
