"""How a person watches a conversation: the live view on a terminal, or printed lines (`--plain`, a pipe)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from voiceos.commands.console import status
from voiceos.commands.printer import ConsolePrinter, lines_printed
from voiceos.loop.announcer import Announcer
from voiceos.loop.session import Session


def live_view_wanted(plain: bool) -> bool:
    """The live view, unless asked for lines or stdout is not a terminal (scripts, logs, CI see no escapes)."""
    return not plain and sys.stdout.isatty()


@contextmanager
def watched(session: Session, announcer: Announcer, *, live: bool,
            mute: Callable[[], bool] | None = None) -> Iterator[Callable[[str], None]]:
    """Show the conversation(s) run in the block; yields where status lines go. After the live view, the
    session's turns are printed as `--plain` prints them, so the terminal keeps the conversation."""
    if not live:
        with lines_printed(announcer):
            yield status
        return
    from voiceos.view.live_view import LiveView

    try:
        with LiveView(announcer, mute=mute) as view:
            yield view.status
    finally:
        printer = ConsolePrinter()
        for result in session.results:
            for record in result.records:
                printer.heard(record.user.text)
                printer.replied(record.reply.text, record)
