"""Devices that move: which PulseAudio sink and source this process's streams are on, watched.

PortAudio reaches PulseAudio (or PipeWire's PulseAudio server) through ALSA's pulse plugin and never
hears that a device went away: PulseAudio quietly moves the stream to the fallback device, or ends it.
So a thread follows `pactl subscribe` (the server is asked only when it reports a change), and
after each burst of changes looks up where this process's playback and recording streams are now. A
difference is a `DeviceMoved` event for the voice loop, which says so, logs it, and follows or stops.

It also tells when her voice goes where she listens: the output sink is the one whose monitor is the
input (directly or through remap sinks on top of it), so she would hear herself.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import shutil
import subprocess
import threading
from dataclasses import dataclass
from typing import Any, Literal

log = logging.getLogger(__name__)

SETTLE_S = 0.15  # changes come in bursts (a module unloads: sink, source, stream); look once they settle
# what can move a stream: devices that come and go, streams that change, a new default (not volume changes)
WATCHED = ("'new' on sink #", "'remove' on sink #", "'new' on source #", "'remove' on source #",
           " on sink-input #", " on source-output #", " on server")


Stream = Literal["input", "output"]  # this process's recording and playback streams
DEVICE_NAMES: dict[Stream, str] = {"input": "microphone", "output": "speaker"}


@dataclass(frozen=True)
class Routes:
    """Where this process's streams are: sink and source names (None: no such stream now)."""

    output: str | None
    input: str | None
    feeds_back: bool  # the output sink (or one it plays through) is monitored by the input

    def of(self, stream: Stream) -> str | None:
        return self.input if stream == "input" else self.output


@dataclass(frozen=True)
class DeviceMoved:
    """One of this process's streams changed device; `after` is None when the stream was ended."""

    stream: Stream
    before: str | None
    after: str | None
    feeds_back: bool

    def describe(self) -> str:
        what = DEVICE_NAMES[self.stream]
        if self.after is None:
            return f"the {what} ({self.before}) went away"
        return f"the {what} moved from {self.before} to {self.after}"


def _pactl_json(*args: str) -> list[dict[str, Any]]:
    out = subprocess.run(["pactl", "-f", "json", *args], capture_output=True, text=True, timeout=5)
    if out.returncode != 0:
        raise OSError(out.stderr.strip() or f"pactl {' '.join(args)} failed")
    data = json.loads(out.stdout or "[]")
    return data if isinstance(data, list) else []


def device_exists(kind: Stream, name: str) -> bool:
    """Whether the server has a source (input) or sink (output) called `name`."""
    return any(d.get("name") == name for d in _pactl_json("list", "sources" if kind == "input" else "sinks"))


def current_routes(pid: int) -> Routes:
    """Ask the server where `pid`'s playback and recording streams are."""
    sinks = {s["index"]: s for s in _pactl_json("list", "sinks")}
    sources = {s["index"]: s for s in _pactl_json("list", "sources")}

    def mine(stream: dict[str, Any]) -> bool:
        return str(stream.get("properties", {}).get("application.process.id")) == str(pid)

    sink = next((sinks.get(s.get("sink")) for s in _pactl_json("list", "sink-inputs") if mine(s)), None)
    source = next((sources.get(s.get("source")) for s in _pactl_json("list", "source-outputs") if mine(s)), None)
    return Routes(sink["name"] if sink else None, source["name"] if source else None,
                  _feeds_back(sink, source, sinks))


def _feeds_back(sink: dict[str, Any] | None, source: dict[str, Any] | None, sinks: dict[int, Any]) -> bool:
    """Whether what is played on `sink` reaches `source`: the source monitors that sink or a sink it plays
    through (a remap or virtual sink names its master in `device.master_device`)."""
    if sink is None or source is None:
        return False
    by_name = {s["name"]: s for s in sinks.values()}
    seen: set[str] = set()
    name: str | None = sink["name"]
    while name is not None and name in by_name and name not in seen:
        if by_name[name].get("monitor_source") == source["name"]:
            return True
        seen.add(name)
        name = by_name[name].get("properties", {}).get("device.master_device")
    return False


class DeviceWatch:
    """Follows PulseAudio's change events; `events()` hands the loop what moved since it last looked."""

    def __init__(self, pid: int | None = None) -> None:
        self.pid = pid or os.getpid()
        self.routes: Routes | None = None
        self._events: queue.Queue[DeviceMoved] = queue.Queue()
        self._changed = threading.Event()
        self._stop = threading.Event()
        self._proc: subprocess.Popen[str] | None = None
        self._lock = threading.Lock()  # `routes` is written by the watching thread and the loop's
        self._generation = 0  # bumped when the loop takes a look of its own: an older look is stale

    @classmethod
    def start_if_possible(cls) -> DeviceWatch | None:
        """A running watch when a PulseAudio server is there to ask; None otherwise (ALSA or another host:
        a device that vanishes then shows as a stream that stops)."""
        if shutil.which("pactl") is None:
            return None
        watch = cls()
        try:
            watch.routes = current_routes(watch.pid)
        except (OSError, ValueError, subprocess.SubprocessError) as exc:
            log.info("not watching devices: %s", exc)
            return None
        watch._start()
        return watch

    def _start(self) -> None:
        self._proc = subprocess.Popen(["pactl", "subscribe"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                      text=True)
        for target, name in ((self._read_events, "device-events"), (self._compare, "device-routes")):
            threading.Thread(target=target, name=name, daemon=True).start()

    def _read_events(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for line in self._proc.stdout:  # "Event 'remove' on sink #2"
            if any(what in line for what in WATCHED):
                self._changed.set()
        self._changed.set()  # the server went away: one last look (it fails; the streams report it)

    def _compare(self) -> None:
        while not self._stop.is_set():
            if not self._changed.wait(0.5):
                continue
            self._stop.wait(SETTLE_S)
            self._changed.clear()
            with self._lock:
                generation = self._generation
            try:
                now = current_routes(self.pid)
            except (OSError, ValueError, subprocess.SubprocessError) as exc:
                log.debug("device routes unavailable: %s", exc)
                if self._proc is not None and self._proc.poll() is not None:
                    log.warning("device changes are no longer watched (pactl subscribe ended)")
                    return
                continue
            with self._lock:
                if generation == self._generation:  # else the loop reopened a stream meanwhile: look again
                    self._note(now)
                else:
                    self._changed.set()

    def _note(self, now: Routes) -> None:
        """Compare with the last look (call with the lock held)."""
        before = self.routes
        self.routes = now
        if before is None:
            return
        # a stream that appears (opened, or reopened by us) is not a move
        for stream in ("output", "input"):
            was, now_on = before.of(stream), now.of(stream)
            if was is not None and now_on != was:
                self._events.put(DeviceMoved(stream, was, now_on, now.feeds_back))

    def expect_new_stream(self, stream: Stream | None = None) -> None:
        """`stream` (None: both) was (re)opened on purpose: take where it is now without an event. The other
        stream keeps its last look, so a move of it that came meanwhile is still reported."""
        try:
            now = current_routes(self.pid)
        except (OSError, ValueError, subprocess.SubprocessError):
            return
        with self._lock:
            self._generation += 1
            old = self.routes or now
            self.routes = Routes(now.output if stream in (None, "output") else old.output,
                                 now.input if stream in (None, "input") else old.input, now.feeds_back)
        self._changed.set()

    def still_there(self, stream: Stream, name: str) -> bool:
        """Whether the device named `name` still exists (True when the server cannot say)."""
        try:
            return device_exists(stream, name)
        except (OSError, ValueError, subprocess.SubprocessError):
            return True

    def events(self) -> list[DeviceMoved]:
        out = []
        while True:
            try:
                out.append(self._events.get_nowait())
            except queue.Empty:
                return out

    def close(self) -> None:
        self._stop.set()
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self._proc.kill()
