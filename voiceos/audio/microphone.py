"""The live microphone: a sounddevice input stream whose callback only queues.

Blocks come out as 16 kHz mono float32 stamped with the session-clock time of their first sample.
"""

from __future__ import annotations

import collections
import logging
import queue
import threading
import time
from typing import Any

import numpy as np

from voiceos.audio.devices import check_default_device, find_device
from voiceos.audio.interfaces import AudioChunk
from voiceos.audio.wav import resample
from voiceos.config import FRAME_SAMPLES, SAMPLE_RATE
from voiceos.errors import DeviceError
from voiceos.measure.clock import SessionClock

log = logging.getLogger(__name__)

STALL_S = 2.0  # an input stream silent this long (no blocks at all, not quiet audio) has lost its device
FIRST_BLOCK_S = 5.0  # an input stream that opens but delivers nothing this long is not a microphone


class MicrophoneSource:
    """The live microphone. The PortAudio callback copies each block into a queue and nothing more."""

    def __init__(self, clock: SessionClock, device: str | int | None = None, block: int = FRAME_SAMPLES // 4) -> None:
        self.clock = clock
        self.device = find_device(device, "input")
        if self.device is None:
            check_default_device("input")
        self.block = block
        self.overflows = 0
        self.realtime = True
        self._queue: queue.Queue[tuple[np.ndarray, float]] = queue.Queue()
        self._stream: Any = None
        self._rate = SAMPLE_RATE
        self._last_block = time.perf_counter()
        self._opened_at = time.perf_counter()
        self._overflows_reported = 0
        self._received = 0  # samples received from the device
        self._origins: collections.deque[float] = collections.deque(maxlen=300)
        self._delivering = threading.Event()
        self.muted = False  # while muted, every block read is silence (the stream itself runs on)

    def _callback(self, indata: np.ndarray, frames: int, time_info: object, status: object) -> None:
        if getattr(status, "input_overflow", False):
            self.overflows += 1
        self._queue.put_nowait((indata[:, 0].copy(), time.perf_counter()))
        self._delivering.set()

    def start(self) -> None:
        """Open the stream and return once it delivers audio (ready means ready: nothing is said into a
        microphone that is not yet there). Every block from the first one on is kept in the queue."""
        self._open()
        if not self._delivering.wait(FIRST_BLOCK_S):
            self.close()
            raise DeviceError(f"the input device opened but delivered no audio in {FIRST_BLOCK_S:.0f} s; "
                              "see `voiceos devices`")
        log.info("microphone delivering after %.0f ms", 1000 * (time.perf_counter() - self._opened_at))

    def _open(self) -> None:
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
                self._opened_at = time.perf_counter()
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
            if self._stream is not None and not self._stream.active:
                raise DeviceError("the input device stopped: its stream ended (unplugged?)") from None
            if silent_for > STALL_S:
                raise DeviceError(
                    f"the input device stopped delivering audio ({silent_for:.1f} s without a block; unplugged?)"
                ) from None
            return None
        self._last_block = time.perf_counter()
        if self.overflows != self._overflows_reported:  # counted in the callback, reported here
            log.warning("input overflow: %d block(s) of microphone audio lost so far", self.overflows)
            self._overflows_reported = self.overflows
        start = self._anchor(self.clock.at(perf_t), len(samples))
        if self.muted:
            samples = np.zeros_like(samples)
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

    def toggle_mute(self) -> bool:
        """Mute or unmute (from any thread); returns whether it is muted now. The stream keeps running, so
        its clock and the device watch go on."""
        self.muted = not self.muted
        log.info("microphone %s", "muted" if self.muted else "unmuted")
        return self.muted

    def finished(self) -> bool:
        return False

    def reopen(self) -> None:
        """A new stream on the same device (the default: whatever the system now offers); the sample
        clock starts over. Raises DeviceError when there is nothing to open."""
        self.close()
        while True:  # blocks of the old stream would anchor the new one's clock in the past
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._received = 0
        self._origins.clear()
        self._delivering.clear()
        self.start()

    def close(self) -> None:
        if self._stream is not None:
            try:
                self._stream.abort()  # input has nothing to drain; a dead stream must not be waited for
                self._stream.close()
            except Exception as exc:  # the device may already be gone
                log.debug("closing input stream: %s", exc)
            self._stream = None

    def heard_nothing(self) -> bool:
        return False  # a microphone never runs out of turns

    def turn_done(self) -> None:
        pass
