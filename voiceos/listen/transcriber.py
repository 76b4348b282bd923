"""Speech to text: faster-whisper with word timestamps, on a short encoder window when it is safe.

Whisper's encoder is trained on 30 s windows, but the CTranslate2 encoder accepts fewer frames; cost
falls roughly with the window (465 ms for 3000 frames → 85 ms for 1000 on 2 cores). `ShortWindowWhisper`
trims the padded features to `window_frames` before encoding. `min_window_s` keeps a margin against the
repetition seen below ~3 s windows; `bench` reports word error rate for both so the trade is visible.

Two copies of the model share the passes by window. A short window is decoded on `[stt] live_threads` (one):
a decoding step of tiny.en is too small to share between two cores, and alone it decodes about a fifth faster
(the 5 s demo question: 150–175 ms against 180–230 ms). The full 30 s window (the plain cascade, the offline
pass) is mostly encoder, which a second thread does speed up: it runs on `[stt] threads`.

A live pass is given `LIVE_PAD_S` of silence after the audio. faster-whisper pads the *features* of a short
clip with zeros, which are not what silence looks like to Whisper, and a turn is cut 32 ms after the voice
ends: Whisper was trained on speech followed by silence. `voiceos bench` (and `--turn-taking`) prints the
live word error rate beside a full-window pass over the whole recording (`wer_offline`).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from voiceos.config import SAMPLE_RATE, SttConfig
from voiceos.errors import Cancelled, ModelError
from voiceos.listen.transcript import (
    FULL_WINDOW_FRAMES,
    Transcript,
    Word,
    drop_repeats,
    hallucination_reason,
    loop_free,
)
from voiceos.offline import enforce_offline

log = logging.getLogger(__name__)

FRAMES_PER_SECOND = 100  # Whisper mel frames (10 ms hop)
MAX_TOKENS_PER_S = 12  # a cap on decoding (a loop); 6 cut fast espeak speech short ("What do you like")
LIVE_PAD_S = 0.5  # silence put after the audio of a live (short-window) pass

def _short_window_model_class() -> type:
    from faster_whisper import WhisperModel

    class ShortWindowWhisper(WhisperModel):  # type: ignore[misc]
        """WhisperModel whose encoder sees `window_frames` mel frames instead of 3000."""

        window_frames = FULL_WINDOW_FRAMES
        cancelled: Callable[[], bool] | None = None  # set per pass by Transcriber.transcribe

        def encode(self, features: np.ndarray) -> Any:
            if self.window_frames < FULL_WINDOW_FRAMES:
                features = features[..., : self.window_frames]
            if self.cancelled is not None and self.cancelled():
                raise Cancelled()
            encoded = super().encode(np.ascontiguousarray(features))
            if self.cancelled is not None and self.cancelled():  # called off while encoding: skip the decoder
                raise Cancelled()
            return encoded

    return ShortWindowWhisper


class Transcriber:
    """Loads a CTranslate2 Whisper model once. The thinking worker calls it; the voice loop only to time the
    words of a reply cut off by the user, so one pass at a time (a lock: the window is set per pass)."""

    def __init__(self, model_dir: Path, config: SttConfig) -> None:
        enforce_offline()
        self.config = config
        self.model_dir = model_dir
        self._lock = threading.Lock()
        self._live = self._load(config.live_threads)  # short windows
        self._full = self._live if config.threads == config.live_threads else self._load(config.threads)

    def _load(self, threads: int) -> Any:
        try:
            cls = _short_window_model_class()
            return cls(
                str(self.model_dir),
                device="cpu",
                compute_type=self.config.compute_type,
                cpu_threads=threads,
                num_workers=1,
                local_files_only=True,
            )
        except Exception as exc:
            raise ModelError(f"cannot load the Whisper model in {self.model_dir}: {exc}") from exc

    def _model_for(self, window_frames: int) -> Any:
        return self._full if window_frames >= FULL_WINDOW_FRAMES else self._live

    def warm_up(self) -> None:
        """One short pass through each copy of the model: CTranslate2's first pass is slow."""
        silence = np.zeros(SAMPLE_RATE, np.float32)
        with self._lock:
            for model in {id(self._live): self._live, id(self._full): self._full}.values():
                self._pass(model, self._live_audio(silence), self.window_for(1.0), word_timestamps=True,
                           prompt=None, cancelled=None, audio_s=1.0)

    def window_for(self, audio_s: float) -> int:
        if not self.config.short_window:
            return FULL_WINDOW_FRAMES
        seconds = max(self.config.min_window_s, audio_s + 1.5)
        frames = int(math.ceil(seconds * FRAMES_PER_SECOND / 100.0) * 100)
        return min(FULL_WINDOW_FRAMES, frames)

    def _live_audio(self, samples: np.ndarray) -> np.ndarray:
        return np.concatenate([samples.astype(np.float32, copy=False),
                               np.zeros(int(LIVE_PAD_S * SAMPLE_RATE), np.float32)])

    def align(self, samples: np.ndarray, text: str) -> list[Word]:
        """Where each word of `text` was said in `samples`: Whisper's cross-attention aligned to these very
        words (the timing step of `word_timestamps`, without decoding anew). A second decoding pass, even of
        the same audio, may hear other words than the ones the reply was written for."""
        if not text.strip():
            return []
        with self._lock:
            return self._align(samples, text)

    def _align(self, samples: np.ndarray, text: str) -> list[Word]:
        from faster_whisper.audio import pad_or_trim
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import merge_punctuations

        window = self.window_for(len(samples) / SAMPLE_RATE)
        model = self._model_for(window)
        audio = self._live_audio(samples)
        features = model.feature_extractor(audio)
        num_frames = min(features.shape[-1] - 1, FULL_WINDOW_FRAMES)
        model.window_frames = window
        model.cancelled = None
        encoded = model.encode(pad_or_trim(features[:, :FULL_WINDOW_FRAMES]))
        tokenizer = Tokenizer(model.hf_tokenizer, model.model.is_multilingual, task="transcribe",
                              language=self.config.language)
        tokens = tokenizer.encode(" " + text.strip())
        alignment = model.find_alignment(tokenizer, [tokens], encoded, num_frames)[0]
        merge_punctuations(alignment, "\"'“¿([{-", "\"'.。,，!！?？:：”)]}、")
        return [Word(a["word"].strip(), float(a["start"]), float(a["end"]), float(a["probability"]))
                for a in alignment if a["word"].strip()]

    def transcribe(self, samples: np.ndarray, *, word_timestamps: bool = True, full_window: bool = False,
                   prompt: str | None = None, cancelled: Callable[[], bool] | None = None) -> Transcript:
        """Transcribe 16 kHz mono audio; drop what looks like a hallucination on silence or noise.
        `cancelled`: checked around the encoder; when it turns true the pass stops with `Cancelled`."""
        with self._lock:
            return self._transcribe(samples, word_timestamps, full_window, prompt, cancelled)

    def _transcribe(self, samples: np.ndarray, word_timestamps: bool, full_window: bool, prompt: str | None,
                    cancelled: Callable[[], bool] | None) -> Transcript:
        window = FULL_WINDOW_FRAMES if full_window else self.window_for(len(samples) / SAMPLE_RATE)
        heard = samples.astype(np.float32, copy=False) if full_window else self._live_audio(samples)
        return self._pass(self._model_for(window), heard, window, word_timestamps=word_timestamps, prompt=prompt,
                          cancelled=cancelled, audio_s=len(samples) / SAMPLE_RATE)

    def _pass(self, model: Any, heard: np.ndarray, window: int, *, word_timestamps: bool, prompt: str | None,
              cancelled: Callable[[], bool] | None, audio_s: float | None = None) -> Transcript:
        """`heard` (padded or not) through `model` on `window` frames; `audio_s`: the audio before padding."""
        started = time.perf_counter()
        audio_s = len(heard) / SAMPLE_RATE if audio_s is None else audio_s
        model.window_frames = window
        model.cancelled = cancelled
        segments, _info = model.transcribe(
            heard,
            max_new_tokens=int(math.ceil(audio_s * MAX_TOKENS_PER_S)) + 8,
            language=self.config.language,
            beam_size=self.config.beam_size,
            word_timestamps=word_timestamps,
            condition_on_previous_text=False,
            without_timestamps=True,
            vad_filter=False,
            temperature=0.0,
            initial_prompt=prompt,
        )
        words: list[Word] = []
        texts: list[str] = []
        no_speech: list[float] = []
        logprobs: list[float] = []
        for segment in segments:  # the lazy generator is consumed here, on the worker thread
            texts.append(segment.text)
            no_speech.append(segment.no_speech_prob)
            logprobs.append(segment.avg_logprob)
            for w in segment.words or []:
                words.append(Word(w.word.strip(), float(w.start), float(w.end), float(w.probability)))
            if audio_s <= window / FRAMES_PER_SECOND:
                # The whole audio fits the window, so the first segment holds all of it. With word timestamps
                # faster-whisper would go on decoding from the last word's end, over the silence after it,
                # where Whisper makes up a closing "Okay." or "Thank you." (seen on spk1_snt1 and jfk).
                break
        raw = " ".join(t.strip() for t in texts).split()
        kept = loop_free(raw)
        if words and len(words) == len(raw):
            words = [words[i] for i in kept]
        text = drop_repeats(" ".join(raw[i] for i in kept))
        if words and len(text.split()) < len(words):
            words = words[: len(text.split())]
        transcript = Transcript(text, words, audio_s, (time.perf_counter() - started) * 1000.0, window,
                                confidence=math.exp(sum(logprobs) / len(logprobs)) if logprobs else 1.0)
        reason = hallucination_reason(transcript, no_speech)
        if reason:
            log.info("dropped %r as a likely hallucination (%s)", text, reason)
            return Transcript("", [], audio_s, transcript.stt_ms, window, dropped_reason=reason)
        return transcript


