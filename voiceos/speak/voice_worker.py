"""The voice worker: clauses → speech audio → the speaker, in order, gapless.

Owns the synthesizer (one thread). A reply may be speculative: its audio is synthesised ahead and held
until the turn is confirmed (`commit`), or dropped unheard (`discard`). Nothing of a discarded reply is
ever played. A reply whose words turn out wrong (out of character) can be taken back (`retract`) as long
as none of its audio has gone to the speaker.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

import numpy as np

from voiceos.audio.interfaces import Playback
from voiceos.config import SAMPLE_RATE, TtsConfig
from voiceos.measure.clock import SessionClock
from voiceos.speak.tts import SpeechSynthesizer, Synthesizer

log = logging.getLogger(__name__)


class ReplyState(Enum):
    DRAFTING = "drafting"  # not confirmed yet: its audio is synthesised and held
    HOLDING_WHOLE = "holding whole"  # confirmed, played once every clause is synthesised (the plain cascade)
    SPEAKING = "speaking"  # confirmed: its audio goes to the speaker as soon as it is synthesised
    DISCARDED = "discarded"  # dropped unheard: nothing more of it is ever played


@dataclass
class VoicedReply:
    """What the voice worker knows about one reply (times on the session clock)."""

    state: ReplyState = ReplyState.DRAFTING
    finished: bool = False  # the last clause has been synthesised
    first_audio_t: float | None = None  # first clause synthesised
    tts_ms: list[float] = field(default_factory=list)
    held: list[tuple[np.ndarray, str]] = field(default_factory=list)  # synthesised, not yet handed over
    audio: list[np.ndarray] = field(default_factory=list)  # everything synthesised, for --out
    clauses: list[str] = field(default_factory=list)
    handed_samples: int = 0  # audio given to the speaker (it may be audible now)
    attempt: int = 0  # bumped by `retract`: queued clauses of an earlier attempt are skipped
    unsynthesised_words: int = 0  # words of clauses said but not yet synthesised

    @property
    def live(self) -> bool:
        """Not discarded: its audio may still be heard."""
        return self.state is not ReplyState.DISCARDED


@dataclass(frozen=True)
class _Clause:
    reply_id: int
    text: str | None  # None: the reply's last clause has been said
    attempt: int


class VoiceWorker:
    def __init__(self, config: TtsConfig, clock: SessionClock, playback: Playback,
                 synthesizer: Callable[[], Synthesizer] | None = None) -> None:
        self.config = config
        self.clock = clock
        self.playback = playback
        self._make_synthesizer = synthesizer or (lambda: SpeechSynthesizer(config))
        self.replies: dict[int, VoicedReply] = {}
        self._queue: queue.Queue[_Clause | None] = queue.Queue()
        self._lock = threading.Lock()
        self._pending = 0  # clauses said and not yet handled by the worker thread
        self._ready = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="voice", daemon=True)

    def start(self) -> VoiceWorker:
        self._thread.start()
        self._ready.wait(timeout=30)
        if self.error:
            raise self.error
        return self

    def idle(self) -> bool:
        """Every clause said so far has been synthesised (or skipped)."""
        with self._lock:
            return self._pending == 0

    def reply(self, reply_id: int) -> VoicedReply:
        with self._lock:
            return self.replies.setdefault(reply_id, VoicedReply())

    def forget_before(self, reply_id: int) -> None:
        """Let go of the audio of replies older than `reply_id` (their turns are logged and written)."""
        with self._lock:
            for old in [r for r in self.replies if r < reply_id]:
                del self.replies[old]

    def say(self, reply_id: int, clause: str) -> None:
        voiced = self.reply(reply_id)
        with self._lock:
            voiced.clauses.append(clause)
            voiced.unsynthesised_words += len(clause.split())
        self._put(_Clause(reply_id, clause, voiced.attempt))

    def end(self, reply_id: int) -> None:
        """The reply's last clause has been said."""
        self._put(_Clause(reply_id, None, self.reply(reply_id).attempt))

    def _put(self, item: _Clause) -> None:
        with self._lock:
            self._pending += 1
        self._queue.put(item)

    def ahead_s(self, reply_id: int) -> float:
        """Seconds of this reply's speech not yet heard: its audio not yet played (held, or queued at the
        speaker) and, at the speaking rate, the words still waiting to be synthesised."""
        with self._lock:
            voiced = self.replies.get(reply_id)
            if voiced is None:
                return 0.0
            synthesised = sum(len(a) for a in voiced.audio)
            waiting = voiced.unsynthesised_words
        unplayed = max(0, synthesised - self.playback.played_samples(reply_id)) / SAMPLE_RATE
        return unplayed + waiting * 60.0 / self.config.rate_wpm

    def retract(self, reply_id: int) -> bool:
        """Take back what this reply has said so far, if none of it has reached the speaker (the reply is
        about to be written again). False when it is too late: some of it may already be heard."""
        with self._lock:
            voiced = self.replies.setdefault(reply_id, VoicedReply())
            if voiced.handed_samples:
                return False
            voiced.attempt += 1
            voiced.held, voiced.audio, voiced.clauses, voiced.tts_ms = [], [], [], []
            voiced.unsynthesised_words = 0
            voiced.first_audio_t = None
            return True

    def commit(self, reply_id: int, *, whole: bool = False) -> None:
        """The turn is confirmed: play what is held and everything that follows — or, with `whole` (the
        plain cascade), all of it once the last clause is synthesised."""
        with self._lock:
            voiced = self.replies.setdefault(reply_id, VoicedReply())
            if voiced.state is not ReplyState.DRAFTING:
                return
            voiced.state = ReplyState.HOLDING_WHOLE if whole else ReplyState.SPEAKING
        self._release(voiced, reply_id)

    def discard(self, reply_id: int) -> None:
        with self._lock:
            voiced = self.replies.setdefault(reply_id, VoicedReply())
            voiced.state = ReplyState.DISCARDED
            voiced.held = []

    def _release(self, voiced: VoicedReply, reply_id: int) -> None:
        """Hand what is held to the speaker, if the reply may be heard now."""
        with self._lock:
            if voiced.state is ReplyState.HOLDING_WHOLE and voiced.finished:
                voiced.state = ReplyState.SPEAKING
            if voiced.state is not ReplyState.SPEAKING:
                return
            held, voiced.held = voiced.held, []
            voiced.handed_samples += sum(len(samples) for samples, _ in held)
        for samples, text in held:
            self.playback.play(reply_id, samples, text)

    def _run(self) -> None:
        try:
            synth = self._make_synthesizer()
        except BaseException as exc:  # reported by start()
            self.error = exc
            self._ready.set()
            return
        self._ready.set()
        while (item := self._queue.get()) is not None:
            try:
                self._voice(synth, item)
            finally:
                with self._lock:
                    self._pending -= 1
        synth.close()

    def _voice(self, synth: Synthesizer, item: _Clause) -> None:
        voiced = self.reply(item.reply_id)
        if item.attempt != voiced.attempt:
            return  # retracted
        if item.text is None:
            voiced.finished = True
            self._release(voiced, item.reply_id)
            return
        if not voiced.live:
            return
        words = len(item.text.split())
        try:
            chunk = synth.synthesize(item.text)
        except Exception as exc:
            log.error("speech synthesis failed: %s", exc)
            with self._lock:
                if item.attempt == voiced.attempt:
                    voiced.unsynthesised_words = max(0, voiced.unsynthesised_words - words)
            return
        with self._lock:
            if item.attempt != voiced.attempt:
                return  # retracted while it was being synthesised
            voiced.unsynthesised_words = max(0, voiced.unsynthesised_words - words)
            voiced.tts_ms.append(synth.last_ms)
            if voiced.first_audio_t is None:
                voiced.first_audio_t = self.clock.now()
            voiced.audio.append(chunk.samples)
            if not voiced.live:  # discarded while it was being synthesised
                return
            if voiced.state is not ReplyState.SPEAKING:
                voiced.held.append((chunk.samples, item.text))
                return
            voiced.handed_samples += len(chunk.samples)
        self.playback.play(item.reply_id, chunk.samples, item.text)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=2.0)
