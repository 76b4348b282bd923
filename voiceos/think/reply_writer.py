"""The reply writer: LLM tokens → clauses → the reply guard → the voice worker, while they are written.

A reply is written in up to `ATTEMPTS` attempts. An attempt that breaks character or copies an earlier reply
is a miss: written again from scratch when nobody can have heard it yet (`Outcome.AGAIN`), carried on from
what was heard when some of it already went to the speaker (`Outcome.GO_ON`). A miss on the last attempt
cuts the reply where the miss began (`ReplyJob.guard_cut`): what was said stands. Words that may still grow
into a banned phrase ("I'm happy …" → "to help") are held until the words after them settle it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from enum import Enum
from typing import Protocol

from voiceos.llm.blockers import opening_of
from voiceos.llm.model import GenerationStats, LanguageModel, PrefillResult
from voiceos.measure.clock import SessionClock
from voiceos.speak.splitter import ClauseSplitter, voiced
from voiceos.think.conversation import Conversation
from voiceos.think.guard import (
    ATTEMPTS,
    EARLIER_REPLIES_CHECKED,
    ECHO_MIN_WORDS,
    OPENINGS_BARRED_FOR_QUESTIONS_ABOUT_THEM,
    asks_about_themselves,
    max_sentences,
    repeats_earlier,
    says_back,
    sentence_count,
    sentences_of,
)
from voiceos.think.jobs import ReplyJob
from voiceos.think.their_facts import claimed, says_any

log = logging.getLogger(__name__)

# What she says when the LLM server goes away in the middle of a turn (the log says why)
SERVER_LOST_APOLOGY = "Sorry, I lost my train of thought. Could you say that again?"
OPENINGS_BARRED_FROM_LAST = 8  # her last replies whose two opening words a new reply may not open with
RETRY_TEMPERATURE_STEP = 0.15  # each new attempt samples a little hotter (and with another seed)


class Outcome(Enum):
    DONE = "done"  # the reply is written (and said)
    AGAIN = "again"  # it missed before anyone could hear it: write it anew
    GO_ON = "go on"  # it missed after some of it went to the speaker: the next attempt carries on from there


class ReplyVoice(Protocol):
    """What the writer needs of the voice worker."""

    def say(self, reply_id: int, clause: str) -> None: ...

    def retract(self, reply_id: int) -> bool: ...

    def end(self, reply_id: int) -> None: ...

    def ahead_s(self, reply_id: int) -> float: ...


class ReplyWriter:
    def __init__(self, llm: LanguageModel, conversation: Conversation, voice: ReplyVoice,
                 clock: SessionClock) -> None:
        self.llm = llm
        self.conversation = conversation
        self.voice = voice
        self.clock = clock

    def write(self, job: ReplyJob, prompt: str, read: PrefillResult | None) -> None:
        """Write the reply to `job` (whose transcript is known) into the voice worker, every attempt it takes.
        `read`: the prompt reading already done for it (counted in its stats)."""
        assert job.transcript is not None
        limit = max_sentences(job.transcript.text)
        job.llm_started_t = self.clock.now()
        heard: list[str] = []  # clauses already gone to the speaker, which a new attempt carries on from
        for attempt in range(ATTEMPTS):
            outcome = self.attempt(job, prompt, limit, attempt, read if attempt == 0 else None, heard)
            if outcome is Outcome.DONE or job.cancelled():
                break
        self.voice.end(job.reply_id)

    def apologise(self, job: ReplyJob) -> None:
        """End the reply to `job` with `SERVER_LOST_APOLOGY`, after whatever of it was said already ("That's…
        oh, sorry, …")."""
        said = [] if job.naive else list(job.drafted)  # the plain cascade says nothing before the end
        apology = f"oh, {SERVER_LOST_APOLOGY[0].lower()}{SERVER_LOST_APOLOGY[1:]}" if said else SERVER_LOST_APOLOGY
        self.voice.say(job.reply_id, apology)
        self.voice.end(job.reply_id)
        job.drafted[:] = [*said, apology]
        job.reply_text = " ".join(job.drafted)

    def attempt(self, job: ReplyJob, prompt: str, max_sentences: int, attempt: int,
                read_before: PrefillResult | None, heard: list[str]) -> Outcome:
        """Stream one attempt. After `GO_ON`, `heard` holds what went to the speaker."""
        return _Attempt(self, job, max_sentences, attempt, heard).run(prompt, read_before)


class _Attempt:
    """One attempt at a reply: its state while the tokens stream in."""

    def __init__(self, writer: ReplyWriter, job: ReplyJob, max_sentences: int, attempt: int,
                 heard: list[str]) -> None:
        self.llm, self.voice, self.clock = writer.llm, writer.voice, writer.clock
        self.persona = writer.conversation.persona
        self.job = job
        self.attempt = attempt
        self.last_try = attempt == ATTEMPTS - 1
        self.max_sentences = max_sentences
        self.heard = heard
        self.spoken: list[str] = list(heard)
        self.sentences = sentence_count(" ".join(heard))
        self.earlier = list(writer.conversation.said)  # not to copy
        self.user_text = job.transcript.text if job.transcript is not None else ""  # not to say back
        self.claims = writer.conversation.claims(self.user_text)  # the user's name and facts: not hers...
        self.not_hers = writer.conversation.not_hers(self.user_text)  # ...nor what they have ("my brother Omar")
        self.remembering = writer.conversation.asked_to_remember(self.user_text)  # asked what they told her
        self.whole: list[str] = []  # the plain cascade: spoken only when the whole reply is written
        self.copies_checked = True  # until a copy was let through (it could not be taken back any more)
        self.held = ""  # words that could still grow into a banned phrase: said once what follows clears them
        # Once speech starts, later clauses are cut early whenever what is queued is about to run out.
        self.splitter = ClauseSplitter(ahead_s=None if job.naive else lambda: self.voice.ahead_s(job.reply_id))
        self.splitter.emitted = len(heard)  # carrying on: no short first clause again

    def run(self, prompt: str, read_before: PrefillResult | None) -> Outcome:
        job = self.job
        if not self.heard:
            job.first_token_t = job.first_clause_t = None  # the timings of the attempt that is spoken
        job.stats = GenerationStats()
        # Twice it did not say what they asked about: the last try answers about them, after what was heard.
        primed = self.remembering.opening if self.last_try and self.remembering.words else ""
        if primed and self.heard:  # after the words heard: "Yes, you're Amara", "Hi! You're Amara"
            primed = " " + (primed if self.heard[-1].rstrip().endswith((".", "!", "?")) else primed.lower())
        lead = " ".join(self.heard) + primed
        if lead:
            prompt += self.llm.fmt.reply_lead + lead
        config = self.llm.config
        pieces = self.llm.stream(
            prompt, job.cancelled, seed=config.seed + self.attempt,
            temperature=config.temperature + RETRY_TEMPERATURE_STEP * self.attempt, stats=job.stats,
            read_before=read_before, avoid=sentences_of(self.earlier[-EARLIER_REPLIES_CHECKED:]),
            banned=(*self._barred(), *self.remembering.not_the_answer) if self.last_try else (),  # not at all
            openings=[] if lead else self._openings_barred(),
        )
        missed = self._write(_after(primed, pieces) if primed else pieces)
        return missed if missed is not None else self._finish()

    def _openings_barred(self) -> list[str]:
        """How the reply may not open: with the first two words of one of her last few replies (a stock
        opener); with the first word of a long sentence of the user's (with openers barred, a small model
        asked the same things again and again starts saying them back: "Drop the two…" → "Drop them…"); nor,
        asked about the user themselves, with "My" or "I" (a small model mirrors the question's pronoun and
        answers "What is my name?" with "My name is…")."""
        recent = [opening_of(reply) for reply in self.earlier[-OPENINGS_BARRED_FROM_LAST:]]
        echo = [sentence.split()[0].strip(",.!?;:") for sentence in sentences_of([self.user_text])
                if len(sentence.split()) >= ECHO_MIN_WORDS]
        mirror = OPENINGS_BARRED_FOR_QUESTIONS_ABOUT_THEM if asks_about_themselves(self.user_text) else ()
        return [*recent, *echo, *mirror]

    def _barred(self) -> tuple[str, ...]:
        """What the last try may not write at all: the persona's banned phrases, the opening sentence of each
        of her earlier replies, and a long sentence of the user's (else asked the same thing over and over,
        a small model gives the same answer, or the question back, three times in a row)."""
        openings = [sentences_of([reply])[0] for reply in self.earlier[-EARLIER_REPLIES_CHECKED:]
                    if len(reply.split()) >= 2]  # not "Sure!"
        echoes = [s for s in sentences_of([self.user_text]) if len(s.split()) >= ECHO_MIN_WORDS]
        return (*self.persona.banned, *self.claims,
                *(s.strip().rstrip(".!?,;:") for s in [*openings, *echoes] if s.strip()))

    def _write(self, pieces: Iterator[str]) -> Outcome | None:
        """Turn the pieces into clauses and say them. An outcome when the attempt missed; None when the reply
        ran out, reached its length, or missed on the last try (what was said stands)."""
        persona, splitter = self.persona, self.splitter
        for piece in pieces:
            if self.job.first_token_t is None:
                self.job.first_token_t = self.clock.now()
            ready = list(splitter.feed(piece))
            if self.held and not ready and not persona.might_break_character(self._text(self.held),
                                                                             splitter.pending, self.claims):
                ready = [""]  # the words written after it do not go on with a banned phrase: say it now
            for i, clause in enumerate(ready):
                clause = f"{self.held} {clause}".strip()
                following = " ".join([*ready[i + 1 :], splitter.pending])
                self.held = clause if persona.might_break_character(self._text(clause), following, self.claims) else ""
                if self.held:
                    continue
                if not self._emit(clause, voiced(clause)):
                    return self._after_miss()
                if self.sentences >= self.max_sentences:
                    return None
            # A banned phrase written before its clause is complete ("I'm sorry, but I can't …"): a miss now,
            # not at the clause's end, so a new attempt starts that many tokens sooner. Whole words only.
            written = " ".join([*self.spoken, self.held, splitter.pending])
            hit = persona.breaks_character(written[: written.rfind(" ") + 1], self.claims)
            if hit:
                self.job.guard_hits.append(hit)
                return self._after_miss()
        rest = " ".join([self.held, *splitter.flush()]).strip()
        if rest and not self._emit(rest, rest, last=True):
            return self._after_miss()
        return None

    def _finish(self) -> Outcome:
        job = self.job
        if not self.spoken and not self.last_try and not job.cancelled():
            job.drafted.clear()
            return Outcome.AGAIN
        remembered = self.remembering.words
        if remembered and not self.last_try and not job.cancelled() and not says_any(" ".join(self.spoken), remembered):
            # Asked what they told her, she answered without it ("Of course I remember!"): again, or on from
            # what was heard ("Of course I remember!" … "It's Amara.").
            job.guard_hits.append(f"forgets {' / '.join(remembered)}")
            missed = self._after_miss()
            if missed is not None:
                return missed
        for clause in self.whole:
            self.voice.say(job.reply_id, clause)
        job.reply_text = " ".join(self.spoken)
        return Outcome.DONE

    def _text(self, clause: str) -> str:
        """The reply so far with `clause` after it (phrases can span clauses)."""
        return " ".join([*self.spoken, clause])

    def _emit(self, clause: str, said: str, *, last: bool = False) -> bool:
        """Say `clause` (as `said`) unless it breaks character or copies an earlier reply; False on a miss."""
        job = self.job
        text = self._text(clause)
        hit = self.persona.breaks_character(text, self.claims) or self._claimed(text)
        if not hit and self.copies_checked:
            copied = repeats_earlier(text, self.earlier, whole=last) or says_back(text, self.user_text, whole=last)
            if copied:
                job.guard_hits.append(copied)
                if self._take_back():
                    return False
                self.copies_checked = False  # heard already (or the last try): a repeat beats a reply cut short
        if hit:
            job.guard_hits.append(hit)
            return False
        if job.first_clause_t is None:
            job.first_clause_t = self.clock.now()
        self.spoken.append(clause)
        job.drafted.append(clause)
        if job.naive:
            self.whole.append(said)
        else:
            self.voice.say(job.reply_id, said)
        self.sentences += sentence_count(clause)
        return True

    def _claimed(self, text: str) -> str:
        """What of the user's she says as hers ("i'm on a narrowboat"), or ""."""
        return next((said for word in self.not_hers if (said := claimed(text, word))), "")

    def _take_back(self) -> bool:
        """After a miss: unsay the reply so far, if nobody can have heard it, so it is written again."""
        job = self.job
        if self.last_try or (self.spoken and not (job.naive or self.voice.retract(job.reply_id))):
            return False
        if self.spoken:
            log.info("reply %d: took back %r (%s)", job.reply_id, " ".join(self.spoken), job.guard_hits[-1])
        self.spoken.clear()
        job.drafted.clear()
        return True

    def _after_miss(self) -> Outcome | None:
        """What a miss leads to: AGAIN (nobody heard it), GO_ON (carry on from what was heard), or None on
        the last attempt: the guard gives up, the reply is cut where the miss began (what was said stands)."""
        if self.last_try:
            self.job.guard_cut = True
            log.info("reply %d missed on its last attempt (%s); cut after %r", self.job.reply_id,
                     self.job.guard_hits[-1], " ".join(self.spoken))
            return None
        if not self.spoken or self._take_back():
            log.info("reply %d missed (%s); writing it again", self.job.reply_id, self.job.guard_hits[-1])
            return Outcome.AGAIN
        self.heard[:] = self.spoken
        return Outcome.GO_ON


def _after(lead: str, pieces: Iterator[str]) -> Iterator[str]:
    """The reply's pieces with `lead` (written into the prompt for the model to go on from) in front."""
    first = True
    for piece in pieces:
        yield lead + piece if first else piece
        first = False
