"""Audio out: a sounddevice output stream fed from a queue of reply chunks, gapless between chunks.

The PortAudio callback only copies queued samples (or silence) into the device buffer and notes, per
reply, when its first sample was handed to the device and how many samples have been played — for the
voice-to-voice latency, for barge-in (what was actually spoken) and for the echo gate (what is playing).
`VirtualSpeaker` plays the same role in real time without a device (bench, demo with no speaker).
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from typing import Any

import numpy as np

from voiceos.audio.devices import find_device
from voiceos.audio.interfaces import ReplyProgress
from voiceos.config import SAMPLE_RATE
from voiceos.errors import DeviceError
from voiceos.measure.clock import SessionClock

log = logging.getLogger(__name__)


class PlaybackQueue:
    """Queue + bookkeeping shared by every `Playback`: the real, the virtual and the instant speaker."""

    def __init__(self, clock: SessionClock) -> None:
        self.clock = clock
        self._chunks: collections.deque[tuple[int, np.ndarray]] = collections.deque()
        self._offset = 0  # read position inside the head chunk
        self.progress: dict[int, ReplyProgress] = {}
        # What was handed to the device, stamped with when it should be heard (for the echo gate).
        self.history: collections.deque[tuple[float, np.ndarray]] = collections.deque(maxlen=800)
        self._last_audible = -1e9
        self._handed = 0  # samples handed to the device so far
        self._origins: collections.deque[float] = collections.deque(maxlen=400)
        self._lock = threading.Lock()
        self.underflows = 0
        self.output_latency = 0.0  # seconds from hand-over to the device's output

    def play(self, reply_id: int, samples: np.ndarray, text: str = "") -> None:
        with self._lock:
            prog = self.progress.setdefault(reply_id, ReplyProgress())
            prog.queued += len(samples)
            prog.chunk_bounds.append((prog.queued, text))
            self._chunks.append((reply_id, samples.astype(np.float32, copy=False)))

    def forget_before(self, reply_id: int) -> None:
        """Let go of the bookkeeping of replies older than `reply_id` (nothing of them is queued any more)."""
        with self._lock:
            queued = {r for r, _ in self._chunks}
            for old in [r for r in self.progress if r < reply_id and r not in queued]:
                del self.progress[old]

    def played_samples(self, reply_id: int) -> int:
        """How many of this reply's samples have gone to the device."""
        prog = self.progress.get(reply_id)
        return prog.played if prog is not None else 0

    def stop(self) -> None:
        """Drop everything queued (barge-in); the device plays silence from the next block."""
        with self._lock:
            self._chunks.clear()
            self._offset = 0

    def _fill(self, out: np.ndarray, now_t: float) -> None:
        n, pos = len(out), 0
        with self._lock:
            while pos < n and self._chunks:
                reply_id, samples = self._chunks[0]
                take = min(n - pos, len(samples) - self._offset)
                out[pos : pos + take] = samples[self._offset : self._offset + take]
                prog = self.progress[reply_id]
                if prog.first_sample_t is None:
                    prog.first_sample_t = now_t + pos / SAMPLE_RATE
                prog.played += take
                prog.last_sample_t = now_t + (pos + take) / SAMPLE_RATE
                pos += take
                self._offset += take
                if self._offset >= len(samples):
                    self._chunks.popleft()
                    self._offset = 0
        if pos < n:
            out[pos:] = 0.0
        # The device consumes samples at its own steady rate while callbacks jitter: place this block on
        # the timeline by sample count from the earliest consistent origin (as the microphone does).
        self._origins.append(now_t - self._handed / SAMPLE_RATE)
        block_t = min(self._origins) + self._handed / SAMPLE_RATE
        self._handed += n
        if pos:
            heard_t = block_t + self.output_latency
            self.history.append((heard_t, out.copy()))
            self._last_audible = heard_t + n / SAMPLE_RATE

    def reference(self, t0: float, t1: float) -> np.ndarray:
        """The audio that was to be heard between session times t0 and t1 (zeros where none)."""
        n = max(0, int(round((t1 - t0) * SAMPLE_RATE)))
        ref = np.zeros(n, dtype=np.float32)
        for t, block in list(self.history):
            start = int(round((t - t0) * SAMPLE_RATE))
            if start >= n or start + len(block) <= 0:
                continue
            lo, hi = max(0, start), min(n, start + len(block))
            ref[lo:hi] = block[lo - start : hi - start]
        return ref

    def last_audible_t(self) -> float:
        """When the last sample of her voice should have been heard (session clock)."""
        return self._last_audible


class Speaker(PlaybackQueue):
    """A real output device through PortAudio."""

    def __init__(self, clock: SessionClock, device: str | int | None = None, block: int = 128) -> None:
        super().__init__(clock)
        self.device = find_device(device, "output")
        self.block = block
        self._stream: Any = None

    def _callback(self, outdata: np.ndarray, frames: int, time_info: object, status: object) -> None:
        if getattr(status, "output_underflow", False):
            self.underflows += 1
        self._fill(outdata[:, 0], self.clock.at(time.perf_counter()))

    def start(self) -> Speaker:
        import sounddevice as sd

        try:
            self._stream = sd.OutputStream(
                samplerate=SAMPLE_RATE, channels=1, dtype="float32", blocksize=self.block,
                device=self.device, callback=self._callback, latency="low",
            )
            self._stream.start()
            self.output_latency = float(self._stream.latency)
        except Exception as exc:
            raise DeviceError(
                f"cannot open the output device ({exc}); see `voiceos devices`, or use `voiceos demo --out DIR`"
            ) from exc
        return self

    def alive(self) -> bool:
        return self._stream is not None and self._stream.active and not self._stream.stopped

    def reopen(self) -> None:
        """A new stream on the same device (the default: wherever the system now sends sound); what was
        queued is dropped. Raises DeviceError when there is no device to open."""
        self.close()
        with self._lock:
            self._chunks.clear()
            self._offset = 0
            self._origins.clear()
            self._handed = 0
        self.start()

    def close(self) -> None:
        if self._stream is not None:
            try:
                if not self.alive():  # a dead stream: do not wait for buffers to drain
                    self._stream.abort()
                else:
                    self._stream.stop()
                self._stream.close()
            except Exception as exc:
                log.debug("closing output stream: %s", exc)
            self._stream = None


class VirtualSpeaker(PlaybackQueue):
    """Consumes queued audio in real time with no device: the same timing, no sound."""

    def __init__(self, clock: SessionClock, block: int = 256) -> None:
        super().__init__(clock)
        self.block = block
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="virtual-speaker", daemon=True)

    def start(self) -> VirtualSpeaker:
        self._thread.start()
        return self

    def _run(self) -> None:
        buf = np.zeros(self.block, dtype=np.float32)
        period = self.block / SAMPLE_RATE
        next_t = time.perf_counter()
        while not self._stop.is_set():
            self._fill(buf, self.clock.at(time.perf_counter()))
            next_t += period
            delay = next_t - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            else:
                next_t = time.perf_counter()

    def alive(self) -> bool:
        return True

    def close(self) -> None:
        self._stop.set()


class InstantSpeaker(PlaybackQueue):
    """Plays nothing and takes no time: for faster-than-real-time runs (tests, `demo --fast`)."""

    def play(self, reply_id: int, samples: np.ndarray, text: str = "") -> None:
        super().play(reply_id, samples, text)
        self._fill(np.zeros(len(samples), dtype=np.float32), self.clock.now())

    def start(self) -> InstantSpeaker:
        return self

    def alive(self) -> bool:
        return True

    def close(self) -> None:
        pass
