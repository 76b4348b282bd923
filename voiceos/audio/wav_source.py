"""WAV files as a microphone: user turns fed block by block at real-time pace (or faster, for tests).

Blocks come out as 512-sample (32 ms) frames of 16 kHz mono float32 stamped with the session-clock time
of their first sample, exactly as the microphone's.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from voiceos.audio.interfaces import AudioChunk
from voiceos.config import FRAME_SAMPLES, SAMPLE_RATE
from voiceos.measure.clock import SessionClock

log = logging.getLogger(__name__)


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
        gap_s: float = 0.6, tail_s: float = 3.0, max_wait_s: float | None = None,
    ) -> None:
        self.clock = clock
        self.turns = list(turns)
        self.realtime = realtime
        self.gap_s = gap_s
        self.tail_s = tail_s
        # how long a turn waits for her answer before the next is fed: faster than real time (tests, a busy
        # CI machine) timings mean nothing, so only a hung reply should move it on
        self.max_wait_s = max_wait_s if max_wait_s is not None else (60.0 if realtime else 600.0)
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
