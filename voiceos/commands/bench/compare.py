"""`voiceos bench --compare OLD.json`: p50 against p50, flagged only beyond run-to-run noise."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from voiceos.commands.bench.metrics import METRIC_BY_KEY, METRICS, NOISE_RULE, Aggregate, MetricSpec
from voiceos.errors import VoiceosError
from voiceos.loop.session import machine
from voiceos.measure.stats import fmt

REGRESSION_EXIT_CODE = 1



@dataclass
class Delta:
    mode: str
    key: str
    old_p50: float
    new_p50: float
    allowed: float  # how much worse the p50 may get before it counts (run-to-run noise)
    regression: bool

    @property
    def change(self) -> float:
        return self.new_p50 - self.old_p50



def load_baseline(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise VoiceosError(f"{path}: no such file to compare with") from exc
    except (OSError, ValueError) as exc:
        raise VoiceosError(f"{path}: not a voiceos bench JSON file ({exc})") from exc
    if not isinstance(document, dict) or not isinstance(document.get("aggregates"), dict):
        raise VoiceosError(f"{path}: not a voiceos bench JSON file (no aggregates)")
    return document


def noise_allowance(spec: MetricSpec, old: dict[str, Any]) -> float:
    p50, p90 = float(old["p50"]), old.get("p90")
    spread = abs(float(p90) - p50) if p90 is not None else 0.0
    return max(0.10 * abs(p50), 2.0 * spread, spec.floor)


def compare(old: dict[str, Any], new: dict[str, dict[str, Aggregate]]) -> list[Delta]:
    """Deltas of every p50 the two runs share, each flagged when it got worse by more than the noise."""
    deltas = []
    for mode, metrics in new.items():
        old_mode = old.get("aggregates", {}).get(mode)
        if not isinstance(old_mode, dict):
            continue
        for spec in METRICS:
            o, n = old_mode.get(spec.key), metrics.get(spec.key)
            if not isinstance(o, dict) or o.get("p50") is None or n is None or n.p50 is None:
                continue
            allowed = noise_allowance(spec, o)
            worse = (float(o["p50"]) - n.p50) if spec.higher_is_better else (n.p50 - float(o["p50"]))
            deltas.append(Delta(mode, spec.key, float(o["p50"]), n.p50, round(allowed, 4), worse > allowed))
    return deltas


def print_compare(console: Console, path: Path, old: dict[str, Any], deltas: Sequence[Delta],
                  corpus: Sequence[str]) -> None:
    table = Table(title=f"compared with {path.name} ({old.get('created', '?')})")
    for col in ("mode", "metric", "old p50", "new p50", "change", "change %", "noise allowance", "verdict"):
        table.add_column(col, justify="left" if col in ("mode", "metric", "verdict") else "right")
    for d in deltas:
        spec = METRIC_BY_KEY[d.key]
        pct = f"{d.change / d.old_p50 * 100:+.0f}%" if d.old_p50 else "-"
        verdict = "[bold red]REGRESSION[/]" if d.regression else "ok"
        table.add_row(d.mode, d.key, fmt(d.old_p50, spec.digits), fmt(d.new_p50, spec.digits),
                      f"{d.change:+.{spec.digits}f}", pct, fmt(d.allowed, spec.digits), verdict)
    console.print(table)
    console.print(f"rule: {NOISE_RULE}; for tok/s and pause use, lower is worse.", soft_wrap=True)
    old_corpus = [c.get("name") for c in old.get("corpus", []) if isinstance(c, dict)]
    if old_corpus and old_corpus != list(corpus):
        console.print("note: the two runs used different corpora; compare with care", soft_wrap=True)
    old_machine = old.get("machine", {}).get("cpu")
    if old_machine and old_machine != machine().get("cpu"):
        console.print(f"note: the old result is from another CPU ({old_machine})", soft_wrap=True)
    for d in deltas:
        if d.regression:
            spec = METRIC_BY_KEY[d.key]
            console.print(f"regression: {d.mode} {d.key} p50 {fmt(d.new_p50, spec.digits)} {spec.unit} vs "
                          f"{fmt(d.old_p50, spec.digits)} {spec.unit} before (allowed change "
                          f"{fmt(d.allowed, spec.digits)} {spec.unit})", soft_wrap=True, highlight=False)
    flagged = sum(d.regression for d in deltas)
    if not deltas:
        console.print("nothing to compare: no mode and metric in common", soft_wrap=True)
    else:
        console.print(f"{flagged} regression(s) beyond run-to-run noise" if flagged else
                      "no regression beyond run-to-run noise", soft_wrap=True)
