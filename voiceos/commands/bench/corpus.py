"""The bench's corpus: WAV files with their transcripts, or the built-in phrases spoken by espeak-ng once."""

from __future__ import annotations

import logging
import shutil
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from voiceos.audio.wav import read_wav, write_wav
from voiceos.commands.bench.options import BenchOptions
from voiceos.commands.console import status
from voiceos.config import SAMPLE_RATE, Config
from voiceos.errors import AudioInputError, VoiceosError
from voiceos.speak.tts import SpeechSynthesizer

log = logging.getLogger(__name__)

TRANSCRIPTS = "transcripts.tsv"

CORPUS_PAD_S = 0.3  # silence around each phrase of the default corpus

DEFAULT_PHRASES = (  # the built-in corpus: short things a person might say, each heard exactly by tiny.en
    ("01-hello.wav", "Hi Samantha, I just got back from a long walk."),
    ("02-morning.wav", "How are you feeling this morning?"),
    ("03-sister.wav", "My sister is moving to a new city next month."),
    ("04-music.wav", "What kind of music do you like?"),
    ("05-beach.wav", "I think I will go to the beach this weekend."),
)


@dataclass(frozen=True)
class BenchItem:
    """One utterance of the corpus: 16 kHz mono audio and, when known, what is said in it."""

    name: str
    path: Path
    samples: np.ndarray
    reference: str | None = None

    @property
    def seconds(self) -> float:
        return len(self.samples) / SAMPLE_RATE


def read_transcripts(folder: Path) -> dict[str, str]:
    """`file<TAB>text` lines of folder/transcripts.tsv, keyed by file name (empty when there is none)."""
    path = folder / TRANSCRIPTS
    if not path.is_file():
        return {}
    out: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if "\t" in line and not line.startswith("#"):
            name, text = line.split("\t", 1)
            out[Path(name.strip()).name] = text.strip()
    return out


def default_corpus_dir() -> Path:
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("voiceos")) / "bench-corpus"


def ensure_default_corpus(config: Config, folder: Path | None = None) -> Path:
    """The built-in corpus, spoken by espeak-ng once and reused; remade when its phrases change."""
    folder = folder or default_corpus_dir()
    wanted = dict(DEFAULT_PHRASES)
    if read_transcripts(folder) == wanted and all((folder / name).is_file() for name in wanted):
        return folder
    print(f"voiceos: making the built-in benchmark corpus in {folder}", file=sys.stderr)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".bench-corpus-", dir=folder.parent))
    synth = SpeechSynthesizer(config.tts)
    try:
        pad = np.zeros(int(CORPUS_PAD_S * SAMPLE_RATE), np.float32)
        for name, text in DEFAULT_PHRASES:
            write_wav(tmp / name, np.concatenate([pad, speak(synth, text), pad]))
        (tmp / TRANSCRIPTS).write_text("".join(f"{n}\t{t}\n" for n, t in DEFAULT_PHRASES), encoding="utf-8")
        if folder.exists():
            shutil.rmtree(folder)
        tmp.replace(folder)
    finally:
        synth.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def speak(synth: SpeechSynthesizer, text: str, attempts: int = 3) -> np.ndarray:
    """espeak-ng through pyttsx3 now and then hands back an empty file: try again rather than keep silence."""
    for _ in range(attempts):
        samples = synth.synthesize(text).samples
        if len(samples) >= 0.5 * SAMPLE_RATE:
            return samples
        log.warning("espeak-ng returned %.2f s of audio for %r; trying again", len(samples) / SAMPLE_RATE, text)
    raise VoiceosError(f"espeak-ng gave no audio for {text!r} ({attempts} attempts); see `voiceos doctor`")


def corpus_files(options: BenchOptions, config: Config) -> list[Path]:
    if options.wavs:
        return list(options.wavs)
    folder = options.corpus or ensure_default_corpus(config)
    if not folder.is_dir():
        raise AudioInputError(f"{folder}: no such corpus folder")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".wav" and p.is_file())
    if not files:
        raise AudioInputError(f"{folder}: no .wav files in the corpus folder")
    return files


def load_items(files: Sequence[Path]) -> list[BenchItem]:
    """Read every WAV (bad files fail here, before the models load) with its transcript if one is beside it."""
    transcripts: dict[Path, dict[str, str]] = {}
    items = []
    for path in files:
        samples, _ = read_wav(path, warn=status)  # a truncated file is used, with a warning
        refs = transcripts.setdefault(path.parent, read_transcripts(path.parent))
        items.append(BenchItem(path.stem, path, samples, refs.get(path.name)))
    return items
