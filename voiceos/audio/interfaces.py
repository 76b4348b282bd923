"""What flows between the audio stages: a typed block of audio, and the two interfaces of the sound card's
sides — an `AudioSource` the voice loop reads from and a `Playback` the voice worker speaks into.

Inside voiceos all audio is 16 kHz mono float32 in [-1, 1], stamped with session-clock seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from voiceos.config import SAMPLE_RATE


@dataclass(frozen=True)
class AudioChunk:
    """A block of audio with its format and where it sits on the session clock."""

    samples: np.ndarray  # float32, shape (n,) mono or (n, channels)
    rate: int = SAMPLE_RATE  # Hz
    start: float = 0.0  # session-clock seconds of the first sample

    @property
    def channels(self) -> int:
        return 1 if self.samples.ndim == 1 else int(self.samples.shape[1])

    @property
    def duration(self) -> float:
        return len(self.samples) / self.rate

    @property
    def end(self) -> float:
        return self.start + self.duration


class AudioSource(Protocol):
    """The user's side: a microphone, WAV files fed in real time, or a scripted source in tests."""

    overflows: int  # blocks the device dropped because nobody read them in time
    realtime: bool  # False when audio arrives faster than real time: latencies are then meaningless

    def start(self) -> None: ...

    def read(self, timeout: float) -> AudioChunk | None:
        """The next block, None on timeout; raises DeviceError if the device is gone."""
        ...

    def finished(self) -> bool:
        """No more audio will come (the last WAV was read)."""
        ...

    def heard_nothing(self) -> bool:
        """The current turn's audio has all been read and held no speech (WAV input only)."""
        ...

    def turn_done(self) -> None:
        """Samantha has answered (or dropped) the current turn: a WAV source may feed the next one."""
        ...

    def close(self) -> None: ...


@dataclass
class ReplyProgress:
    """Playback of one reply, written by the audio thread."""

    first_sample_t: float | None = None  # session clock: first sample handed to the device
    played: int = 0  # samples handed to the device
    queued: int = 0  # samples queued
    last_sample_t: float | None = None
    chunk_bounds: list[tuple[int, str]] = field(default_factory=list)  # (end sample, clause text)

    @property
    def gap_s(self) -> float:
        """Silence the device played inside the reply because the next clause was not ready (0 = gapless)."""
        if self.first_sample_t is None or self.last_sample_t is None:
            return 0.0
        return max(0.0, (self.last_sample_t - self.first_sample_t) - self.played / SAMPLE_RATE)

    def spoken_text(self) -> str:
        """The words actually played: whole clauses, then the played share of the clause cut off."""
        words: list[str] = []
        start = 0
        for end, text in self.chunk_bounds:
            if self.played >= end:
                words.extend(text.split())
            elif self.played > start:
                share = (self.played - start) / max(1, end - start)
                clause_words = text.split()
                words.extend(clause_words[: int(len(clause_words) * share)])
                break
            else:
                break
            start = end
        return " ".join(words)


class Playback(Protocol):
    """Samantha's side: an output device (or a stand-in) that plays reply audio in order, gaplessly."""

    progress: dict[int, ReplyProgress]  # per reply id, written by the audio thread
    underflows: int  # blocks the device had to fill with silence because none was ready in time

    def play(self, reply_id: int, samples: np.ndarray, text: str = "") -> None:
        """Queue `samples` (one clause, `text`) of reply `reply_id` after everything queued so far."""
        ...

    def played_samples(self, reply_id: int) -> int: ...

    def forget_before(self, reply_id: int) -> None:
        """Let go of what is kept about replies older than `reply_id`."""
        ...

    def stop(self) -> None:
        """Drop everything queued (she is talked over); silence from the next block."""
        ...

    def alive(self) -> bool: ...

    def reference(self, t0: float, t1: float) -> np.ndarray:
        """The audio that was to be heard between session times t0 and t1 (for the echo gate)."""
        ...

    def last_audible_t(self) -> float: ...

    def close(self) -> None: ...
