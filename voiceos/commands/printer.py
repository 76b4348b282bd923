"""The line output of `voiceos chat --plain` and `voiceos demo`: what was heard, her reply, and the pause ledger.

It is one listener of the loop's events (`loop.announcer`), printing from its own thread.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

from voiceos.loop.announcer import Announcer, Listener
from voiceos.loop.loop_events import LoopEvent, TurnFinished, TurnHeard
from voiceos.loop.record import TurnRecord
from voiceos.measure.ledger import summary_line


class ConsolePrinter:
    """One line for what was heard, one for the reply with its latency, one for the pause ledger."""

    KINDS = (TurnHeard, TurnFinished)  # the events it prints

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout

    def _out(self, line: str) -> None:
        print(line, file=self.stream, flush=True)

    def show(self, event: LoopEvent) -> None:
        match event:
            case TurnHeard(text=text):
                self.heard(text)
            case TurnFinished(record=record):
                self.replied(record.reply.text, record)

    def heard(self, text: str) -> None:
        self._out(f"you      › {text}")

    def replied(self, text: str, record: TurnRecord) -> None:
        v2v = record.timings_ms.voice_to_voice
        latency = f"{v2v:.0f} ms" if v2v is not None else "not timed"
        reason = record.reply.cut_reason
        cut = f" [{reason}]" if reason else ""
        self._out(f"samantha › {text or '…'}{cut}   (voice-to-voice {latency})")
        self._out(f"           {summary_line(record.pauses)}")


@contextmanager
def lines_printed(announcer: Announcer, printer: ConsolePrinter | None = None) -> Iterator[None]:
    """Print the loop's turns while the block runs; every line of it is out when the block is left."""
    listener = announcer.add(Listener("printer", (printer or ConsolePrinter()).show, ConsolePrinter.KINDS).start())
    try:
        yield
    finally:
        announcer.remove(listener)
        listener.close()
