"""Where command output goes: results on stdout (rich tables), messages on stderr."""

from __future__ import annotations

import os
import sys

from rich.console import Console

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
