"""The voice worker: clauses → speech audio → the speaker, in order, gapless.

Owns the pyttsx3 engine (one thread). A reply may be speculative: its audio is synthesised ahead and held
until the turn is confirmed (`commit`), or dropped unheard (`discard`). Nothing of a discarded reply is
ever played. A reply whose words turn out wrong (out of character) can be taken back (`retract`) as long
as none of its audio has gone to the speaker.
"""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from voiceos.clock import SessionClock
from voiceos.config import SAMPLE_RATE, TtsConfig
from voiceos.tts import SpeechSynthesizer

log = logging.getLogger(__name__)


class Playback(Protocol):
    def play(self, reply_id: int, samples: np.ndarray, text: str = "") -> None: ...

    def played_samples(self, reply_id: int) -> int: ...

    def stop(self) -> None: ...


@dataclass
class VoicedReply:
    """What the voice worker knows about one reply (times on the session clock)."""

    first_audio_t: float | None = None  # first clause synthesised
    tts_ms: list[float] = field(default_factory=list)
    held: list[tuple[np.ndarray, str]] = field(default_factory=list)
    audio: list[np.ndarray] = field(default_factory=list)  # everything synthesised, for --out
    committed: bool = False
    discarded: bool = False
    whole: bool = False  # the plain cascade: play only once every clause is synthesised
    finished: bool = False  # the last clause has been synthesised
    clauses: list[str] = field(default_factory=list)
    handed: bool = False  # some of its audio went to the speaker (it may be audible now)
    attempt: int = 0  # bumped by `retract`: queued clauses of an earlier attempt are skipped
    unsynthesised_words: int = 0  # words of clauses said but not yet synthesised


class VoiceWorker:
    def __init__(self, config: TtsConfig, clock: SessionClock, playback: Playback) -> None:
        self.config = config
        self.clock = clock
        self.playback = playback
        self.replies: dict[int, VoicedReply] = {}
        self._queue: queue.Queue[tuple[int, str | None, int]] = queue.Queue()
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="voice", daemon=True)

    def start(self) -> VoiceWorker:
        self._thread.start()
        self._ready.wait(timeout=30)
        if self.error:
            raise self.error
        return self

    def reply(self, reply_id: int) -> VoicedReply:
        with self._lock:
            return self.replies.setdefault(reply_id, VoicedReply())

    def say(self, reply_id: int, clause: str) -> None:
        voiced = self.reply(reply_id)
        with self._lock:
            voiced.clauses.append(clause)
            voiced.unsynthesised_words += len(clause.split())
        self._queue.put((reply_id, clause, voiced.attempt))

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

    def end(self, reply_id: int) -> None:
        self._queue.put((reply_id, None, self.reply(reply_id).attempt))

    def retract(self, reply_id: int) -> bool:
        """Take back what this reply has said so far, if none of it has reached the speaker (the reply is
        about to be written again). False when it is too late: some of it may already be heard."""
        with self._lock:
            voiced = self.replies.setdefault(reply_id, VoicedReply())
            if voiced.handed:
                return False
            voiced.attempt += 1
            voiced.held, voiced.audio, voiced.clauses, voiced.tts_ms = [], [], [], []
            voiced.unsynthesised_words = 0
            voiced.first_audio_t = None
            return True

    def play_whole(self, reply_id: int) -> None:
        """Hold this reply's audio until all of it is synthesised (the naive cascade)."""
        self.reply(reply_id).whole = True

    def commit(self, reply_id: int) -> None:
        """The turn is confirmed: play what is held and everything that follows."""
        with self._lock:
            voiced = self.replies.setdefault(reply_id, VoicedReply())
            if voiced.discarded or voiced.committed:
                return
            voiced.committed = True
        self._release(voiced, reply_id)

    def _release(self, voiced: VoicedReply, reply_id: int) -> None:
        with self._lock:
            if not voiced.committed or voiced.discarded or (voiced.whole and not voiced.finished):
                return
            held, voiced.held = voiced.held, []
            voiced.handed = voiced.handed or bool(held)
        for samples, text in held:
            self.playback.play(reply_id, samples, text)

    def discard(self, reply_id: int) -> None:
        with self._lock:
            voiced = self.replies.setdefault(reply_id, VoicedReply())
            voiced.discarded = True
            voiced.held = []

    def _run(self) -> None:
        try:
            synth = SpeechSynthesizer(self.config)
        except BaseException as exc:  # reported by start()
            self.error = exc
            self._ready.set()
            return
        self._ready.set()
        while True:
            reply_id, clause, attempt = self._queue.get()
            if reply_id < 0:
                break
            voiced = self.reply(reply_id)
            if attempt != voiced.attempt:
                continue  # retracted
            if clause is None:
                voiced.finished = True
                self._release(voiced, reply_id)
                continue
            if voiced.discarded:
                continue
            try:
                chunk = synth.synthesize(clause)
            except Exception as exc:
                log.error("speech synthesis failed: %s", exc)
                with self._lock:
                    if attempt == voiced.attempt:
                        voiced.unsynthesised_words = max(0, voiced.unsynthesised_words - len(clause.split()))
                continue
            with self._lock:
                if attempt != voiced.attempt:
                    continue  # retracted while it was being synthesised
                voiced.unsynthesised_words = max(0, voiced.unsynthesised_words - len(clause.split()))
                voiced.tts_ms.append(synth.last_ms)
                if voiced.first_audio_t is None:
                    voiced.first_audio_t = self.clock.now()
                voiced.audio.append(chunk.samples)
                if voiced.discarded:
                    continue
                if not voiced.committed or voiced.whole:
                    voiced.held.append((chunk.samples, clause))
                    continue
                voiced.handed = True
            self.playback.play(reply_id, chunk.samples, clause)
        synth.close()

    def close(self) -> None:
        self._queue.put((-1, None, 0))
        self._thread.join(timeout=2.0)
