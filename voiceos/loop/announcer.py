"""Fan-out of the loop's events (`loop.loop_events`) to listeners, each on its own thread.

`Announcer.announce` only puts the event into each listener's bounded queue, without waiting: when a listener
has fallen that far behind, the event is dropped for it (and counted), never waited for. A `Listener` handles
its events on its own thread, in order.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

from voiceos.loop.loop_events import LoopEvent

log = logging.getLogger(__name__)

QUEUE_EVENTS = 2000  # ~3 minutes of input levels at 10 a second: a listener this far behind is stuck


class Listener:
    """Handles announced events on its own thread. `kinds`: the event types it wants (None: all)."""

    def __init__(self, name: str, handle: Callable[[LoopEvent], None],
                 kinds: tuple[type, ...] | None = None) -> None:
        self.handle = handle
        self.kinds = kinds
        self.dropped = 0  # events it missed because its queue was full
        self._queue: queue.Queue[LoopEvent | None] = queue.Queue(maxsize=QUEUE_EVENTS)
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> Listener:
        self._thread.start()
        return self

    def offer(self, event: LoopEvent) -> None:
        if self.kinds is not None and not isinstance(event, self.kinds):
            return
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            self.dropped += 1

    def close(self, timeout_s: float = 5.0) -> None:
        """Handle what is queued, then stop."""
        while True:
            try:
                self._queue.put(None, timeout=timeout_s)
                break
            except queue.Full:
                log.warning("%s is not taking events; stopping it", self._thread.name)
                return
        self._thread.join(timeout=timeout_s)
        if self.dropped:
            log.info("%s missed %d event(s)", self._thread.name, self.dropped)

    def _run(self) -> None:
        while (event := self._queue.get()) is not None:
            try:
                self.handle(event)
            except Exception:  # a watcher's bug must not end the conversation
                log.exception("%s failed on %s", self._thread.name, type(event).__name__)


class Announcer:
    """What the loop announces goes to every listener added; with none, announcing costs a loop over nothing."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []

    def add(self, listener: Listener) -> Listener:
        self._listeners = [*self._listeners, listener]
        return listener

    def remove(self, listener: Listener) -> None:
        self._listeners = [x for x in self._listeners if x is not listener]

    def wants(self, kind: type) -> bool:
        """Some listener takes events of this type (events that cost a little to make are made only then)."""
        return any(x.kinds is None or issubclass(kind, x.kinds) for x in self._listeners)

    def announce(self, event: LoopEvent) -> None:
        for listener in self._listeners:
            listener.offer(event)
