"""What the voice loop announces as it goes, for whoever watches (the live view, the line printer).

One frozen dataclass per event. They are announced through `loop.announcer.Announcer`, which never makes the
loop wait; every `t` is on the session clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from voiceos.loop.record import TurnRecord


class HerState(str, Enum):
    """What Samantha is doing."""

    LISTENING = "listening"  # waiting for you
    HEARING = "hearing you"  # you are talking
    THINKING = "thinking"  # in your pause, or your turn is over and her reply is being written
    SPEAKING = "speaking"  # her reply is reaching the speaker
    STOPPED = "stopped"  # the conversation is over


@dataclass(frozen=True)
class StateChanged:
    state: HerState
    t: float


@dataclass(frozen=True)
class InputLevel:
    """The microphone's loudness over the last VAD frame."""

    db: float  # dBFS of the frame's RMS (-inf: digital silence, e.g. muted)


@dataclass(frozen=True)
class WordsSoFar:
    """Your words as recognised while you talk (they may still change)."""

    text: str


@dataclass(frozen=True)
class TurnHeard:
    """The words of your turn, final: those her reply is written for."""

    text: str


@dataclass(frozen=True)
class PauseMeasured:
    """A pause she noticed (long enough to start thinking in), measured when it ended."""

    start: float
    seconds: float
    idle_cpu_s: float  # CPU-seconds (all cores) the machine left idle in it
    did: tuple[str, ...]  # what she did with it, in words ("read your words", "drafted a reply")
    ended_turn: bool  # the pause that ended your turn (not one between your words)


@dataclass(frozen=True)
class ReplyProgressed:
    """Her reply so far: what she has written (clauses said to the voice) and what has reached the speaker."""

    written: str
    spoken: str


@dataclass(frozen=True)
class TurnFinished:
    """A turn is over and logged: its record (words, reply, latencies, pause ledger)."""

    record: TurnRecord


@dataclass(frozen=True)
class TurnDropped:
    """A turn held no words (noise, a cough) and was let go."""

    reason: str


@dataclass(frozen=True)
class MicrophoneMuted:
    muted: bool


@dataclass(frozen=True)
class StatusMessage:
    """A line for the person: a device change, "listening", a warning."""

    text: str


LoopEvent = (StateChanged | InputLevel | WordsSoFar | TurnHeard | PauseMeasured | ReplyProgressed | TurnFinished
             | TurnDropped | MicrophoneMuted | StatusMessage)
