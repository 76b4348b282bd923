"""Input a user might hand `voiceos demo --fast --input FILE`: broken files, silence, noise, odd formats.

Broken files must give one clear line and a non-zero exit, never a traceback; silence and noise must not
make Samantha talk; an 8-bit WAV and a 48 kHz stereo WAV of real speech must be heard correctly.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import ROOT, SPEECH, VOICEOS, references, run_voiceos

from voiceos.audio.wav import read_wav
from voiceos.listen.transcript import normalise, word_error_rate

SOURCE = SPEECH / "spk1_snt1.wav"
REFERENCE = references()["spk1_snt1.wav"]  # "the child almost hurt the small dog"


@dataclass
class DemoRun:
    proc: subprocess.CompletedProcess[str]
    out: Path
    log_dir: Path

    @property
    def records(self) -> list[dict[str, Any]]:
        logs = sorted(self.log_dir.glob("*.jsonl"))
        assert len(logs) == 1, f"expected one session log in {self.log_dir}, found {logs}"
        lines = logs[0].read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines]  # every line must be whole JSON

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [r for r in self.records if r["type"] == kind]

    @property
    def replies(self) -> list[Path]:
        return sorted(self.out.glob("*.wav")) if self.out.exists() else []


def demo_args(wav: Path, where: Path) -> list[str]:
    return ["demo", "--fast", "--no-play", "--input", str(wav), "--out", str(where / "out"),
            "--log-dir", str(where / "log")]


def assert_one_clear_error(proc: subprocess.CompletedProcess[str], wav: Path) -> str:
    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert wav.name in lines[0], lines[0]
    return lines[0]


# --- broken files: one line, non-zero exit, before any model is loaded --------------------------------------


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


BROKEN = {
    "empty": lambda p: _write(p, b""),
    "random-bytes": lambda p: _write(p, np.random.default_rng(1).integers(0, 256, 6000, dtype=np.uint8).tobytes()),
    "riff-then-garbage": lambda p: _write(
        p, SOURCE.read_bytes()[:20] + np.random.default_rng(2).integers(0, 256, 4000, dtype=np.uint8).tobytes()),
    "header-cut-short": lambda p: _write(p, SOURCE.read_bytes()[:30]),
    "header-without-data": lambda p: _write(p, SOURCE.read_bytes()[:44]),
}


@pytest.mark.parametrize("kind", sorted(BROKEN))
def test_broken_wav_is_one_clear_error(kind: str, tmp_path: Path) -> None:
    wav = BROKEN[kind](tmp_path / f"{kind}.wav")
    proc = run_voiceos(*demo_args(wav, tmp_path))
    line = assert_one_clear_error(proc, wav)
    assert line.startswith("voiceos: error:")
    assert not (tmp_path / "out").exists(), "a reply folder was made for input that could not be read"


def test_missing_wav_is_one_clear_error(tmp_path: Path) -> None:
    wav = tmp_path / "does-not-exist.wav"
    proc = run_voiceos(*demo_args(wav, tmp_path))
    line = assert_one_clear_error(proc, wav)
    assert "no such file" in line


def test_a_directory_is_named_as_one(tmp_path: Path) -> None:
    folder = tmp_path / "recordings"
    folder.mkdir()
    proc = run_voiceos(*demo_args(folder, tmp_path))
    line = assert_one_clear_error(proc, folder)
    assert line == f"voiceos: error: {folder} is a directory, not an audio file"
    assert proc.returncode == 4  # AudioInputError
    assert not (tmp_path / "out").exists()


def test_a_wav_with_zero_frames_in_its_header_is_one_clear_error(tmp_path: Path) -> None:
    wav = write_pcm16(tmp_path / "zero-frames.wav", np.zeros(0, np.float32))
    line = assert_one_clear_error(run_voiceos(*demo_args(wav, tmp_path)), wav)
    assert line == f"voiceos: error: {wav}: the file holds no audio samples"


def test_a_header_without_its_data_says_the_file_was_cut_short(tmp_path: Path) -> None:
    wav = BROKEN["header-without-data"](tmp_path / "header-only.wav")
    line = assert_one_clear_error(run_voiceos(*demo_args(wav, tmp_path)), wav)
    assert line.endswith("holds no audio samples (it ends after its header, which promises 2.9 s)"), line


def truncated_wav(path: Path, promised_s: float = 2.9, present_s: float = 0.7) -> Path:
    """A 16-bit mono WAV whose header promises `promised_s` of audio, cut after `present_s` of it."""
    rng = np.random.default_rng(4)
    write_pcm16(path, (0.2 * rng.standard_normal(int(promised_s * 16000))).astype(np.float32))
    data = path.read_bytes()
    return _write(path, data[: 44 + 2 * int(present_s * 16000)])


def test_a_truncated_wav_is_used_with_a_warning(tmp_path: Path) -> None:
    wav = truncated_wav(tmp_path / "x.wav")
    warnings: list[str] = []
    samples, info = read_wav(wav, warn=warnings.append)
    assert warnings == [f"warning: {wav} is truncated: 0.7 s of 2.9 s present; using what is there"]
    assert info.truncated and len(samples) == int(0.7 * 16000) and info.duration == pytest.approx(0.7)
    whole = write_pcm16(tmp_path / "whole.wav", np.zeros(16000, np.float32))
    read_wav(whole, warn=warnings.append)
    assert len(warnings) == 1, "a whole file gives no warning"


@pytest.mark.parametrize("command", ["demo", "bench"])
def test_the_truncation_warning_is_one_status_line_as_the_input_is_read(command: str, tmp_path: Path) -> None:
    """Both commands read every file before loading a model: a bad file after the truncated one stops the run
    there, so the warning line is seen without the models."""
    wav = truncated_wav(tmp_path / "x.wav")
    bad = _write(tmp_path / "second.wav", b"RIFF....WAVEfmt nonsense")
    args = ([command, "--fast", "--no-play", "--input", str(wav), str(bad)] if command == "demo"
            else [command, str(wav), str(bad)])
    proc = run_voiceos(*args, "--log-dir", str(tmp_path / "log"))
    assert proc.returncode == 4 and "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines[0] == f"voiceos: warning: {wav} is truncated: 0.7 s of 2.9 s present; using what is there"
    assert len(lines) == 2 and lines[1].startswith("voiceos: error:") and bad.name in lines[1], proc.stderr


def test_one_bad_file_among_good_ones_is_named(tmp_path: Path) -> None:
    bad = _write(tmp_path / "second.wav", b"RIFF....WAVEfmt nonsense")
    proc = run_voiceos("demo", "--fast", "--no-play", "--input", str(SOURCE), str(bad),
                       "--out", str(tmp_path / "out"), "--log-dir", str(tmp_path / "log"))
    assert_one_clear_error(proc, bad)


# --- silence and noise: exit 0, nothing said ------------------------------------------------------------------


def write_pcm16(path: Path, samples: np.ndarray, rate: int = 16000) -> Path:
    from voiceos.audio.wav import write_wav

    return write_wav(path, samples, rate)


@pytest.fixture(scope="module")
def quiet_runs(tmp_path_factory: pytest.TempPathFactory, cli_env: dict[str, str]) -> dict[str, DemoRun]:
    """A silent WAV and a white-noise WAV, each through its own demo. The demo then waits for a reply that
    never comes (wall time, not CPU), so the second starts once the first has loaded its models."""
    root = tmp_path_factory.mktemp("quiet")
    rng = np.random.default_rng(3)
    wavs = {
        "silent": write_pcm16(root / "silent.wav", np.zeros(3 * 16000, np.float32)),
        "noise": write_pcm16(root / "noise.wav", (0.3 * rng.standard_normal(3 * 16000)).astype(np.float32)),
    }
    env = dict(os.environ) | cli_env
    procs: dict[str, subprocess.Popen[bytes]] = {}
    for name, wav in wavs.items():
        where = root / name
        where.mkdir()
        with (where / "stdout").open("wb") as out, (where / "stderr").open("wb") as err:
            procs[name] = subprocess.Popen([*VOICEOS, *demo_args(wav, where)], stdout=out, stderr=err, env=env,
                                           cwd=ROOT)
        deadline = time.monotonic() + 300
        while procs[name].poll() is None and time.monotonic() < deadline:  # until its models are loaded
            if b"voiceos: demo:" in (where / "stderr").read_bytes():
                break
            time.sleep(0.2)
    runs = {}
    for name, p in procs.items():
        p.wait(timeout=600)
        where = root / name
        proc = subprocess.CompletedProcess(p.args, p.returncode, (where / "stdout").read_text(),
                                           (where / "stderr").read_text())
        runs[name] = DemoRun(proc, where / "out", where / "log")
    return runs


@pytest.mark.models
@pytest.mark.parametrize("kind", ["silent", "noise"])
def test_silence_and_noise_get_no_reply(kind: str, quiet_runs: dict[str, DemoRun]) -> None:
    run = quiet_runs[kind]
    assert run.proc.returncode == 0, run.proc.stderr
    assert "Traceback" not in run.proc.stderr + run.proc.stdout
    assert run.of_type("turn") == [], "Samantha answered silence or noise"
    assert run.replies == [], "a reply WAV was written"
    assert "samantha ›" not in run.proc.stdout
    for dropped in run.of_type("dropped"):  # if the VAD fired at all, the turn was dropped with a reason
        assert dropped["reason"]
    assert run.of_type("session_end")[0]["turns"] == 0


@pytest.mark.models
@pytest.mark.parametrize("kind", ["silent", "noise"])
def test_silence_does_not_leave_the_demo_waiting_for_a_reply(kind: str, quiet_runs: dict[str, DemoRun]) -> None:
    assert "no reply after" not in quiet_runs[kind].proc.stderr


# --- odd but valid formats of real speech ----------------------------------------------------------------------


def _sox(*args: str) -> None:
    if not shutil.which("sox"):
        pytest.fail("sox is not installed (apt-get install sox)")
    subprocess.run(["sox", *args], check=True, capture_output=True)


def make_8bit(path: Path) -> Path:
    _sox(str(SOURCE), "-b", "8", "-e", "unsigned-integer", str(path))
    with wave.open(str(path)) as w:
        assert (w.getsampwidth(), w.getnchannels(), w.getframerate()) == (1, 1, 16000)
    return path


def make_48k_stereo(path: Path) -> Path:
    _sox(str(SOURCE), "-r", "48000", "-c", "2", "-b", "16", str(path))
    with wave.open(str(path)) as w:
        assert (w.getsampwidth(), w.getnchannels(), w.getframerate()) == (2, 2, 48000)
    return path


FORMATS = {"8bit": make_8bit, "48k-stereo": make_48k_stereo}


@pytest.fixture(scope="module")
def format_runs(tmp_path_factory: pytest.TempPathFactory, cli_env: dict[str, str]) -> dict[str, DemoRun]:
    runs: dict[str, DemoRun] = {}
    root = tmp_path_factory.mktemp("formats")
    for name, make in FORMATS.items():
        where = root / name
        where.mkdir()
        wav = make(where / f"spk1_snt1-{name}.wav")
        proc = run_voiceos(*demo_args(wav, where), env=cli_env)
        runs[name] = DemoRun(proc, where / "out", where / "log")
    return runs


@pytest.mark.models
@pytest.mark.parametrize("kind", sorted(FORMATS))
def test_odd_formats_are_heard_correctly(kind: str, format_runs: dict[str, DemoRun]) -> None:
    run = format_runs[kind]
    assert run.proc.returncode == 0, run.proc.stderr
    assert "Traceback" not in run.proc.stderr
    turns = run.of_type("turn")
    assert len(turns) == 1, run.proc.stderr
    heard = turns[0]["user"]["text"]
    assert normalise(heard) == normalise(REFERENCE), f"heard {heard!r}"
    assert word_error_rate(REFERENCE, heard) == 0.0
    assert f"you      › {heard}" in run.proc.stdout
    # one spoken reply, written as a WAV that holds sound
    assert [p.name for p in run.replies] == ["turn-01-samantha.wav"]
    samples, info = read_wav(run.replies[0])
    assert info.duration > 0.5
    assert np.max(np.abs(samples)) > 0.05
    assert turns[0]["reply"]["text"].strip()
    assert turns[0]["reply"]["interrupted"] is False


@pytest.mark.models
@pytest.mark.parametrize("kind", sorted(FORMATS))
def test_a_successful_run_leaves_a_whole_session_log(kind: str, format_runs: dict[str, DemoRun]) -> None:
    records = format_runs[kind].records  # parses every line as JSON
    types = [r["type"] for r in records]
    assert types[0] == "session_start" and types[-1] == "session_end", types
    assert "ready" in types and types.count("turn") == 1
    assert types.index("ready") < types.index("turn")
    assert all(isinstance(r["t"], int | float) and r["t"] >= 0 for r in records)
    start, end = records[0], records[-1]
    assert start["models"]["stt"]["name"] and start["models"]["llm"]["name"]
    assert end["turns"] == 1 and end["reason"] == "done"
