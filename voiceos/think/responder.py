"""The thinking worker: transcription and the LLM, one job at a time on one thread (they share the cores).

The voice loop submits jobs (`think.jobs`); results come back through `events` (a queue of
`think.events`), never by calling into the loop. Background reading (a partial transcript, warming the
cache) gives way to a reply as soon as one is submitted.
"""

from __future__ import annotations

import logging
import queue
import threading

from voiceos.errors import Cancelled, LlmServerError
from voiceos.listen.transcript import SpeechRecognizer
from voiceos.llm.model import REPLY_BATCH, LanguageModel, PrefillResult
from voiceos.measure.clock import SessionClock
from voiceos.measure.ledger import WorkLog
from voiceos.think.conversation import Conversation
from voiceos.think.events import JobFailed, ResponderEvent, TranscriptReady, WordsHeard
from voiceos.think.hearing import Hearing
from voiceos.think.jobs import Job, PartialJob, ReplyJob, WarmJob
from voiceos.think.prompt_fitting import PromptFitter
from voiceos.think.reply_writer import ReplyVoice, ReplyWriter
from voiceos.think.user_profile import Fact

log = logging.getLogger(__name__)

STOP_TIMEOUT_S = 60.0  # a called-off job ends within one batch or token; this long means a stage hung


class Responder:
    def __init__(self, transcriber: SpeechRecognizer, llm: LanguageModel, conversation: Conversation,
                 voice: ReplyVoice, clock: SessionClock, work: WorkLog) -> None:
        self.llm = llm
        self.conversation = conversation
        self.clock = clock
        self.work = work
        self.hearing = Hearing(transcriber)
        self.prompts = PromptFitter(llm, conversation)
        self.writer = ReplyWriter(llm, conversation, voice, clock)
        self.events: queue.Queue[ResponderEvent] = queue.Queue()
        self._jobs: queue.Queue[Job | None] = queue.Queue()
        self._lock = threading.Lock()
        self._pending = 0  # jobs submitted and not yet done
        self._current: Job | None = None
        self._thread = threading.Thread(target=self._run, name="responder", daemon=True)

    def start(self) -> Responder:
        self._thread.start()
        return self

    def idle(self) -> bool:
        """No job is waiting or running."""
        with self._lock:
            return self._pending == 0

    def submit(self, job: Job) -> None:
        current = self._current
        if isinstance(current, WarmJob) or (isinstance(current, PartialJob) and isinstance(job, ReplyJob)):
            current.cancel.set()  # background reading gives way to a reply (what it read stays cached)
        with self._lock:
            self._pending += 1
        self._jobs.put(job)

    def remember(self, user: str, spoken: str, interrupted: bool) -> list[Fact]:
        """A finished exchange joins the conversation the next prompts are built from; the facts about the
        user it told that are new (kept in their profile)."""
        return self.prompts.remember(user, spoken, interrupted)

    def close(self) -> None:
        """Stop the worker: its job is called off (every stage stops at its next batch or token) and the thread
        is waited for. It must be gone before another worker uses the same models: two threads in one
        llama.cpp context crash it (an evaluation's next conversation did, on a starved CPU, after 5 s)."""
        if self._current is not None:
            self._current.cancel.set()
        self._jobs.put(None)
        self._thread.join(timeout=STOP_TIMEOUT_S)
        if not self.stopped():
            log.error("the thinking worker did not stop within %.0f s", STOP_TIMEOUT_S)

    def stopped(self) -> bool:
        return not self._thread.is_alive()

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            try:
                self._do(job)
            finally:
                with self._lock:
                    self._pending -= 1

    def _do(self, job: Job) -> None:
        if job.cancelled():
            if isinstance(job, ReplyJob):
                job.finished.set()
            return
        self._current = job
        started = self.clock.now()
        try:
            match job:
                case PartialJob():
                    self.read_partial(job)
                case ReplyJob():
                    self.reply(job)
                case WarmJob():
                    self.warm(job)
        except Cancelled:
            log.debug("job for utterance %d cancelled", job.utt_id)
        except LlmServerError as exc:  # reading ahead on a server that went away: one line, the loop logs it
            log.warning("%s", exc)
            self.events.put(JobFailed(job, str(exc)))
        except Exception as exc:  # keep the worker alive; the loop logs the error
            log.exception("responder job failed")
            message = f"{type(exc).__name__}: {exc}"
            if isinstance(job, ReplyJob):
                job.error = message
            self.events.put(JobFailed(job, message))
        finally:
            if not isinstance(job, WarmJob):
                self.work.add(started, self.clock.now(), type(job).__name__.removesuffix("Job").lower())
            self._current = None
            if isinstance(job, ReplyJob):
                job.done_t = self.clock.now()
                job.finished.set()

    def read_partial(self, job: PartialJob) -> None:
        """Read the words heard so far into the LLM's cache, all but the last (it may be cut off mid-word or
        still change). A wrong guess costs nothing but idle time: the reply's prompt is built from the final
        transcript, and llama.cpp reuses only the tokens that match."""
        transcript = self.hearing.after_heard(job)
        if not transcript.is_empty:
            self.events.put(WordsHeard(job.utt_id, transcript.text))
        words = self.prompts.steady(job.utt_id, transcript.text)[:-1]
        if job.cancelled() or not words:
            return
        read = self.llm.prefill(self.prompts.partial_prompt(words), job.cancelled)
        self.prompts.read_words = (job.utt_id, words)
        log.debug("partial %d: read %r (%d new tokens)", job.utt_id, " ".join(words), read.read)

    def warm(self, job: WarmJob) -> None:
        self.llm.prefill(self.prompts.prefix(), job.cancelled)

    def reply(self, job: ReplyJob) -> None:
        job.started_t = self.clock.now()
        # Words are not needed to answer; their timestamps cost as much again, so they are found after
        # the reply is written, while Samantha is already speaking.
        transcript = self.hearing.turn(job)
        job.transcript = transcript
        job.stt_done_t = self.clock.now()
        log.debug("reply %d: heard %r in %.0f ms", job.reply_id, transcript.text, transcript.stt_ms)
        if transcript.is_empty or job.cancelled():
            self.events.put(TranscriptReady(job))
            return
        words = self.prompts.steady(job.utt_id, transcript.text) if job.speculative else transcript.text.split()
        job.prompt_text = " ".join(words)
        told = False  # the loop has the transcript
        try:
            prompt, open_prompt = self.prompts.reply_prompts(job.prompt_text)
            # The prompt is read ahead of the reply only for P(end), which a served model cannot give.
            reads_ahead = job.speculative and not job.naive and self.llm.probes_end
            read = self._read_reply_prompt(job, words, prompt, open_prompt) if reads_ahead else None
            self.events.put(TranscriptReady(job))
            told = True
            self.writer.write(job, prompt, read)
        except LlmServerError as exc:  # the LLM server went away: she says so, and the session goes on
            if not told:
                self.events.put(TranscriptReady(job))
            log.warning("reply %d: %s", job.reply_id, exc)
            self.writer.apologise(job)
            self.events.put(JobFailed(job, str(exc)))
        self.hearing.add_word_times(job)

    def _read_reply_prompt(self, job: ReplyJob, words: list[str], prompt: str, open_prompt: str) -> PrefillResult:
        """Read the whole prompt in one pass (the reply needs it anyway), taking P(end) at the last of the
        user's words on the way."""
        read = self.llm.prefill(prompt, job.cancelled, probe=open_prompt, batch=REPLY_BATCH)
        if read.end_probability is None:  # the words do not tokenize as a prefix of the prompt
            read = self.llm.prefill(open_prompt, job.cancelled, probe=open_prompt, batch=REPLY_BATCH)
        job.end_probability = read.end_probability
        job.read_done_t = self.clock.now()
        self.prompts.read_words = (job.utt_id, words)
        log.debug("reply %d: read %d tokens (%d cached) by %.0f ms, P(end) %s", job.reply_id, read.read,
                  read.reused, (self.clock.now() - (job.started_t or 0.0)) * 1000, job.end_probability)
        return read
