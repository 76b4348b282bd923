"""Audio in: the microphone (a sounddevice input stream whose callback only queues) or WAV files fed at
real-time pace (or faster, for tests). Both yield 512-sample (32 ms) blocks of 16 kHz mono float32 stamped
with the session-clock time of their first sample.
"""

from __future__ import annotations

import collections
import logging
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from voiceos.audio import AudioChunk, resample
from voiceos.clock import SessionClock
from voiceos.config import FRAME_SAMPLES, SAMPLE_RATE
from voiceos.errors import DeviceError

log = logging.getLogger(__name__)

STALL_S = 2.0  # an input stream silent this long (no blocks at all, not quiet audio) has lost its device


class AudioSource(Protocol):
    overflows: int

    def start(self) -> None: ...

    def read(self, timeout: float) -> AudioChunk | None:
        """The next block, None on timeout; raises DeviceError if the device is gone."""
        ...

    def finished(self) -> bool: ...

    def close(self) -> None: ...


def find_device(spec: str | int | None, kind: str) -> int | None:
    """A PortAudio device index from an index or (part of) a name; None for the default."""
    import sounddevice as sd

    if spec is None or spec == "":
        return None
    try:
        devices = sd.query_devices()
    except Exception as exc:
        raise DeviceError(f"PortAudio cannot list devices: {exc}") from exc
    channel_key = "max_input_channels" if kind == "input" else "max_output_channels"
    if isinstance(spec, int) or str(spec).isdigit():
        index = int(spec)
        if not 0 <= index < len(devices) or devices[index][channel_key] < 1:
            raise DeviceError(f"no {kind} device with index {index}; see `voiceos devices`")
        return index
    matches = [i for i, d in enumerate(devices) if str(spec).lower() in d["name"].lower() and d[channel_key] > 0]
    if not matches:
        raise DeviceError(f"no {kind} device named {spec!r}; see `voiceos devices`")
    return matches[0]


def check_default_device(kind: str) -> None:
    """Raise a DeviceError that points at the offline demo when there is no default device."""
    import sounddevice as sd

    try:
        sd.query_devices(kind=kind)
    except Exception as exc:
        hint = "use `voiceos demo --input FILE.wav` to talk from WAV files" if kind == "input" else (
            "use `voiceos demo --out DIR` to write replies as WAV files")
        raise DeviceError(f"no audio {kind} device found ({exc}); {hint}") from exc


class MicrophoneSource:
    """The live microphone. The PortAudio callback copies each block into a queue and nothing more."""

    def __init__(self, clock: SessionClock, device: str | int | None = None, block: int = FRAME_SAMPLES // 4) -> None:
        self.clock = clock
        self.device = find_device(device, "input")
        if self.device is None:
            check_default_device("input")
        self.block = block
        self.overflows = 0
        self._queue: queue.Queue[tuple[np.ndarray, float]] = queue.Queue()
        self._stream: Any = None
        self._rate = SAMPLE_RATE
        self._last_block = time.perf_counter()
        self._overflows_reported = 0
        self._received = 0  # samples received from the device
        self._origins: collections.deque[float] = collections.deque(maxlen=300)

    def _callback(self, indata: np.ndarray, frames: int, time_info: object, status: object) -> None:
        if getattr(status, "input_overflow", False):
            self.overflows += 1
        self._queue.put_nowait((indata[:, 0].copy(), time.perf_counter()))

    def start(self) -> None:
        import sounddevice as sd

        for rate in (SAMPLE_RATE, None):
            try:
                if rate is None:
                    info = sd.query_devices(self.device, "input")
                    rate = int(info["default_samplerate"])
                self._rate = rate
                blocksize = int(self.block * rate / SAMPLE_RATE)
                stream = sd.InputStream(
                    samplerate=rate, channels=1, dtype="float32", blocksize=blocksize,
                    device=self.device, callback=self._callback, latency="low",
                )
                stream.start()
                self._stream = stream
                self._last_block = time.perf_counter() + 3.0  # grace for the first block
                log.info("microphone open at %d Hz (device %s)", rate, self.device)
                return
            except Exception as exc:
                last = exc
                self._stream = None
        raise DeviceError(
            f"cannot open the input device ({last}); see `voiceos devices`, or use `voiceos demo --input FILE.wav`"
        )

    def read(self, timeout: float) -> AudioChunk | None:
        try:
            samples, perf_t = self._queue.get(timeout=timeout)
        except queue.Empty:
            silent_for = time.perf_counter() - self._last_block
            if (self._stream is not None and not self._stream.active) or silent_for > STALL_S:
                raise DeviceError(
                    f"the input device stopped delivering audio ({silent_for:.1f} s without a block; unplugged?)"
                ) from None
            return None
        self._last_block = time.perf_counter()
        if self.overflows != self._overflows_reported:  # counted in the callback, reported here
            log.warning("input overflow: %d block(s) of microphone audio lost so far", self.overflows)
            self._overflows_reported = self.overflows
        start = self._anchor(self.clock.at(perf_t), len(samples))
        if self._rate != SAMPLE_RATE:
            samples = resample(samples, self._rate, SAMPLE_RATE)
        return AudioChunk(samples.astype(np.float32, copy=False), SAMPLE_RATE, start)

    def _anchor(self, callback_t: float, frames: int) -> float:
        """Session time of this block's first sample.

        PortAudio's ADC timestamps are unreliable through ALSA's PulseAudio plugin, and a callback can run
        late, never early; so the sample count is mapped onto the clock with the earliest consistent origin
        seen over the last ~10 s (late callbacks do not move it; device clock drift is followed).
        """
        first = self._received
        self._received += frames
        origin = callback_t - self._received / self._rate
        self._origins.append(origin)
        return min(self._origins) + first / self._rate

    def finished(self) -> bool:
        return False

    def close(self) -> None:
        if self._stream is not None:
            try:
                self._stream.stop()
                self._stream.close()
            except Exception as exc:  # the device may already be gone
                log.debug("closing input stream: %s", exc)
            self._stream = None


@dataclass
class WavTurn:
    """One user turn read from a WAV file (already 16 kHz mono)."""

    name: str
    samples: np.ndarray


class WavSource:
    """Feeds WAV turns block by block, as a microphone would, then silence.

    Turn k+1 starts only after `turn_done()` is called for turn k (Samantha has answered), after
    `gap_s` of silence. `realtime=False` feeds as fast as the pipeline reads (for tests).
    """

    def __init__(
        self, clock: SessionClock, turns: Sequence[WavTurn], *, realtime: bool = True,
        gap_s: float = 0.6, tail_s: float = 3.0, max_wait_s: float = 60.0,
    ) -> None:
        self.clock = clock
        self.turns = list(turns)
        self.realtime = realtime
        self.gap_s = gap_s
        self.tail_s = tail_s
        self.max_wait_s = max_wait_s
        self.overflows = 0
        self._queue: queue.Queue[AudioChunk] = queue.Queue(maxsize=0 if realtime else 64)
        self._turn_done = threading.Event()
        self._tail_fed = threading.Event()
        self._stop = threading.Event()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="wav-source", daemon=True)
        self.turn_started_at: list[float] = []  # session time each turn's first sample was fed
        self.turn_ended_at: list[float] = []

    def turn_done(self) -> None:
        self._tail_fed.clear()  # first, so that `heard_nothing()` cannot speak for the next turn
        self._turn_done.set()

    def heard_nothing(self) -> bool:
        """The current turn's audio and its silent tail have all been read: if the listener has no
        utterance open and no reply under way now, the file held no speech."""
        return self._tail_fed.is_set() and self._queue.empty() and not self._turn_done.is_set()

    def start(self) -> None:
        self._thread.start()

    def _emit(self, block: np.ndarray, t: float) -> None:
        chunk = AudioChunk(block, SAMPLE_RATE, t)
        while not self._stop.is_set():
            try:
                self._queue.put(chunk, timeout=0.1)
                return
            except queue.Full:
                continue

    def _run(self) -> None:
        origin = self.clock.now()
        fed = 0  # samples fed so far: the audio clock
        silence = np.zeros(FRAME_SAMPLES, dtype=np.float32)

        def feed(block: np.ndarray) -> None:
            nonlocal fed
            t = origin + fed / SAMPLE_RATE  # the audio clock; in fast mode it runs ahead of the session clock
            if self.realtime:
                delay = t + len(block) / SAMPLE_RATE - self.clock.now()
                if delay > 0:
                    time.sleep(delay)
            self._emit(block, t)
            fed += len(block)

        try:
            for k, turn in enumerate(self.turns):
                for _ in range(int(self.gap_s * SAMPLE_RATE / FRAME_SAMPLES)):
                    feed(silence)
                self._tail_fed.clear()
                self._turn_done.clear()
                self.turn_started_at.append(origin + fed / SAMPLE_RATE)
                samples = turn.samples
                pad = (-len(samples)) % FRAME_SAMPLES
                samples = np.concatenate([samples, np.zeros(pad, dtype=np.float32)])
                for i in range(0, len(samples), FRAME_SAMPLES):
                    if self._stop.is_set():
                        return
                    feed(samples[i : i + FRAME_SAMPLES])
                self.turn_ended_at.append(origin + fed / SAMPLE_RATE)
                waited = 0.0
                tail_blocks = int(self.tail_s * SAMPLE_RATE / FRAME_SAMPLES)
                n = 0
                while not self._turn_done.is_set() and not self._stop.is_set():
                    if n >= tail_blocks:
                        self._tail_fed.set()
                    if self.realtime or n < tail_blocks:
                        feed(silence)
                        n += 1
                        waited = n * FRAME_SAMPLES / SAMPLE_RATE
                    else:
                        self._turn_done.wait(0.05)
                        waited += 0.05
                    if waited > self.max_wait_s:
                        log.warning("turn %d (%s): no reply after %.0f s; going on", k + 1, turn.name, waited)
                        break
            for _ in range(int(0.5 * SAMPLE_RATE / FRAME_SAMPLES)):
                feed(silence)
        finally:
            self._done.set()

    def read(self, timeout: float) -> AudioChunk | None:
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            return None

    def finished(self) -> bool:
        return self._done.is_set() and self._queue.empty()

    def close(self) -> None:
        self._stop.set()
