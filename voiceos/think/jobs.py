"""The thinking worker's jobs: what the voice loop asks of it, and what a reply job records as it runs.

- `PartialJob`: while the user talks, transcribe what was heard so far and read those words into the LLM;
- `ReplyJob`: transcribe the turn, then write the reply into the voice worker (speculatively from the first
  pause: called off if the user goes on, never heard unless the turn is committed);
- `WarmJob`: after a reply, read persona + history so the next turn starts from a warm cache.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np

from voiceos.config import SAMPLE_RATE, Mode
from voiceos.listen.transcript import Transcript
from voiceos.llm.model import GenerationStats


@dataclass
class Job:
    utt_id: int
    cancel: threading.Event = field(default_factory=threading.Event)

    def cancelled(self) -> bool:
        return self.cancel.is_set()


@dataclass
class HearingJob(Job):
    """A job that transcribes the utterance so far."""

    audio: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    heard_samples: int = 0  # audio[:heard_samples] was transcribed for good at an earlier pause...
    heard_text: str = ""  # ...as this: only the rest is transcribed now


@dataclass
class PartialJob(HearingJob):
    pass


@dataclass
class WarmJob(Job):
    pass


@dataclass
class ReplyJob(HearingJob):
    reply_id: int = 0
    audio_start: float = 0.0  # session time of audio[0]
    speculative: bool = True  # started at a pause, before the turn was known to be over
    mode: Mode = Mode.STREAMING
    submitted_t: float = 0.0
    # filled by the worker (session-clock times)
    transcript: Transcript | None = None
    started_t: float | None = None
    stt_done_t: float | None = None
    read_done_t: float | None = None  # the reply's prompt read (speculative path)
    first_token_t: float | None = None
    first_clause_t: float | None = None
    llm_started_t: float | None = None
    done_t: float | None = None
    end_probability: float | None = None  # the LLM's P(turn ends here) for the transcript
    reply_text: str = ""
    prompt_text: str = ""  # the user's words as the LLM read them (`steady_words`); memory keeps these
    drafted: list[str] = field(default_factory=list)  # clauses written so far (spoken only once committed)
    guard_hits: list[str] = field(default_factory=list)
    guard_cut: bool = False  # the guard gave up on the last attempt: the reply ends where that miss began
    stats: GenerationStats = field(default_factory=GenerationStats)
    error: str = ""
    finished: threading.Event = field(default_factory=threading.Event)

    @property
    def naive(self) -> bool:
        """The plain cascade: full-window STT, the whole reply written before any of it is spoken."""
        return self.mode is Mode.NAIVE

    @property
    def audio_end_t(self) -> float:
        """Session time just after the job's last sample: where the pause it answers was noticed."""
        return self.audio_start + len(self.audio) / SAMPLE_RATE
