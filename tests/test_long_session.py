"""A long conversation never overflows the LLM's context and leaves a valid log behind."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_voiceos

pytestmark = [pytest.mark.models, pytest.mark.slow]

N_CTX = 512  # llama.cpp rounds the context up to a multiple of 256
MAX_REPLY = 24


def test_sixty_turns_in_a_small_context(speech_dir: Path, tmp_path: Path) -> None:
    config = tmp_path / "small.toml"
    config.write_text(f"[llm]\nn_ctx = {N_CTX}\nmax_reply_tokens = {MAX_REPLY}\nhistory_budget_tokens = 200\n")
    wavs = sorted(str(p) for p in speech_dir.glob("spk1_*.wav"))  # short sentences, cycled
    turns_in = (wavs * 12)[:60]
    proc = run_voiceos("demo", "--fast", "--no-play", "--config", str(config), "--input", *turns_in,
                       "--out", str(tmp_path / "out"), "--log-dir", str(tmp_path / "logs"), timeout=1800)
    assert proc.returncode == 0, proc.stderr[-2000:]
    [log] = list((tmp_path / "logs").glob("*.jsonl"))
    records = [json.loads(line) for line in log.read_text().splitlines()]  # every line is whole JSON
    kinds = [r["type"] for r in records]
    assert kinds[0] == "session_start" and kinds[-1] == "session_end"
    assert "error" not in kinds, [r for r in records if r["type"] == "error"]
    turns = [r for r in records if r["type"] == "turn"]
    assert len(turns) == 60
    assert all(t["reply"]["text"] for t in turns)
    for t in turns:
        assert t["memory"]["n_ctx"] == N_CTX
        assert t["llm"]["prompt_tokens"] + MAX_REPLY < N_CTX
    assert turns[-1]["memory"]["dropped_so_far"] > 0  # old exchanges were let go, not the context overflowed
    assert len(list((tmp_path / "out").glob("turn-*-samantha.wav"))) == 60
