"""Ctrl-C, honoured at every moment.

Python turns SIGINT into a KeyboardInterrupt at the next bytecode of the main thread. Two places lose it:
a C library calling back into Python (llama.cpp's log callback runs Python while the model loads, and
ctypes only prints an exception raised in a callback), and code that must not be cut in half (the last lines
of the session log). So the handler also remembers the signal: `raise_if_interrupted()` at the
boundaries between stages raises what a callback swallowed, and `interrupts_deferred()` holds Ctrl-C
back over a few lines that must finish.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

_pending = threading.Event()
_deferring = threading.local()
_default_unraisable_hook = sys.unraisablehook


def _quiet_unraisable(args: Any) -> None:
    """A Ctrl-C that landed in a callback Python cannot raise from (ctypes, weakref, __del__) is not an
    error to print: it is remembered in `_pending` and raised at the next stage boundary."""
    if args.exc_type is KeyboardInterrupt:
        return
    _default_unraisable_hook(args)


def _on_sigint(signum: int, frame: FrameType | None) -> None:
    _pending.set()
    if not getattr(_deferring, "active", False):
        raise KeyboardInterrupt


def install() -> None:
    """Take over SIGINT (main thread only; a no-op elsewhere, where signals are never delivered)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, _on_sigint)
        sys.unraisablehook = _quiet_unraisable


def interrupted() -> bool:
    return _pending.is_set()


def raise_if_interrupted() -> None:
    """Raise the KeyboardInterrupt a C callback swallowed (or that came while it was held back)."""
    if _pending.is_set():
        raise KeyboardInterrupt


def forget() -> None:
    """The interrupt has been handled (the caller ends the session it was for)."""
    _pending.clear()


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
