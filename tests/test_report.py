"""`voiceos report LOG` on a session recorded by a real-time demo: the tables, the PNG, and clear errors on
files that are not session logs. Also the log itself, checked against what DESIGN.md promises."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import SPEECH, references, run_voiceos

from voiceos.listen.transcript import normalise, word_error_rate

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@dataclass
class Recorded:
    log: Path
    records: list[dict[str, Any]]
    stdout: str


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory, cli_env: dict[str, str]) -> Recorded:
    """One question, fed in real time (not --fast), replies written but not played."""
    root = tmp_path_factory.mktemp("report")
    proc = run_voiceos("demo", "--no-play", "--input", str(SPEECH / "spk1_snt1.wav"), "--out", str(root / "out"),
                       "--log-dir", str(root / "log"), env=cli_env)
    assert proc.returncode == 0, proc.stderr
    (log,) = (root / "log").glob("*.jsonl")
    records = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    return Recorded(log, records, proc.stdout)


def table_column(out: str, header: str) -> str:
    """The text of one column of the rich table whose header row holds `header` (wrapped lines joined)."""
    lines = out.splitlines()
    head = next(i for i, line in enumerate(lines) if f" {header} " in line and "┃" in line)
    index = [c.strip() for c in lines[head].split("┃")].index(header)
    cells = []
    for line in lines[head + 2 :]:
        if not line.startswith("│"):
            break
        cells.append(line.split("│")[index].strip())
    return " ".join(c for c in cells if c)


def turn_of(recorded: Recorded) -> dict[str, Any]:
    turns = [r for r in recorded.records if r["type"] == "turn"]
    assert len(turns) == 1
    return turns[0]


# --- the session log as DESIGN.md defines it ------------------------------------------------------------------


@pytest.mark.models
def test_the_log_is_whole_jsonl_with_the_promised_records(recorded: Recorded) -> None:
    types = [r["type"] for r in recorded.records]
    assert types[0] == "session_start" and types[-1] == "session_end"
    assert "ready" in types and types.count("turn") == 1
    for r in recorded.records:
        assert isinstance(r["t"], int | float) and r["t"] >= 0
    start = recorded.records[0]
    for key in ("versions", "models", "threads", "machine"):
        assert start[key], key


@pytest.mark.models
def test_the_turn_record_holds_what_design_promises(recorded: Recorded) -> None:
    turn = turn_of(recorded)
    user, reply, timings, pauses = turn["user"], turn["reply"], turn["timings_ms"], turn["pauses"]
    assert word_error_rate(references()["spk1_snt1.wav"], user["text"]) == 0.0, user["text"]
    assert len(user["words"]) == 7
    for w in user["words"]:
        assert set(w) >= {"word", "start", "end", "prob"}
        assert user["speech_start"] - 0.3 <= w["start"] <= w["end"] <= user["speech_end"] + 1e-6  # one clock
    assert reply["text"].strip() and reply["interrupted"] is False
    for key in ("endpoint", "stt", "llm_first_token", "first_clause", "tts_first_audio", "voice_to_voice"):
        assert isinstance(timings[key], int | float), key
    # on one clock, in real time: the turn is decided after the speech ended, and the reply is heard after that
    assert 0 < timings["endpoint"] <= timings["voice_to_voice"]
    for key in ("gaps_ms", "lead_ms", "tail_ms", "pause_s", "speech_s", "cpu_idle_s", "cpu_busy_s",
                "cpu_used_by_us_s", "could_decode_tokens", "could_read_tokens", "could_read_pages",
                "could_read_books", "samantha_ratio", "used_fraction"):
        assert key in pauses, key
    assert len(pauses["gaps_ms"]) == len(user["words"]) - 1
    assert pauses["pause_s"] == pytest.approx(sum(pauses["gaps_ms"]) / 1000.0, abs=0.01)
    assert 0.0 <= pauses["used_fraction"] <= 1.0
    assert pauses["cpu_idle_s"] >= 0 and pauses["cpu_busy_s"] > 0


# --- the report ---------------------------------------------------------------------------------------------------


@pytest.mark.models
def test_report_prints_the_tables_and_writes_a_png(recorded: Recorded, tmp_path: Path) -> None:
    png = tmp_path / "plot.png"
    proc = run_voiceos("report", str(recorded.log), "--png", str(png))
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    out = proc.stdout
    turn = turn_of(recorded)
    assert "turns" in out and "session" in out  # the two tables' titles
    assert normalise(table_column(out, "heard")) == normalise(turn["user"]["text"])
    assert normalise(table_column(out, "reply")) in normalise(turn["reply"]["text"])
    assert f"{turn['timings_ms']['voice_to_voice']:.0f}" in out
    assert "voice-to-voice p50 / p90 / max (ms)" in out and "CPU-s idle / busy in pauses" in out
    assert f"plot: {png}" in out

    data = png.read_bytes()
    assert data[:8] == PNG_MAGIC
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.image

    image = matplotlib.image.imread(str(png))
    assert image.ndim == 3 and image.shape[0] > 150 and image.shape[1] > 400
    assert float(np.std(image[..., :3])) > 0.05, "the plot is blank"


@pytest.mark.models
def test_report_writes_the_png_beside_the_log_by_default(recorded: Recorded, tmp_path: Path) -> None:
    log = tmp_path / recorded.log.name
    log.write_bytes(recorded.log.read_bytes())
    proc = run_voiceos("report", str(log))
    assert proc.returncode == 0, proc.stderr
    assert log.with_suffix(".png").read_bytes()[:8] == PNG_MAGIC


@pytest.mark.models
def test_report_survives_a_torn_last_line(recorded: Recorded, tmp_path: Path) -> None:
    """A crash loses at most the line in flight: the report still reads everything before it."""
    lines = recorded.log.read_text(encoding="utf-8").splitlines(keepends=True)
    torn = tmp_path / "torn.jsonl"
    torn.write_text("".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2])
    proc = run_voiceos("report", str(torn), "--png", str(tmp_path / "torn.png"))
    assert proc.returncode == 0, proc.stderr
    assert normalise(table_column(proc.stdout, "heard")) == normalise(turn_of(recorded)["user"]["text"])


@pytest.mark.models
def test_report_of_a_session_without_turns(recorded: Recorded, tmp_path: Path) -> None:
    quiet = tmp_path / "quiet.jsonl"
    quiet.write_text("".join(json.dumps(r) + "\n" for r in recorded.records if r["type"] != "turn"))
    proc = run_voiceos("report", str(quiet), "--png", str(tmp_path / "quiet.png"))
    assert proc.returncode == 0, proc.stderr
    assert "0 turn(s)" in proc.stdout
    assert not (tmp_path / "quiet.png").exists()


@pytest.mark.parametrize("kind", ["wav", "text", "empty", "json-without-type", "missing"])
def test_report_on_a_file_that_is_not_a_log_is_a_clear_error(kind: str, tmp_path: Path) -> None:
    path = tmp_path / f"not-a-log.{kind}"
    if kind == "wav":
        path.write_bytes((SPEECH / "spk1_snt1.wav").read_bytes())
    elif kind == "text":
        path.write_text("the child almost hurt the small dog\nand ran away\n")
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "json-without-type":
        path.write_text('{"hello": 1}\n[1, 2, 3]\n')
    proc = run_voiceos("report", str(path), "--png", str(tmp_path / "x.png"))
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = [line for line in proc.stderr.splitlines() if line.strip() and not line.startswith("WARNING")]
    assert len(lines) == 1 and str(path) in lines[0], proc.stderr
    assert not (tmp_path / "x.png").exists()


# --- why a reply was cut short, in the report and the chat printer (no models) ------------------------------


def test_the_report_and_the_printer_say_why_a_reply_was_cut_short() -> None:
    import io

    from rich.console import Console

    from voiceos.commands.printer import ConsolePrinter
    from voiceos.commands.report import session_summary, turns_table
    from voiceos.loop.record import TurnRecord, turns_of

    def turn(n: int, text: str, **reply: Any) -> dict[str, Any]:
        fields = TurnRecord(turn=n).fields()
        fields["reply"].update(text=text, **reply)
        return {"type": "turn", "t": float(n), **fields}

    old = turn(1, "Once upon a", interrupted=True)
    del old["reply"]["cut_by"]  # a log written before `cut_by`
    records = [old, turn(2, "Oh, I love the sea,", cut_by="guard"),
               turn(3, "Well, the", interrupted=True, cut_by="barge_in"),
               turn(4, "Mm,", interrupted=True, cut_by="ctrl_c"), turn(5, "Lovely.")]
    turns = turns_of(json.loads(json.dumps(r)) for r in records)  # as read back from a log
    assert [t.reply.cut_by for t in turns] == [None, "guard", "barge_in", "ctrl_c", None]
    assert [t.reply.cut_reason for t in turns] == ["interrupted", "cut by the reply guard", "interrupted",
                                                   "stopped with Ctrl-C", None]

    console = Console(file=io.StringIO(), width=220)
    console.print(turns_table(turns))
    replies = console.file.getvalue()  # type: ignore[attr-defined]
    for note in ("Once upon a [interrupted]", "Oh, I love the sea, [cut by the reply guard]",
                 "Well, the [interrupted]", "Mm, [stopped with Ctrl-C]"):
        assert note in replies, replies
    assert "Lovely. [" not in replies
    summary = session_summary(turns)
    assert summary["interrupted"] == "3" and summary["cut by the reply guard"] == "1"

    out = io.StringIO()
    printer = ConsolePrinter(out)
    for t in turns[1:3] + turns[4:]:
        printer.replied(t.reply.text, t)
    said = [line for line in out.getvalue().splitlines() if line.startswith("samantha")]
    assert said[0].startswith("samantha › Oh, I love the sea, [cut by the reply guard]   (voice-to-voice")
    assert said[1].startswith("samantha › Well, the [interrupted]   ")
    assert said[2].startswith("samantha › Lovely.   ")
