"""Ctrl-C, honoured at every moment.

Python turns SIGINT into a KeyboardInterrupt at the next bytecode of the main thread. Two places lose it:
a C library calling back into Python (llama.cpp's log callback runs Python while the model loads, and
ctypes only prints an exception raised in a callback), and code that must not be cut in half (the last lines
of the session log). So the handler also remembers the signal: `raise_if_interrupted()` at the
boundaries between stages raises what a callback swallowed, and `interrupts_deferred()` holds Ctrl-C
back over a few lines that must finish.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

_pending = threading.Event()
_deferring = threading.local()
_holding = threading.Event()  # the interrupt was handled: the session is ending, further ones only noted
_received: list[str] = []  # which signal came first ("Ctrl-C", "SIGTERM", "SIGHUP")
SIGNALS = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM", signal.SIGHUP: "SIGHUP"}
_default_unraisable_hook = sys.unraisablehook


def _quiet_unraisable(args: Any) -> None:
    """A Ctrl-C that landed in a callback Python cannot raise from (ctypes, weakref, __del__) is not an
    error to print: it is remembered in `_pending` and raised at the next stage boundary."""
    if args.exc_type is KeyboardInterrupt:
        return
    _default_unraisable_hook(args)


def _on_signal(signum: int, frame: FrameType | None) -> None:
    if not _received:
        _received.append(SIGNALS.get(signal.Signals(signum), f"signal {signum}"))
    _pending.set()
    if not getattr(_deferring, "active", False) and not _holding.is_set():
        raise KeyboardInterrupt


def install() -> None:
    """Take over SIGINT, and SIGTERM and SIGHUP (a closed terminal) the same way: each ends the session as
    Ctrl-C does, its log closed. Main thread only; a no-op elsewhere, where signals are never delivered."""
    if threading.current_thread() is threading.main_thread():
        for signum in SIGNALS:
            signal.signal(signum, _on_signal)
        sys.unraisablehook = _quiet_unraisable


def stop_as_ctrl_c(why: str) -> None:
    """End the session the way Ctrl-C does, from any thread (the `q` key of the live view): the main thread
    gets SIGINT, and `received()` says `why`."""
    if not _received:
        _received.append(why)
    os.kill(os.getpid(), signal.SIGINT)


def raise_if_interrupted() -> None:
    """Raise the KeyboardInterrupt a C callback swallowed (or that came while it was held back)."""
    if _pending.is_set() and not _holding.is_set():
        raise KeyboardInterrupt


def hold() -> None:
    """The interrupt is being handled: the rest of the way out is not cut short by another one."""
    _holding.set()


def received() -> str:
    """What stopped the session: "Ctrl-C" unless a signal said otherwise."""
    return _received[0] if _received else "Ctrl-C"


@contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Run a block that must finish whole; a Ctrl-C pressed meanwhile is remembered, not raised in it.
    The caller decides afterwards (`raise_if_interrupted`)."""
    before = getattr(_deferring, "active", False)
    _deferring.active = True
    try:
        yield
    finally:
        _deferring.active = before
