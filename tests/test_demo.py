"""`voiceos demo` on the real recordings: the words are heard, and every turn gets a spoken reply."""

from __future__ import annotations

import json
import wave
from pathlib import Path

import pytest
from conftest import references, run_voiceos

from voiceos.listen.transcript import normalise, word_error_rate

pytestmark = pytest.mark.models


def test_demo_hears_the_recordings_and_answers_each(speech_dir: Path, tmp_path: Path) -> None:
    wavs = sorted(speech_dir.glob("*.wav"))
    out = tmp_path / "out"
    proc = run_voiceos("demo", "--fast", "--no-play", "--input", *map(str, wavs), "--out", str(out),
                       "--log-dir", str(tmp_path / "logs"), timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    [log] = list((tmp_path / "logs").glob("*.jsonl"))
    turns = [r for r in map(json.loads, log.read_text().splitlines()) if r["type"] == "turn"]
    assert len(turns) == len(wavs)  # one turn per recording, none split, none lost
    refs = references()
    errors = sum(word_error_rate(refs[w.name], t["user"]["text"]) * len(normalise(refs[w.name]).split())
                 for w, t in zip(wavs, turns))
    total = sum(len(normalise(refs[w.name]).split()) for w in wavs)
    assert errors / total < 0.15, [t["user"]["text"] for t in turns]
    replies = sorted(out.glob("turn-*-samantha.wav"))
    assert len(replies) == len(turns)
    for reply in replies:
        with wave.open(str(reply)) as w:
            assert w.getnframes() > 0.5 * w.getframerate()  # at least half a second of her voice
    assert all(f"you      › {t['user']['text']}" in proc.stdout for t in turns)
