"""The thinking worker: transcription and the LLM, one job at a time on one thread (they share the cores).

Jobs:
- `PartialJob`: while the user talks, transcribe what was heard so far and evaluate those words (all but
  the last, which may still change) in llama.cpp: read while they talk;
- `ReplyJob`: transcribe the turn (with word timestamps), then stream the reply: tokens → clauses → the
  guard → the voice worker. Speculative jobs start at the first pause and are cancelled if the user
  goes on; nothing of theirs is spoken unless the turn is committed.
- `WarmJob`: after a reply, evaluate persona + history so the next turn starts from a warm cache.
Results go back to the conversation through `events` (a queue), never by calling into it.
"""

from __future__ import annotations

import logging
import queue
import re
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from voiceos.clock import SessionClock
from voiceos.config import SAMPLE_RATE
from voiceos.ledger import WorkLog
from voiceos.llm import REPLY_BATCH, Cancelled, GenerationStats, LocalLlm, PrefillResult
from voiceos.memory import Conversation
from voiceos.splitter import ClauseSplitter, voiced
from voiceos.stt import Transcriber, Transcript, Word, normalise
from voiceos.voice import VoiceWorker

log = logging.getLogger(__name__)

_SENTENCES = re.compile(r"(?<=[.!?])\s+")
ATTEMPTS = 3  # a reply that misses (out of character, a copy) is written again, this many times in all
_DETAIL = re.compile(r"\b(explain|tell me (more|about)|in detail|describe|story|how does|why does|walk me)\b", re.I)


def align_words(text: str, words: list[Word]) -> list[Word]:
    """Words with timestamps from a second pass, kept only as far as they agree with the first."""
    wanted = normalise(text).split()
    out = []
    for w, expected in zip(words, wanted):
        if normalise(w.word) != expected:
            break
        out.append(w)
    return out if len(out) >= len(wanted) - 1 else words


def repeats_earlier(text: str, earlier: list[str], *, whole: bool) -> str:
    """Small models copy their own earlier replies from the history ("I'm glad you're feeling this way."
    turn after turn). A miss: the same whole reply (`whole`), a finished sentence of 3+ words said in one of
    the `earlier` replies, or a start of 4+ words that one of them started with. The reason, or ""."""
    norm = normalise(text)
    earlier_norm = [normalise(r) for r in earlier]
    if whole and norm in earlier_norm:
        return "repeats an earlier reply"
    if len(norm.split()) >= 4 and any(e.startswith(norm) for e in earlier_norm):
        return "starts like an earlier reply"
    said_before = {normalise(x) for r in earlier for x in _SENTENCES.split(r)}
    finished = _SENTENCES.split(text.strip())
    if not re.search(r"[.!?][\"')]*$", text.strip()):
        finished = finished[:-1]  # the last sentence is still being written
    for sentence in finished:
        words = normalise(sentence)
        if len(words.split()) >= 3 and words in said_before:
            return "repeats an earlier sentence"
    return ""


def steady_words(read: list[str], heard: list[str]) -> list[str]:
    """The words `heard` in a new pass, written as an earlier pass wrote them where the two agree.

    Whisper re-punctuates and re-cases the same audio from pass to pass ("At that high level the" →
    "At that high level, the air is pure."), and llama.cpp reuses only an identical token prefix: keeping
    the earlier spelling of the agreeing words keeps those words read. The last agreeing word takes the
    new spelling (its punctuation may have changed: "you." → "you,"), as do all the words after it."""
    same = 0
    for old, new in zip(read, heard):
        if normalise(old) != normalise(new) or not normalise(new):
            break
        same += 1
    same = min(same, len(heard)) - 1
    return read[:same] + heard[same:] if same > 0 else list(heard)


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
    speculative: bool = True
    naive: bool = False  # the plain cascade: full-window STT, whole reply before any speech
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
    stats: GenerationStats = field(default_factory=GenerationStats)
    error: str = ""
    finished: threading.Event = field(default_factory=threading.Event)


class Responder:
    def __init__(self, transcriber: Transcriber, llm: LocalLlm, conversation: Conversation,
                 voice: VoiceWorker, clock: SessionClock, work: WorkLog) -> None:
        self.stt = transcriber
        self.llm = llm
        self.conversation = conversation
        self.conversation_lock = threading.Lock()
        self.voice = voice
        self.clock = clock
        self.work = work
        self.events: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._jobs: queue.Queue[Job | None] = queue.Queue()
        self._busy = threading.Event()
        self._current: Job | None = None
        self._read_words: tuple[int, list[str]] = (-1, [])  # (utterance, its words now in the LLM's cache)
        self._thread = threading.Thread(target=self._run, name="responder", daemon=True)

    def start(self) -> Responder:
        self._thread.start()
        return self

    def idle(self) -> bool:
        return not self._busy.is_set() and self._jobs.empty()

    def submit(self, job: Job) -> None:
        current = self._current
        if isinstance(current, WarmJob) or (isinstance(current, PartialJob) and isinstance(job, ReplyJob)):
            current.cancel.set()  # background reading gives way to a reply (what it read stays cached)
        self._jobs.put(job)

    def close(self) -> None:
        if self._current is not None:
            self._current.cancel.set()
        self._jobs.put(None)
        self._thread.join(timeout=5.0)

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            if job.cancelled():
                if isinstance(job, ReplyJob):
                    job.finished.set()
                continue
            self._busy.set()
            self._current = job
            started = self.clock.now()
            try:
                if isinstance(job, PartialJob):
                    self._partial(job)
                elif isinstance(job, ReplyJob):
                    self._reply(job)
                elif isinstance(job, WarmJob):
                    self._warm(job)
            except Cancelled:
                log.debug("job for utterance %d cancelled", job.utt_id)
            except Exception as exc:  # keep the worker alive; the conversation logs the error
                log.exception("responder job failed")
                if isinstance(job, ReplyJob):
                    job.error = f"{type(exc).__name__}: {exc}"
                self.events.put(("error", (job, exc)))
            finally:
                kind = type(job).__name__.replace("Job", "").lower()
                if not isinstance(job, WarmJob):
                    self.work.add(started, self.clock.now(), kind)
                self._current = None
                self._busy.clear()
                if isinstance(job, ReplyJob):
                    job.done_t = self.clock.now()
                    job.finished.set()
                    self.events.put(("reply_done", job))

    # --- jobs -------------------------------------------------------------------------------------

    def _partial(self, job: PartialJob) -> None:
        """Read the words heard so far into the LLM's cache, all but the last (it may be cut off mid-word or
        still change). A wrong guess costs nothing but idle time: the reply's prompt is built from the final
        transcript, and llama.cpp reuses only the tokens that match."""
        transcript = self._transcribe_after_heard(job)
        words = self._steady(job.utt_id, transcript.text)[:-1]
        if job.cancelled() or not words:
            return
        with self.conversation_lock:
            prompt = self._fitted_prompt(" ".join(words), final=False)
        read = self.llm.prefill(prompt, job.cancelled)
        self._read_words = (job.utt_id, words)
        log.debug("partial %d: read %r (%d new tokens)", job.utt_id, " ".join(words), read.read)

    def _steady(self, utt_id: int, text: str) -> list[str]:
        read_utt, read = self._read_words
        return steady_words(read if read_utt == utt_id else [], text.split())

    def _fitted_prompt(self, text: str, *, final: bool) -> str:
        """The prompt for `text`, leaving room for a whole reply in the context: the oldest exchanges go
        first, and a turn too long on its own keeps its last words. Call with `conversation_lock` held."""
        room = self.llm.n_ctx - self.llm.config.max_reply_tokens - 8
        prompt = self.conversation.prompt(text, final=final)
        while len(self.llm.tokenize(prompt)) > room and self.conversation.exchanges:
            self.conversation.drop_oldest()
            prompt = self.conversation.prompt(text, final=final)
        words = text.split()
        while len(self.llm.tokenize(prompt)) > room and len(words) > 1:
            words = words[max(1, len(words) // 4) :]
            prompt = self.conversation.prompt(" ".join(words), final=final)
        return prompt

    def _warm(self, job: WarmJob) -> None:
        with self.conversation_lock:
            prefix = self.conversation.prefix()
        self.llm.prefill(prefix, job.cancelled)

    def _reply(self, job: ReplyJob) -> None:
        job.started_t = self.clock.now()
        # Words are not needed to answer; their timestamps cost as much again, so they are found after
        # the reply is written (below), while Samantha is already speaking.
        transcript = self._transcribe_turn(job)
        job.transcript = transcript
        job.stt_done_t = self.clock.now()
        log.debug("reply %d: heard %r in %.0f ms", job.reply_id, transcript.text, transcript.stt_ms)
        if transcript.is_empty or job.cancelled():
            self.events.put(("transcript", job))
            return
        words = self._steady(job.utt_id, transcript.text) if job.speculative else transcript.text.split()
        job.prompt_text = " ".join(words)
        with self.conversation_lock:
            prompt = self._fitted_prompt(job.prompt_text, final=True)
            # The words without Whisper's closing punctuation: read now (the reply needs them anyway) and
            # ask the LLM whether the turn sounds finished.
            open_prompt = self._fitted_prompt(job.prompt_text.rstrip(" .?!,;:"), final=False)
        read: PrefillResult | None = None
        if job.speculative and not job.naive:
            # the whole prompt in one pass (it is needed for the reply anyway), with P(end) taken at the
            # last of the user's words on the way
            read = self.llm.prefill(prompt, job.cancelled, probe=open_prompt, batch=REPLY_BATCH)
            if read.end_probability is None:  # the words do not tokenize as a prefix of the prompt
                read = self.llm.prefill(open_prompt, job.cancelled, probe=open_prompt, batch=REPLY_BATCH)
            job.end_probability = read.end_probability
            job.read_done_t = self.clock.now()
            self._read_words = (job.utt_id, words)
            log.debug("reply %d: read %d tokens (%d cached) by %.0f ms, P(end) %s", job.reply_id, read.read,
                      read.reused, (self.clock.now() - job.started_t) * 1000, job.end_probability)
        self.events.put(("transcript", job))
        max_sentences = 6 if _DETAIL.search(transcript.text) else 2
        job.llm_started_t = self.clock.now()
        heard: list[str] = []  # clauses already gone to the speaker, which a new attempt carries on from
        for attempt in range(ATTEMPTS):
            outcome = self._speak_reply(job, prompt, max_sentences, attempt, read if attempt == 0 else None, heard)
            if outcome == "done" or job.cancelled():
                break
        self.voice.end(job.reply_id)
        if not transcript.words and not job.cancelled():
            timed = self.stt.transcribe(job.audio, word_timestamps=True, full_window=job.naive)
            transcript.words = align_words(transcript.text, timed.words)

    def _transcribe_turn(self, job: ReplyJob) -> Transcript:
        if job.naive:
            return self.stt.transcribe(job.audio, word_timestamps=False, full_window=True, cancelled=job.cancelled)
        return self._transcribe_after_heard(job)

    def _transcribe_after_heard(self, job: HearingJob) -> Transcript:
        """The job's audio transcribed without timestamps; when its first `heard_samples` were transcribed for
        good at an earlier pause (as `heard_text`), only the rest is."""
        if not job.heard_samples:
            return self.stt.transcribe(job.audio, word_timestamps=False, cancelled=job.cancelled)
        rest = self.stt.transcribe(job.audio[job.heard_samples :], word_timestamps=False, cancelled=job.cancelled)
        return Transcript(f"{job.heard_text} {rest.text}".strip(), [], len(job.audio) / SAMPLE_RATE, rest.stt_ms,
                          rest.window_frames, confidence=rest.confidence,
                          earlier_s=job.heard_samples / SAMPLE_RATE)

    def _speak_reply(self, job: ReplyJob, prompt: str, max_sentences: int, attempt: int,
                     read_before: PrefillResult | None, heard: list[str]) -> str:
        """Stream one attempt. "done"; "again" when it missed (out of character, a copy) before anything
        could be heard: nothing of it is spoken; "go on" when it broke character after some of it went to
        the speaker: `heard` then holds that much, and the next attempt writes the rest from there.
        `read_before`: the prompt reading already done for this reply (counted in its stats)."""
        persona = self.conversation.persona
        if not heard:
            job.first_token_t = job.first_clause_t = None  # the timings of the attempt that is spoken
        # Once speech starts, later clauses are cut early whenever what is queued is about to run out.
        splitter = ClauseSplitter(ahead_s=None if job.naive else lambda: self.voice.ahead_s(job.reply_id))
        splitter.emitted = len(heard)  # carrying on: no short first clause again
        spoken: list[str] = list(heard)
        sentences = len(re.findall(r"[.!?]+(\s|$)", " ".join(heard) + " "))
        stats = GenerationStats()
        job.stats = stats
        if heard:
            prompt += self.llm.fmt.reply_lead + " ".join(heard)
        earlier = [e.reply for e in self.conversation.exchanges[-4:]]  # what a reply must not copy
        last_try = attempt == ATTEMPTS - 1
        pieces = self.llm.stream(
            prompt, job.cancelled, seed=self.llm.config.seed + attempt,
            temperature=self.llm.config.temperature + 0.15 * attempt, stats=stats,
            read_before=read_before, avoid=[x for reply in earlier for x in _SENTENCES.split(reply)],
            banned=persona.banned if last_try else (),  # the last try may not write them at all
        )
        whole: list[str] = []  # naive mode: speak only when the whole reply is written

        copies_checked = True  # until a copy was let through (it could not be taken back any more)

        def emit(clause: str, said: str, *, last: bool = False) -> bool:
            nonlocal sentences, copies_checked
            text = " ".join([*spoken, clause])  # phrases can span clauses
            hit = persona.breaks_character(text)
            if not hit and copies_checked:
                copied = repeats_earlier(text, earlier, whole=last)
                if copied:
                    job.guard_hits.append(copied)
                    if take_back():
                        return False
                    copies_checked = False  # heard already (or the last try): a repeat beats a reply cut short
            if hit:
                job.guard_hits.append(hit)
                return False
            if job.first_clause_t is None:
                job.first_clause_t = self.clock.now()
            spoken.append(clause)
            job.drafted.append(clause)
            if job.naive:
                whole.append(said)
            else:
                self.voice.say(job.reply_id, said)
            sentences += len(re.findall(r"[.!?]+(\s|$)", clause + " "))
            return True

        def take_back() -> bool:
            """After a miss: unsay the reply so far, if nobody can have heard it, so it is written again."""
            if last_try or (spoken and not (job.naive or self.voice.retract(job.reply_id))):
                return False
            if spoken:
                log.info("reply %d: took back %r (%s)", job.reply_id, " ".join(spoken), job.guard_hits[-1])
            spoken.clear()
            job.drafted.clear()
            return True

        def after_miss() -> str | None:
            """What a miss leads to: "again" (nobody heard it: write it anew), "go on" (carry on from what was
            heard), or None on the last attempt (what was said stands)."""
            if not spoken or take_back():
                log.info("reply %d missed (%s); writing it again", job.reply_id, job.guard_hits[-1])
                return "again"
            if not last_try:
                heard[:] = spoken
                return "go on"
            return None

        stopped_early = False
        held = ""  # words that could still grow into a banned phrase: said once what follows clears them
        for piece in pieces:
            if job.first_token_t is None:
                job.first_token_t = self.clock.now()
            ready = list(splitter.feed(piece))
            if held and not ready and not persona.might_break_character(" ".join([*spoken, held]),
                                                                        splitter.pending):
                ready = [""]  # the words written after it do not go on with a banned phrase: say it now
            for i, clause in enumerate(ready):
                clause = f"{held} {clause}".strip()
                following = " ".join([*ready[i + 1 :], splitter.pending])
                held = clause if persona.might_break_character(" ".join([*spoken, clause]), following) else ""
                if held:
                    continue
                if not emit(clause, voiced(clause)):
                    outcome = after_miss()
                    if outcome:
                        return outcome
                    stopped_early = True
                    break
                if sentences >= max_sentences:
                    stopped_early = True
                    break
            if stopped_early:
                break
            # A banned phrase written before its clause is complete ("I'm sorry, but I can't …"): a miss now,
            # not at the clause's end, so a new attempt starts that many tokens sooner. Whole words only.
            written = " ".join([*spoken, held, splitter.pending])
            hit = persona.breaks_character(written[: written.rfind(" ") + 1])
            if hit:
                job.guard_hits.append(hit)
                outcome = after_miss()
                if outcome:
                    return outcome
                stopped_early = True
                break
        if not stopped_early:
            rest = " ".join([held, *splitter.flush()]).strip()
            if rest and not emit(rest, rest, last=True):
                outcome = after_miss()
                if outcome:
                    return outcome
        if not spoken and not last_try and not job.cancelled():
            job.drafted.clear()
            return "again"
        for clause in whole:
            self.voice.say(job.reply_id, clause)
        job.reply_text = " ".join(spoken)
        return "done"
