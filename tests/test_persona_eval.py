"""`voiceos eval` and `voiceos memory` as a user runs them: the scorecard over real conversations with the
real model, its JSON and --compare, and what Samantha remembers, shown and forgotten."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import run_voiceos

from voiceos.think.user_profile import ProfileStore, UserProfile

# Two tuned-on conversations: a person who tells her their name and puppy, asked about them 10 turns later and
# after a restart of the session; and plain statements a small model answers with "It looks like someone…".
SUBSET = ["memory-beagle-biscuit", "statements-pencils-and-coats"]


def data_home() -> Path:
    return Path(os.environ["XDG_DATA_HOME"])


@pytest.mark.models
@pytest.mark.slow
def test_the_scorecard_on_real_conversations_passes_and_compares(tmp_path: Path) -> None:
    out = tmp_path / "eval.json"
    done = run_voiceos("eval", "--only", *SUBSET, "--json", str(out))
    assert done.returncode == 0, done.stderr
    doc = json.loads(out.read_text())
    assert doc["schema"] == "voiceos-eval/1"
    replies = doc["replies"]
    assert len(replies) == 15 + 5 and all(r["reply"].strip() for r in replies)
    checks = doc["summary"]["checks"]
    for check in ("help_desk", "ai_self", "third_person", "name_confusion"):
        assert checks[check]["count"] == 0, (check, [(r["user"], r["reply"]) for r in replies if check in r["checks"]])
    recall = [r for r in replies if r["recall"]]
    assert len(recall) == 4 and all(r["recall"]["hit"] for r in recall), recall  # 10 turns later, and restarted
    assert "persona scorecard" in done.stdout and "recall" in done.stdout
    assert not (data_home() / "voiceos" / "memory.json").exists(), "an evaluation touched the user's memory"

    # the same conversations again: the same replies (fixed seeds), so nothing got worse
    again = run_voiceos("eval", "--only", *SUBSET, "--compare", str(out))
    assert again.returncode == 0, again.stdout + again.stderr
    assert "compared with the run of" in again.stdout and "worse" not in again.stderr


def test_eval_refuses_bad_input_in_one_line_before_loading_a_model(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    for args, says in ((["--compare", str(bad)], "bad.json"), (["--only", "no-such-talk"], "no-such-talk"),
                       (["--conversations", str(tmp_path / "none.toml")], "none.toml")):
        done = run_voiceos("eval", *args, timeout=120)
        assert done.returncode != 0
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("voiceos: error:") and says in lines[0], done.stderr


def test_memory_show_and_forget(tmp_path: Path) -> None:
    path = data_home() / "voiceos" / "memory.json"
    empty = run_voiceos("memory", "show", timeout=60)
    assert empty.returncode == 0 and "remembers nothing" in empty.stdout
    profile = UserProfile()
    profile.learn("Hi, my name is Priya and I work as a nurse.")
    ProfileStore(path).save(profile)
    shown = run_voiceos("memory", timeout=60)  # show is the default
    assert shown.returncode == 0 and "Priya" in shown.stdout and "a nurse" in shown.stdout, shown.stdout
    forgot = run_voiceos("memory", "forget", timeout=60)
    assert forgot.returncode == 0 and "forgot 2 fact" in forgot.stdout, forgot.stdout
    assert not path.exists()
    path.write_text("not json at all")
    broken = run_voiceos("memory", "show", timeout=60)
    lines = broken.stderr.strip().splitlines()
    assert broken.returncode != 0 and len(lines) == 1 and "memory forget" in lines[0], broken.stderr
