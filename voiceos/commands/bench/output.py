"""The bench's results: tables on stdout, and the JSON and CSV files."""

from __future__ import annotations

import csv
import dataclasses
import json
import time
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.table import Table

from voiceos.commands.bench.corpus import BenchItem
from voiceos.commands.bench.metrics import METRICS, Aggregate, TurnMetrics
from voiceos.commands.bench.options import BenchOptions
from voiceos.config import Config
from voiceos.loop.session import Engines, machine, versions
from voiceos.measure.stats import fmt

SCHEMA = "voiceos-bench/1"



def turns_table(turns: Sequence[TurnMetrics]) -> Table:
    table = Table(title="turns (times in ms from the end of speech)")
    for col in ("run", "mode", "utterance", "heard", "end", "stt", "rtf", "1st tok", "clause", "audio", "v2v",
                "tok/s", "WER", "used", "CPU s"):
        table.add_column(col, overflow="fold", justify="left" if col in ("mode", "utterance", "heard") else "right")
    for t in turns:
        name = escape(t.utterance + (f" ({t.part + 1})" if t.part else "") + (" [cut]" if t.interrupted else ""))
        if not t.answered:
            table.add_row(str(t.run), t.mode, name, "[red]not answered[/]", *["-"] * 11)
            continue
        table.add_row(
            str(t.run), t.mode, name, escape(t.heard[:32]), fmt(t.endpoint_ms), fmt(t.stt_ms), fmt(t.stt_rtf, 3),
            fmt(t.llm_first_token_ms), fmt(t.first_clause_ms), fmt(t.tts_first_audio_ms), fmt(t.voice_to_voice_ms),
            fmt(t.decode_tps, 1), fmt(t.wer, 2), fmt(t.used_fraction, 2), fmt(t.cpu_s, 2),
        )
    return table


def aggregates_table(aggs: dict[str, dict[str, Aggregate]], rat: dict[str, float | None]) -> Table:
    counts = ", ".join(f"{mode}: {next(iter(a.values())).n if a else 0} turn(s)" for mode, a in aggs.items())
    table = Table(title=f"aggregates ({counts})")
    table.add_column("metric")
    for mode in aggs:
        for q in ("p50", "p90", "max"):
            table.add_column(f"{mode} {q}", justify="right")
    if rat:
        table.add_column("naive/streaming (p50)", justify="right")
    for m in METRICS:
        row = [f"{m.key} ({m.unit})" if m.unit else m.key]
        for mode_aggs in aggs.values():
            a = mode_aggs[m.key]
            row += [fmt(a.p50, m.digits), fmt(a.p90, m.digits), fmt(a.max, m.digits)]
        if rat:
            r = rat.get(m.key)
            row.append(f"{r:.2f}×" if r is not None else "-")
        table.add_row(*row)
    return table


def library_versions() -> dict[str, str]:
    out = versions()
    for dist in ("rich", "matplotlib", "psutil", "platformdirs"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def bench_document(options: BenchOptions, config: Config, engines: Engines, items: Sequence[BenchItem],
                   turns: Sequence[TurnMetrics], aggs: dict[str, dict[str, Aggregate]],
                   rat: dict[str, float | None], log_path: Path) -> dict[str, Any]:
    """Everything --json writes: options, corpus, machine, models, every turn, aggregates and ratios."""
    return {
        "schema": SCHEMA,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "options": {"mode": options.mode, "runs": options.runs, "conversation": options.conversation,
                    "play": options.play, "output": "speaker" if options.play else "virtual real-time sink"},
        "corpus": [{"name": i.name, "path": str(i.path), "seconds": round(i.seconds, 3), "reference": i.reference}
                   for i in items],
        "machine": machine() | {"threads": config.threads()},
        "versions": library_versions(),
        "models": engines.models,
        "rates": dataclasses.asdict(engines.rates) if engines.rates else None,
        "session_log": str(log_path),
        "metrics": {m.key: {"label": m.label, "unit": m.unit, "higher_is_better": m.higher_is_better}
                    for m in METRICS},
        "turns": [dataclasses.asdict(t) for t in turns],
        "aggregates": {mode: {k: dataclasses.asdict(a) for k, a in ma.items()} for mode, ma in aggs.items()},
        "ratios": rat,
    }


def write_json(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def write_csv(path: Path, turns: Sequence[TurnMetrics]) -> None:
    """One row per turn; the stage trace flattened into trace_<stage>_ms columns."""
    fields = [f.name for f in dataclasses.fields(TurnMetrics) if f.name != "trace_ms"]
    trace_keys = list(dict.fromkeys(k for t in turns for k in t.trace_ms))
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields + [f"trace_{k}_ms" for k in trace_keys])
        writer.writeheader()
        for t in turns:
            row = {k: v for k, v in dataclasses.asdict(t).items() if k != "trace_ms"}
            row.update({f"trace_{k}_ms": t.trace_ms.get(k) for k in trace_keys})
            writer.writerow(row)
