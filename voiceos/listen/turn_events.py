"""What the turn detector tells the voice loop, one frozen dataclass per event.

Every `t` is on the session clock (the audio clock of the frames, mapped onto it).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SpeechStarted:
    """Speech began (after `min_speech_ms` of it); `t` is its first speech frame."""

    t: float


@dataclass(frozen=True)
class SpeechGoesOn:
    """Another `partial_every_ms` of unbroken speech: transcribe and read the words so far."""

    t: float


@dataclass(frozen=True)
class PauseBegan:
    """A pause reached `speculate_after_ms`: transcribe the turn and start a reply, speculatively."""

    t: float
    silence_s: float


@dataclass(frozen=True)
class SpeechResumed:
    """Speech came back before the turn ended: the speculation is thrown away. `t`: where it came back."""

    t: float


@dataclass(frozen=True)
class TurnEnded:
    """The pause reached the silence this turn needs (or the audio ended): the turn is over."""

    t: float
    silence_s: float


TurnEvent = SpeechStarted | SpeechGoesOn | PauseBegan | SpeechResumed | TurnEnded
