"""The live view on the terminal's alternate screen, while a conversation runs.

Three threads of its own, none of which the voice loop ever waits for: the listener that reads the loop's
events into the model (`loop.announcer.Listener`), the drawing thread — up to ten times a second, and only
when the model changed or the terminal was resized (a full 120×40 view costs ~6 ms of CPU to draw, which the
pause ledger would count as busy) — and the key reader. Log lines that would go to stderr go to the view's
status line instead, so the screen stays whole; the terminal is restored on every way out (a `with` block:
Ctrl-C, `q`, an error).
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import TextIO

from rich.console import Console
from rich.live import Live

from voiceos import interrupts
from voiceos.loop.announcer import Announcer, Listener
from voiceos.loop.loop_events import MicrophoneMuted, StatusMessage
from voiceos.view.layout import render
from voiceos.view.model import ViewModel
from voiceos.view.terminal import KeyReader

REFRESH_HZ = 10


class LiveView:
    """`with LiveView(announcer, mute=…) as view:` shows the loop until the block is left. `mute` toggles the
    microphone and returns whether it is muted now (None: nothing to mute, e.g. the demo's WAV input)."""

    def __init__(self, announcer: Announcer, *, mute: Callable[[], bool] | None = None,
                 stream: TextIO | None = None) -> None:
        self.announcer = announcer
        self.mute = mute
        self.model = ViewModel()
        self.console = Console(file=stream or sys.stdout)
        self._listener = Listener("view", self.model.apply)
        self._keys = KeyReader(self._on_key)
        self._live = Live(console=self.console, screen=True, auto_refresh=False, redirect_stdout=False,
                          redirect_stderr=False)
        self._drawing = threading.Thread(target=self._draw_while_shown, name="view-drawing", daemon=True)
        self._shown = threading.Event()
        self._exits = contextlib.ExitStack()

    def status(self, message: str) -> None:
        """A status line for the person (instead of stderr, which would scribble over the view)."""
        self.announcer.announce(StatusMessage(message))

    def _draw(self) -> None:
        with self.model.lock:
            renderable = render(self.model)
        self._live.update(renderable, refresh=True)

    def _draw_while_shown(self) -> None:
        drawn: tuple[int, object] | None = None
        while self._shown.is_set():
            now = (self.model.version, self.console.size)
            if now != drawn:
                self._draw()
                drawn = now
            time.sleep(1.0 / REFRESH_HZ)

    def _stop_drawing(self) -> None:
        self._shown.clear()
        if self._drawing.is_alive():
            self._drawing.join()

    def _on_key(self, key: str) -> None:
        match key:
            case "q" | "Q":
                interrupts.stop_as_ctrl_c("the q key")
            case "m" | "M":
                if self.mute is None:
                    self.status("there is no microphone to mute")
                else:
                    self.announcer.announce(MicrophoneMuted(self.mute()))
            case "?":
                self.model.toggle_help()

    def __enter__(self) -> LiveView:
        try:
            self._open()
        except BaseException:
            self._exits.close()  # what was set up is put back, the terminal first of all
            raise
        return self

    def _open(self) -> None:
        exits = self._exits  # left in the reverse order
        exits.enter_context(log_lines_to(self.status))
        exits.callback(self._live.stop)
        self._live.start()
        exits.callback(self._draw)  # the last state drawn before the screen goes
        exits.callback(self._stop_drawing)
        self._shown.set()
        self._drawing.start()
        self.announcer.add(self._listener.start())
        exits.callback(self._listener.close)  # every event announced so far is in the model
        exits.callback(self.announcer.remove, self._listener)
        exits.callback(self._keys.close)
        self._keys.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        with interrupts.interrupts_deferred():  # a second Ctrl-C does not leave the terminal in cbreak mode
            self._exits.close()


class _StatusLines:
    """A text stream whose lines become status lines."""

    def __init__(self, say: Callable[[str], None]) -> None:
        self.say = say

    def write(self, text: str) -> int:
        for line in text.splitlines():
            if line.strip():
                self.say(line.strip())
        return len(text)

    def flush(self) -> None:
        pass


@contextlib.contextmanager
def log_lines_to(say: Callable[[str], None]) -> Iterator[None]:
    """Log records that go to stderr go to `say` instead while the block runs."""
    handlers = [h for h in logging.getLogger().handlers
                if isinstance(h, logging.StreamHandler) and h.stream in (sys.stderr, sys.__stderr__)]
    saved = [h.setStream(_StatusLines(say)) for h in handlers]
    try:
        yield
    finally:
        for handler, stream in zip(handlers, saved):
            handler.setStream(stream)
