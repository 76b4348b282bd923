"""Offline for real: with no network at all (a fresh network namespace, `unshare -n`), the models verify
and a spoken question is heard and answered."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from conftest import ROOT, SPEECH, VOICEOS, references

from voiceos.listen.transcript import word_error_rate


def _unshare_works() -> bool:
    try:
        return subprocess.run(["unshare", "-n", "true"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


pytestmark = pytest.mark.skipif(not _unshare_works(),
                                reason="`unshare -n` is not permitted here (needs root or user namespaces)")


def offline(*args: str, env: dict[str, str] | None = None, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """A voiceos command in a network namespace with no interfaces but loopback (down)."""
    return subprocess.run(["unshare", "-n", *VOICEOS, *args], capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ) | (env or {}), cwd=ROOT)


def test_the_namespace_really_has_no_network() -> None:
    """Guard for the tests below: a connection attempt inside `unshare -n` must fail at once."""
    probe = ("import socket\n"
             "try:\n"
             "    socket.create_connection(('1.1.1.1', 443), timeout=3)\n"
             "    print('connected')\n"
             "except OSError as exc:\n"
             "    print('offline', exc.errno)\n")
    proc = subprocess.run(["unshare", "-n", VOICEOS[0], "-c", probe], capture_output=True, text=True, timeout=60)
    assert proc.stdout.startswith("offline"), proc.stdout + proc.stderr


@pytest.mark.models
def test_models_verify_offline() -> None:
    proc = offline("models", "verify")
    assert proc.returncode == 0, proc.stderr
    assert "FAIL" not in proc.stdout + proc.stderr


@pytest.mark.models
def test_demo_hears_and_answers_offline(tmp_path: Path, cli_env: dict[str, str]) -> None:
    wav = SPEECH / "spk1_snt1.wav"
    proc = offline("demo", "--fast", "--no-play", "--input", str(wav), "--out", str(tmp_path / "out"),
                   "--log-dir", str(tmp_path / "log"), env=cli_env)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    (log,) = (tmp_path / "log").glob("*.jsonl")
    turns = [r for r in map(json.loads, log.read_text().splitlines()) if r["type"] == "turn"]
    assert len(turns) == 1
    heard = turns[0]["user"]["text"]
    assert word_error_rate(references()["spk1_snt1.wav"], heard) == 0.0, heard
    assert turns[0]["reply"]["text"].strip()
    assert (tmp_path / "out" / "turn-01-samantha.wav").stat().st_size > 10_000
