"""What the thinking worker tells the voice loop (through a queue; it never calls into the loop)."""

from __future__ import annotations

from dataclasses import dataclass

from voiceos.think.jobs import Job, ReplyJob


@dataclass(frozen=True)
class TranscriptReady:
    """A reply job has its transcript (and, when it read the prompt, the LLM's P(end))."""

    job: ReplyJob


@dataclass(frozen=True)
class WordsHeard:
    """The words of an utterance so far, from a pass while the user talks (they may still change)."""

    utt_id: int
    text: str


@dataclass(frozen=True)
class JobFailed:
    """A job raised; the worker lives on and the loop logs it."""

    job: Job
    message: str


ResponderEvent = TranscriptReady | WordsHeard | JobFailed
