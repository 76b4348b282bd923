"""What was heard: words with timings, a transcript, and the rules that clean and score Whisper's text.

`SpeechRecognizer` is the one interface the thinking worker needs from speech recognition; `Transcriber`
(faster-whisper) is the real one, `voiceos.testing.ScriptedTranscriber` a stand-in for tests of the loop.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Protocol

import numpy as np

FULL_WINDOW_FRAMES = 3000  # Whisper's encoder window: 30 s of 10 ms mel frames

# What Whisper says to silence and noise; dropped unless the audio clearly carried that much speech.
HALLUCINATIONS = {
    "", "you", "thank you", "thanks", "thank you very much", "thanks for watching",
    "thank you for watching", "bye", "okay", "oh", "so", "the", "i", "uh", "um", "hmm", "mm",
    "please subscribe", "subtitles by the amaraorg community", "music", "applause", "silence",
}


@dataclass(frozen=True)
class Word:
    """One recognised word; times in seconds, relative to the transcribed audio or on the session clock."""

    word: str
    start: float
    end: float
    prob: float

    def shifted(self, offset_s: float) -> Word:
        """The same word `offset_s` later (e.g. from audio-relative times onto the session clock)."""
        return replace(self, start=self.start + offset_s, end=self.end + offset_s)


@dataclass
class Transcript:
    """What was heard in one stretch of audio."""

    text: str
    words: list[Word] = field(default_factory=list)
    audio_s: float = 0.0  # seconds of audio transcribed
    stt_ms: float = 0.0  # wall time spent
    window_frames: int = FULL_WINDOW_FRAMES
    dropped_reason: str = ""  # non-empty when the text was judged a hallucination and dropped
    confidence: float = 1.0  # mean token probability (from the segments' average log-probability)
    earlier_s: float = 0.0  # leading audio whose words came from an earlier pass (not transcribed now)

    @property
    def is_empty(self) -> bool:
        return not self.text.strip()


def normalise(text: str) -> str:
    """Lower-case words without punctuation: for comparing and scoring transcripts."""
    text = text.lower().replace("-", " ")
    text = re.sub(r"[^a-z0-9' ]+", " ", text)
    return " ".join(text.replace("'", "").split())


def word_error_rate(reference: str, hypothesis: str) -> float:
    ref, hyp = normalise(reference).split(), normalise(hypothesis).split()
    if not ref:
        return 0.0 if not hyp else 1.0
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1] / len(ref)


class SpeechRecognizer(Protocol):
    def transcribe(self, samples: np.ndarray, *, word_timestamps: bool = True, full_window: bool = False,
                   prompt: str | None = None, cancelled: Callable[[], bool] | None = None) -> Transcript:
        """Transcribe 16 kHz mono audio; `cancelled` is polled and stops the pass with `Cancelled`."""
        ...

    def align(self, samples: np.ndarray, text: str) -> list[Word]:
        """Where each word of `text` (heard in `samples`) was said: forced alignment, not a new transcript."""
        ...


def loop_free(words: list[str], min_copies: int = 3) -> list[int]:
    """Indices of `words` without Whisper's loop inside a sentence ("ask not ask not ask not ask" → "ask
    not"): a group of one to four words said three or more times in a row is kept once, and so is a copy
    cut short after the last one. People do repeat themselves ("no, no"), but three times in a row is a loop."""
    norm = [normalise(w) for w in words]
    kept: list[int] = []
    i = 0
    while i < len(words):
        for n in range(1, 5):
            gram = norm[i : i + n]
            if len(gram) < n or not all(gram):
                continue
            copies = 1
            while norm[i + copies * n : i + (copies + 1) * n] == gram:
                copies += 1
            if copies >= min_copies:
                j = i + copies * n
                partial = 0
                while partial < n - 1 and j + partial < len(words) and norm[j + partial] == gram[partial]:
                    partial += 1
                kept.extend(range(i, i + n))
                i = j + partial
                break
        else:
            kept.append(i)
            i += 1
    return kept


def drop_repeats(text: str) -> str:
    """Cut Whisper's loop on a short window: text that starts the utterance over again."""
    sentences = re.split(r"(?<=[.!?])\s+", text)
    if len(sentences) < 2:
        return text
    first = normalise(sentences[0]).split()[:2]
    kept = [sentences[0]]
    for sentence in sentences[1:]:
        norm = normalise(sentence)
        if not norm or (len(first) == 2 and norm.split()[:2] == first) or norm in normalise(" ".join(kept)):
            break
        kept.append(sentence)
    return " ".join(kept)


def hallucination_reason(transcript: Transcript, no_speech_probs: list[float]) -> str:
    """Why a transcript should be dropped rather than answered ("" to keep it)."""
    norm = normalise(transcript.text)
    if not norm:
        return "no words"
    if no_speech_probs and min(no_speech_probs) > 0.6:
        return "no-speech probability"
    probs = [w.prob for w in transcript.words]
    mean_prob = sum(probs) / len(probs) if probs else transcript.confidence
    if norm in HALLUCINATIONS and (mean_prob < 0.8 or transcript.audio_s < 0.5):
        return "a phrase Whisper says to silence"  # said clearly ("Thank you.") it is kept
    if probs and mean_prob < 0.25:
        return "low word confidence"
    return ""
