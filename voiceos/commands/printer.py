"""The line output of `voiceos chat` and `voiceos demo`: what was heard, her reply, and the pause ledger."""

from __future__ import annotations

import sys
from typing import TextIO

from voiceos.loop.record import TurnRecord
from voiceos.measure.ledger import summary_line


class ConsolePrinter:
    """One line for what was heard, one for the reply with its latency, one for the pause ledger."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout

    def _out(self, line: str) -> None:
        print(line, file=self.stream, flush=True)

    def heard(self, text: str) -> None:
        self._out(f"you      › {text}")

    def replied(self, text: str, record: TurnRecord) -> None:
        v2v = record.timings_ms.voice_to_voice
        latency = f"{v2v:.0f} ms" if v2v is not None else "not timed"
        reason = record.reply.cut_reason
        cut = f" [{reason}]" if reason else ""
        self._out(f"samantha › {text or '…'}{cut}   (voice-to-voice {latency})")
        self._out(f"           {summary_line(record.pauses)}")
