"""`voiceos eval`: the scripted conversations, as text, through the code a live turn runs.

Each turn goes through the thinking worker (`Responder`) exactly as a spoken turn does — the prompt fitter,
the conversation and its memory of the user, the LLM with its sampling steps, the reply writer and its
guard — except that the words come from the script instead of Whisper (`ScriptedHearing`) and the clauses go
to a text voice instead of the speaker (`TextVoice`). Every conversation is a new person: its memory lives in
a file of its own in a temporary folder (never the user's), and a `restart` turn starts a new session over it.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from voiceos.commands.eval.scoring import EvalReply
from voiceos.commands.eval.script import Script
from voiceos.config import SAMPLE_RATE, Config, Mode
from voiceos.errors import ModelError
from voiceos.listen.transcript import Transcript, Word
from voiceos.llm.model import LanguageModel
from voiceos.measure.clock import SessionClock
from voiceos.measure.ledger import WorkLog
from voiceos.think.conversation import Conversation
from voiceos.think.jobs import ReplyJob, WarmJob
from voiceos.think.persona import Persona
from voiceos.think.responder import Responder
from voiceos.think.user_profile import ProfileStore

log = logging.getLogger(__name__)

REPLY_TIMEOUT_S = 120.0  # one reply of a 0.5B model takes a few seconds; this long means something hung
_TURN_AUDIO = np.zeros(SAMPLE_RATE // 10, np.float32)  # the stand-in for a turn's audio (never listened to)


class ScriptedHearing:
    """Speech recognition that hears the script's words: the text a turn's reply is written for."""

    def __init__(self) -> None:
        self.text = ""

    def transcribe(self, samples: np.ndarray, *, word_timestamps: bool = True, full_window: bool = False,
                   prompt: str | None = None, cancelled: Callable[[], bool] | None = None) -> Transcript:
        return Transcript(self.text, [], audio_s=len(samples) / SAMPLE_RATE)

    def align(self, samples: np.ndarray, text: str) -> list[Word]:
        return []


class TextVoice:
    """The voice worker's part in a text turn. A clause handed over counts as heard at once (live, the first
    clause reaches the speaker within a tenth of a second, long before the next is written), so a miss after
    it carries on from it as a live reply would; and speech is always far ahead of the writer, so the
    splitter cuts whole clauses (the result does not depend on this machine's speed)."""

    AHEAD_S = 10.0

    def __init__(self) -> None:
        self.clauses: dict[int, list[str]] = {}

    def say(self, reply_id: int, clause: str) -> None:
        self.clauses.setdefault(reply_id, []).append(clause)

    def retract(self, reply_id: int) -> bool:
        return not self.clauses.get(reply_id)

    def end(self, reply_id: int) -> None:
        pass

    def ahead_s(self, reply_id: int) -> float:
        return self.AHEAD_S


class TextSession:
    """One session of a scripted conversation: a conversation over the person's memory, and its worker."""

    def __init__(self, llm: LanguageModel, persona: Persona, config: Config, store: ProfileStore | None) -> None:
        self.clock = SessionClock()
        self.hearing = ScriptedHearing()
        self.voice = TextVoice()
        self.conversation = Conversation(persona, llm.fmt, llm.count_tokens, config.llm.history_budget_tokens,
                                         memory=store)
        self.responder = Responder(self.hearing, llm, self.conversation, self.voice, self.clock,
                                   WorkLog()).start()
        self.responder.submit(WarmJob(0))  # persona and memory read before the first turn, as a session does
        self.replies = 0

    def turn(self, text: str) -> tuple[ReplyJob, str]:
        """The reply to `text`, written as a live turn writes it, and what she said; the exchange then joins
        the conversation."""
        self.replies += 1
        self.hearing.text = text
        job = ReplyJob(self.replies, audio=_TURN_AUDIO, reply_id=self.replies, mode=Mode.STREAMING,
                       submitted_t=self.clock.now())
        self.responder.submit(job)
        if not job.finished.wait(REPLY_TIMEOUT_S):
            job.cancel.set()
            raise TimeoutError(f"no reply to {text!r} within {REPLY_TIMEOUT_S:.0f} s")
        if job.error:  # a scorecard over replies that were never written would mislead
            raise ModelError(f"the reply to {text!r} failed: {job.error}")
        spoken = job.reply_text  # what a live turn's record keeps of a reply heard to the end
        self.responder.remember(job.prompt_text or text, spoken, interrupted=False)
        self.responder.submit(WarmJob(self.replies))
        return job, spoken

    def close(self) -> None:
        self.responder.close()
        if not self.responder.stopped():  # the next session would share the LLM with a thread still in it
            raise ModelError("the thinking worker did not stop; the evaluation cannot go on safely")


@contextmanager
def memory_folder(keep: Path | None) -> Iterator[Path]:
    """Where the scripted people's memories live: `keep`, or a temporary folder removed afterwards."""
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        yield keep
        return
    with tempfile.TemporaryDirectory(prefix="voiceos-eval-") as folder:
        yield Path(folder)


def run_script(llm: LanguageModel, persona: Persona, config: Config, script: Script,
               store: ProfileStore | None) -> list[EvalReply]:
    """Every reply of one scripted conversation."""
    replies: list[EvalReply] = []
    session = TextSession(llm, persona, config, store)
    try:
        for number, turn in enumerate(script.turns, 1):
            if turn.restart:
                session.close()
                session = TextSession(llm, persona, config, store)
            started = time.perf_counter()
            job, spoken = session.turn(turn.user)
            replies.append(EvalReply(
                script_id=script.id, turn=number, user=turn.user, reply=spoken,
                after_restart=script.after_restart(number - 1), guard_hits=tuple(job.guard_hits),
                guard_cut=job.guard_cut, first_token_ms=_ms(job.started_t, job.first_token_t),
                reply_ms=(time.perf_counter() - started) * 1000,
            ))
            log.debug("%s %d: %r → %r", script.id, number, turn.user, spoken)
    finally:
        session.close()
    return replies


def run_scripts(llm: LanguageModel, persona: Persona, config: Config, scripts: list[Script], *,
                memory: bool = True, memory_dir: Path | None = None,
                progress: Callable[[str], None] | None = None) -> list[EvalReply]:
    """Every reply of every conversation; each conversation remembers its person in its own file (`memory`)."""
    replies: list[EvalReply] = []
    with memory_folder(memory_dir) as folder:
        for i, script in enumerate(scripts, 1):
            if progress:
                progress(f"conversation {i}/{len(scripts)}: {script.id} ({len(script.turns)} turns)")
            store = ProfileStore(folder / f"{script.id}.json") if memory else None
            replies.extend(run_script(llm, persona, config, script, store))
    return replies


def _ms(start: float | None, end: float | None) -> float | None:
    return None if start is None or end is None else (end - start) * 1000
