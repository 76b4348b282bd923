"""`voiceos report LOG`: the turns, latencies and pause ledger of a session, as tables and a PNG.

The PNG is a timeline per turn: the user's words as bars, every pause shaded with its height sized by the
idle CPU-seconds in it (labelled with what that could have read), and a marker where Samantha's reply began.
"""

from __future__ import annotations

import os
import statistics
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from voiceos.errors import VoiceosError
from voiceos.ledger import TOKENS_PER_PAGE
from voiceos.session_log import read_log


def _fmt(v: Any, digits: int = 0) -> str:
    if v is None:
        return "-"
    return f"{v:.{digits}f}" if isinstance(v, float | int) else str(v)


def percentile(values: list[float], q: float) -> float | None:
    values = sorted(v for v in values if v is not None)
    if not values:
        return None
    k = (len(values) - 1) * q / 100.0
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def load_turns(path: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    if not path.is_file():
        raise VoiceosError(f"{path}: no such log file")
    try:
        records = read_log(path)
    except UnicodeDecodeError as exc:
        raise VoiceosError(f"{path}: not a voiceos session log (not text)") from exc
    if not records or not all(isinstance(r, dict) and "type" in r for r in records):
        raise VoiceosError(f"{path}: not a voiceos session log (no JSONL records with a type)")
    return records, [r for r in records if r["type"] == "turn"]


def run_report(path: Path, png: Path | None = None, console: Console | None = None) -> int:
    records, turns = load_turns(path)
    out = console or _console()
    start = next((r for r in records if r["type"] == "session_start"), {})
    rates = start.get("rates") or {}
    out.print(f"[bold]{path.name}[/]: {len(turns)} turn(s); models {start.get('models', {}).get('llm', {}).get('name')}"
              f" / {start.get('models', {}).get('stt', {}).get('name')}; {start.get('machine', {}).get('cpu', '?')}")
    if rates:
        out.print(f"rates (measured {rates.get('measured_at')}): read {rates.get('read_tps', 0):.0f} tok/s, "
                  f"decode {rates.get('decode_tps', 0):.1f} tok/s with {rates.get('threads')} threads — "
                  f"Samantha ratio {rates.get('samantha_ratio')}×")
    table = Table(title="turns")
    for col in ("#", "heard", "reply", "v2v ms", "endpoint", "stt", "1st tok", "pauses s", "idle CPU-s",
                "could read", "used"):
        table.add_column(col, overflow="fold")
    for r in turns:
        p, tm = r["pauses"], r["timings_ms"]
        pages = p.get("could_read_pages")
        table.add_row(
            str(r.get("turn")), r["user"]["text"][:40], (r["reply"]["text"][:40] +
                                                         (" [cut]" if r["reply"]["interrupted"] else "")),
            _fmt(tm.get("voice_to_voice")), _fmt(tm.get("endpoint")), _fmt(tm.get("stt")),
            _fmt(tm.get("llm_first_token")), _fmt(p.get("all_pauses_s"), 2), _fmt(p.get("cpu_idle_s"), 2),
            f"{pages:.2f} pages" if pages is not None else "-", f"{p.get('used_fraction', 0) * 100:.0f}%",
        )
    out.print(table)
    summary = session_summary(turns)
    st = Table(title="session")
    st.add_column("measure")
    st.add_column("value")
    for k, v in summary.items():
        st.add_row(k, v)
    out.print(st)
    if turns:
        png = png or path.with_suffix(".png")
        plot_timeline(turns, png)
        out.print(f"plot: {png}")
    return 0


def _console() -> Console:
    """The terminal's width; when piped to a file, wide enough that the 11-column turn table keeps whole words."""
    console = Console()
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = Console(width=160)
    return console


def session_summary(turns: list[dict[str, Any]]) -> dict[str, str]:
    v2v = [t["timings_ms"].get("voice_to_voice") for t in turns]
    v2v = [v for v in v2v if v is not None]
    pauses = [t["pauses"] for t in turns]
    idle = sum(p.get("cpu_idle_s", 0.0) for p in pauses)
    busy = sum(p.get("cpu_busy_s", 0.0) for p in pauses)
    useful = sum(p.get("useful_cpu_s", 0.0) for p in pauses)
    tokens = sum(p.get("could_read_tokens") or 0.0 for p in pauses)
    return {
        "turns": str(len(turns)),
        "interrupted": str(sum(1 for t in turns if t["reply"]["interrupted"])),
        "voice-to-voice p50 / p90 / max (ms)": " / ".join(
            _fmt(x) for x in (percentile(v2v, 50), percentile(v2v, 90), max(v2v) if v2v else None)),
        "speech (s)": _fmt(sum(p.get("speech_s", 0.0) for p in pauses), 2),
        "pauses between words, all pauses (s)": f"{sum(p.get('pause_s', 0.0) for p in pauses):.2f}, "
        f"{sum(p.get('all_pauses_s', 0.0) for p in pauses):.2f}",
        "CPU-s idle / busy in pauses": f"{idle:.2f} / {busy:.2f}",
        "could have read": f"{tokens:.0f} tokens = {tokens / TOKENS_PER_PAGE:.1f} pages",
        "used for this conversation": f"{(useful / (idle + busy) * 100) if idle + busy else 0:.0f}% of pause CPU",
        "mean used_fraction per turn": _fmt(statistics.fmean([p.get("used_fraction", 0.0) for p in pauses]), 2)
        if pauses else "-",
    }


def plot_timeline(turns: list[dict[str, Any]], png: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    n = len(turns)
    fig, axes = plt.subplots(n, 1, figsize=(11, 1.6 + 1.5 * n), squeeze=False)
    max_idle = max([1e-6] + [_pause_idle(t)[1] for t in turns])
    for ax, turn in zip(axes[:, 0], turns):
        user, p = turn["user"], turn["pauses"]
        t0 = user["speech_start"]
        words = user["words"]
        for w in words:
            ax.add_patch(Rectangle((w["start"] - t0, 0.0), w["end"] - w["start"], 0.35, color="#3b6ea8"))
            ax.text((w["start"] + w["end"]) / 2 - t0, 0.42, w["word"], ha="center", va="bottom", fontsize=7,
                    rotation=30)
        spans, _ = _pause_idle(turn)
        for (a, b, idle) in spans:
            height = 0.15 + 0.8 * idle / max_idle
            ax.add_patch(Rectangle((a - t0, -height), max(b - a, 0.002), height, color="#f0a030", alpha=0.6))
        v2v = turn["timings_ms"].get("voice_to_voice")
        end = user["speech_end"] - t0
        decided = end + (turn["timings_ms"].get("endpoint") or 0) / 1000.0
        ax.axvline(decided, color="#888888", ls=":", lw=1)
        if v2v is not None:
            ax.axvline(end + v2v / 1000.0, color="#c03030", lw=2)
            ax.text(end + v2v / 1000.0, 0.9, f" reply +{v2v:.0f} ms", color="#c03030", fontsize=8, va="top")
        pages = p.get("could_read_pages")
        title = f"turn {turn.get('turn')}: \"{user['text'][:70]}\" — pauses {p['all_pauses_s']:.2f} s, " \
                f"{p['cpu_idle_s']:.2f} CPU-s idle" + (f" (could read {pages:.2f} pages)" if pages is not None else "")
        ax.set_title(title, fontsize=9, loc="left")
        right = max(end + (v2v or 0) / 1000.0, decided) + 0.3
        ax.set_xlim(-0.1, right)
        ax.set_ylim(-1.05, 1.0)
        ax.set_yticks([])
        ax.set_xlabel("seconds since speech start (blue: words; orange: pauses, height = idle CPU-s; "
                      "dotted: turn end decided; red: reply starts)", fontsize=7)
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=110)
    plt.close(fig)
    return png


def _pause_idle(turn: dict[str, Any]) -> tuple[list[tuple[float, float, float]], float]:
    """Pause spans with their idle CPU-s, from the ledger's per-pause detail."""
    user, p = turn["user"], turn["pauses"]
    if p.get("detail"):
        out = [(d["start"], d["end"], d["cpu_idle_s"]) for d in p["detail"]]
        return out, max([x[2] for x in out] + [0.0])
    words = user["words"]
    spans: list[tuple[float, float]] = []
    if words:
        spans.append((user["speech_start"], words[0]["start"]))
        spans += [(a["end"], b["start"]) for a, b in zip(words, words[1:]) if b["start"] > a["end"]]
        spans.append((words[-1]["end"], words[-1]["end"] + (p.get("tail_ms") or 0) / 1000.0))
    total = sum(b - a for a, b in spans) or 1e-9
    idle = p.get("cpu_idle_s", 0.0)
    out = [(a, b, idle * (b - a) / total) for a, b in spans]
    return out, max([x[2] for x in out] + [0.0])
