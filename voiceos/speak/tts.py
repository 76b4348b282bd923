"""Text to speech: pyttsx3 driving espeak-ng, one engine owned by one worker thread.

`save_to_file` is used (never `say`, whose Linux path runs a shell command). The espeak driver prints
"Audio saved to …" on stdout after every file; `_QuietThreadStdout` swallows writes from the owning thread
only, so the CLI's own output on stdout stays clean.
"""

from __future__ import annotations

import logging
import sys
import tempfile
import time
import wave
from pathlib import Path
from typing import Any, Protocol, TextIO

import numpy as np

from voiceos.audio.interfaces import AudioChunk
from voiceos.audio.wav import resample
from voiceos.config import SAMPLE_RATE, TtsConfig
from voiceos.errors import ConfigError, VoiceosError

log = logging.getLogger(__name__)

CACHED_CLAUSE_WORDS = 2  # clauses this short ("That's,", "Sure,") recur turn after turn: keep their audio
CACHE_SIZE = 256
DEFAULT_VOICE = "gmw/en"  # espeak-ng's English, which pyttsx3 starts with
SETTINGS_WAIT_S = 0.5  # the longest a clause waits for espeak-ng to take a new rate, volume or voice


class _QuietThreadStdout:
    """A stdout wrapper that drops pyttsx3's "Audio saved to …" lines (printed from espeak's callback)."""

    def __init__(self, wrapped: TextIO) -> None:
        self._wrapped = wrapped
        self._eat_newline = False

    def write(self, text: str) -> int:
        if text.startswith("Audio saved to "):
            self._eat_newline = not text.endswith("\n")
            return len(text)
        if self._eat_newline and text == "\n":
            self._eat_newline = False
            return len(text)
        return self._wrapped.write(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._wrapped, name)


class Synthesizer(Protocol):
    """Text to speech, one clause at a time, on one thread."""

    last_ms: float  # wall time of the last `synthesize`

    def synthesize(self, text: str, start: float = 0.0) -> AudioChunk: ...

    def close(self) -> None: ...


class SpeechSynthesizer:
    """The embedded `Synthesizer`: espeak-ng through pyttsx3. Create and call it from the same thread."""

    def __init__(self, config: TtsConfig, *, reuse_short_clauses: bool = True) -> None:
        try:
            import pyttsx3

            self._engine = pyttsx3.init("espeak")
        except Exception as exc:  # missing libespeak-ng, broken driver
            raise VoiceosError(
                f"cannot start espeak-ng through pyttsx3 ({exc}); install espeak-ng and libespeak-ng1"
            ) from exc
        self._config = config
        self._dir = tempfile.TemporaryDirectory(prefix="voiceos-tts-")
        self._path = Path(self._dir.name) / "clause.wav"  # our own names: no generated text in paths
        self.espeak_runs = 0  # clauses espeak was asked to speak (a cached one is not; a retry is the same clause)
        self._files = 0  # files espeak was asked to write, retries included
        if not isinstance(sys.stdout, _QuietThreadStdout):
            sys.stdout = _QuietThreadStdout(sys.stdout)
        self.last_ms = 0.0
        # espeak says the same text the same way: a reply's opening clause, often "That's," or "Sure,", is
        # spoken from here the next time instead of waiting for espeak (about 15–20 ms, before first sound)
        self._short_clauses: dict[str, np.ndarray] = {}
        self._reuse = reuse_short_clauses
        self._set_voice()  # an unknown voice fails here, before the first clause

    def synthesize(self, text: str, start: float = 0.0) -> AudioChunk:
        """Speak `text` into a 16 kHz mono chunk (leading/trailing silence trimmed)."""
        started = time.perf_counter()
        short = self._reuse and len(text.split()) <= CACHED_CLAUSE_WORDS
        samples = self._short_clauses.get(text) if short else None
        if samples is None:
            samples = np.zeros(0, np.float32)
            self.espeak_runs += 1
            for _attempt in range(3):  # pyttsx3's espeak driver rarely hands back an empty file: try again
                samples = self._synthesize_once(text)
                if samples.size or not any(ch.isalnum() for ch in text):
                    break
                log.warning("espeak-ng returned no audio for a clause; retrying")
            if short and samples.size and len(self._short_clauses) < CACHE_SIZE:
                samples.setflags(write=False)
                self._short_clauses[text] = samples
        self.last_ms = (time.perf_counter() - started) * 1000.0
        return AudioChunk(samples, SAMPLE_RATE, start)

    def _synthesize_once(self, text: str) -> np.ndarray:
        # A fresh file name per clause: espeak's driver writes the file from its end-of-message callback,
        # which can land after runAndWait() returns; a late file must never pass for the next clause.
        self._files += 1
        path = self._path.with_name(f"clause-{self._files}.wav")
        self._set_voice()
        self._engine.save_to_file(text, str(path))
        self._engine.runAndWait()
        deadline = time.perf_counter() + 0.5
        while not path.exists() and time.perf_counter() < deadline:
            time.sleep(0.002)
        if not path.exists():
            return np.zeros(0, np.float32)
        size = -1
        while path.stat().st_size != size and time.perf_counter() < deadline:  # until fully written
            size = path.stat().st_size
            time.sleep(0.003)
        try:
            with wave.open(str(path), "rb") as wav:
                rate = wav.getframerate()
                pcm = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
        except (EOFError, wave.Error):  # caught mid-write
            return np.zeros(0, np.float32)
        finally:
            path.unlink(missing_ok=True)
        return trim_silence(resample(pcm.astype(np.float32) / 32768.0, rate, SAMPLE_RATE))

    def _set_voice(self) -> None:
        """This synthesizer's rate, volume and voice, given to espeak-ng before a clause when the engine
        has others: `pyttsx3.init` hands every caller in a process the same engine, so another synthesizer
        (a test's user voice, a corpus's other speaking rate) may have changed them since.

        espeak-ng runs asynchronously here: a setting is a command in its queue, and pyttsx3's
        `runAndWait` cancels that queue when espeak-ng still looks busy, which drops a setting queued
        just before (the clause came out at the old rate). So the settings go to espeak-ng directly and
        the clause waits, at most `SETTINGS_WAIT_S`, until espeak-ng has taken them."""
        wanted = (self._config.rate_wpm, self._config.volume, self._config.voice)
        if getattr(self._engine, "voiceos_settings", None) == wanted:
            return
        from pyttsx3.drivers import _espeak

        voice = self._config.voice or DEFAULT_VOICE  # None means English again, after another voice
        if _espeak.SetVoiceByName(voice.encode("utf-8")) != 0:
            raise ConfigError(
                f"[tts] voice = {self._config.voice!r}: espeak-ng has no such voice; give one from the File"
                " column of `espeak-ng --voices`, such as gmw/en-US"
            )
        _espeak.SetParameter(_espeak.RATE, self._config.rate_wpm, 0)
        _espeak.SetParameter(_espeak.VOLUME, round(self._config.volume * 100), 0)
        deadline = time.perf_counter() + SETTINGS_WAIT_S
        while _espeak.IsPlaying() and time.perf_counter() < deadline:
            time.sleep(0.001)
        self._engine.voiceos_settings = wanted

    def close(self) -> None:
        self._dir.cleanup()


def trim_silence(
    samples: np.ndarray, floor: float = 0.004, lead_s: float = 0.01, tail_s: float = 0.15
) -> np.ndarray:
    """Cut leading silence (speech starts at once) and cap the trailing pause between clauses."""
    loud = np.flatnonzero(np.abs(samples) > floor)
    if loud.size == 0:
        return samples[:0]
    start = max(0, int(loud[0] - lead_s * SAMPLE_RATE))
    return samples[start : int(loud[-1] + tail_s * SAMPLE_RATE)]
