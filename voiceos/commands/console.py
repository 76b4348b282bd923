"""Where command output goes: results on stdout (rich tables), messages on stderr."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from rich.console import Console

from voiceos import interrupts

if TYPE_CHECKING:
    from voiceos.loop.session import Session

RESULTS_WIDTH = 160  # piped into a file: wide enough that the tables keep whole words


def status(message: str) -> None:
    """A progress or status line on stderr."""
    print(f"voiceos: {message}", file=sys.stderr, flush=True)


def results_console() -> Console:
    """A console for results: the terminal's width, or `RESULTS_WIDTH` when stdout is not a terminal."""
    console = Console()
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = Console(width=RESULTS_WIDTH)
    return console


@contextmanager
def session_closed(session: Session, *, ctrl_c_ends: bool = False) -> Iterator[None]:
    """Run a command's work in `session`: its log always ends with `session_end` and why — done, Ctrl-C
    (raised on, unless `ctrl_c_ends`: the way a chat ends) or the error — and the log's path is printed."""
    reason = "done"
    try:
        yield
    except KeyboardInterrupt:
        interrupts.hold()  # a second Ctrl-C does not cut the way out short
        reason = f"ended with {interrupts.received()}" if ctrl_c_ends else "interrupted"
        if not ctrl_c_ends:
            raise
    except BaseException as exc:
        reason = f"error: {exc}"
        raise
    finally:
        session.close(reason)
        status(f"session log: {session.log.path}")
