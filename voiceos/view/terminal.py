"""Single keys from the terminal, read on their own thread.

The terminal goes into cbreak mode (keys arrive one at a time, unechoed; Ctrl-C still sends SIGINT) and its
settings are put back on `close`, which the live view calls on every way out.
"""

from __future__ import annotations

import logging
import os
import select
import sys
import termios
import threading
import tty
from collections.abc import Callable
from typing import Any, TextIO

log = logging.getLogger(__name__)

POLL_S = 0.1  # how often the reader looks whether it should stop


class KeyReader:
    """Calls `on_key` with each key pressed (on the reader's thread). A no-op when stdin is not a terminal."""

    def __init__(self, on_key: Callable[[str], None], stream: TextIO | None = None) -> None:
        self.on_key = on_key
        self.stream = stream or sys.stdin
        self._saved: list[Any] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="keys", daemon=True)

    def start(self) -> KeyReader:
        if self.stream is None or not self.stream.isatty():
            return self
        fd = self.stream.fileno()
        self._saved = termios.tcgetattr(fd)
        tty.setcbreak(fd)
        self._thread.start()
        return self

    def _run(self) -> None:
        fd = self.stream.fileno()
        while not self._stop.is_set():
            ready, _, _ = select.select([fd], [], [], POLL_S)
            if not ready:
                continue
            key = os.read(fd, 32).decode(errors="replace")
            if not key:  # the terminal went away
                return
            for char in key:
                self.on_key(char)

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2 * POLL_S + 1.0)
        if self._saved is not None:
            try:
                termios.tcsetattr(self.stream.fileno(), termios.TCSADRAIN, self._saved)
            except (termios.error, OSError, ValueError) as exc:  # the terminal is gone
                log.debug("terminal settings not restored: %s", exc)
            self._saved = None
