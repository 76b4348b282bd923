"""Shared fixtures: paths, the real models (loaded once), espeak-made speech, and a private PulseAudio."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
SPEECH = ROOT.parent / "shared" / "speech"
VOICEOS = [sys.executable, "-m", "voiceos"]


def references() -> dict[str, str]:
    lines = (SPEECH / "transcripts.tsv").read_text().splitlines()
    return dict(line.split("\t", 1) for line in lines if "\t" in line)


@pytest.fixture(autouse=True)
def _isolated_user_dirs(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep logs, memories and caches of tests out of the user's folders. Calibration (in the cache) is shared
    across tests; each test has a data folder of its own, so what Samantha remembers in one is not in another."""
    home = tmp_path_factory.getbasetemp() / "xdg"
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("data")))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / "cache"))


@pytest.fixture(scope="session")
def speech_dir() -> Path:
    if not SPEECH.is_dir():
        pytest.fail(f"the shared recordings are missing: {SPEECH}")
    return SPEECH


def run_voiceos(*args: str, env: dict[str, str] | None = None, timeout: float = 600,
                cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run the CLI as a user would; stdout and stderr captured separately."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run([*VOICEOS, *args], capture_output=True, text=True, timeout=timeout, env=full_env,
                          cwd=cwd or ROOT)


def records(log_dir: Path) -> list[dict]:
    out = []
    for path in sorted(log_dir.glob("*.jsonl")) if log_dir.exists() else []:
        text = path.read_text()
        whole = text[: text.rfind("\n") + 1]  # a line still being written is not read yet
        for line in whole.splitlines():
            out.append(json.loads(line))  # every written line must be whole JSON
    return out


def wait_until(pred: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def count(log_dir: Path, kind: str) -> int:
    return sum(r["type"] == kind for r in records(log_dir))


class Chat:
    """`voiceos chat` as a subprocess on the rig's virtual microphone and speaker."""

    def __init__(self, rig, tmp: Path, *args: str, wait_ready: bool = True) -> None:  # type: ignore[no-untyped-def]
        self.log_dir = tmp / "logs"
        self.out_path = tmp / "chat.out"
        self.err_path = tmp / "chat.err"
        self.proc = subprocess.Popen([*VOICEOS, "chat", "--log-dir", str(self.log_dir), *args],
                                     env=rig.env(), stdout=self.out_path.open("w"), stderr=self.err_path.open("w"),
                                     cwd=ROOT)
        if wait_ready:
            wait_until(lambda: count(self.log_dir, "ready") == 1, 240, "voiceos chat to be ready")

    def records(self) -> list[dict]:
        return records(self.log_dir)

    def err(self) -> str:
        return self.err_path.read_text()

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            self.proc.wait(timeout=30)
        return self.proc.returncode


@pytest.fixture(scope="session")
def config():  # type: ignore[no-untyped-def]
    from voiceos.config import Config

    return Config()


@pytest.fixture(scope="session")
def engines(config):  # type: ignore[no-untyped-def]
    """The real default models, loaded once for the whole test session."""
    from voiceos.loop.session import load_engines

    return load_engines(config)


def espeak_words(words: list[str], gaps_s: list[float], rate: int = 16000) -> tuple[np.ndarray, list[float]]:
    """Speech made by espeak-ng (through pyttsx3), one word at a time, joined by exact silences.

    Made in a fresh process: espeak keeps intonation state from earlier sentences, which changes how
    single words sound (and what Whisper hears) depending on what the test process spoke before.
    Returns the audio and, for each gap, where it starts (seconds)."""
    code = (
        "import json, sys, numpy as np\n"
        "from voiceos.config import TtsConfig\n"
        "from voiceos.speak.tts import SpeechSynthesizer, trim_silence\n"
        "words = json.loads(sys.argv[1])\n"
        "synth = SpeechSynthesizer(TtsConfig(), reuse_short_clauses=False)\n"  # each word said anew, in turn
        "parts = [trim_silence(synth.synthesize(w).samples, lead_s=0.0, tail_s=0.0) for w in words]\n"
        "np.savez(sys.argv[2], *parts)\n"
    )
    import json
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "words.npz"
        subprocess.run([sys.executable, "-c", code, json.dumps(words), str(out)], check=True, cwd=ROOT,
                       capture_output=True, timeout=120)
        with np.load(out) as data:
            spoken = [data[f"arr_{i}"] for i in range(len(words))]
    parts: list[np.ndarray] = [np.zeros(int(0.3 * rate), np.float32)]
    starts = []
    for i, audio in enumerate(spoken):
        parts.append(audio.astype(np.float32))
        if i < len(gaps_s):
            starts.append(sum(len(p) for p in parts) / rate)
            parts.append(np.zeros(int(gaps_s[i] * rate), np.float32))
    parts.append(np.zeros(int(0.3 * rate), np.float32))
    return np.concatenate(parts), starts


@pytest.fixture(scope="session")
def pulse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A private PulseAudio daemon with the virtual microphone/speaker of voiceos.audio.virtual_devices."""
    if not shutil.which("pulseaudio"):
        pytest.fail("pulseaudio is not installed; run ./scripts/setup.sh")
    from voiceos.audio.virtual_devices import PulseRig

    rig = PulseRig(tmp_path_factory.mktemp("pulse")).start()
    yield rig
    rig.stop()


@pytest.fixture(scope="session")
def cli_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Environment for CLI runs started from module- or session-scoped fixtures, where the autouse
    `_isolated_user_dirs` does not apply yet: the same private data and cache folders (so the machine's
    calibration is measured once for the whole test session, never in the user's folders)."""
    home = tmp_path_factory.getbasetemp() / "xdg"
    return {"XDG_DATA_HOME": str(home / "data"), "XDG_CACHE_HOME": str(home / "cache")}
