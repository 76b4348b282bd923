"""`voiceos report LOG`: the turns, latencies and pause ledger of a session, as tables and a PNG.

The PNG is a timeline per turn: the user's words as bars, every pause shaded with its height sized by the
idle CPU-seconds in it (labelled with what that could have read), and a marker where Samantha's reply began.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from voiceos.commands.console import results_console
from voiceos.errors import VoiceosError
from voiceos.loop.record import CutBy, TurnRecord, turns_of
from voiceos.measure.ledger import TOKENS_PER_PAGE
from voiceos.measure.session_log import read_log
from voiceos.measure.stats import fmt, percentile


def load_turns(path: Path) -> tuple[list[dict[str, Any]], list[TurnRecord]]:
    if not path.is_file():
        raise VoiceosError(f"{path}: no such log file")
    try:
        records = read_log(path)
    except UnicodeDecodeError as exc:
        raise VoiceosError(f"{path}: not a voiceos session log (not text)") from exc
    if not records or not all(isinstance(r, dict) and "type" in r for r in records):
        raise VoiceosError(f"{path}: not a voiceos session log (no JSONL records with a type)")
    return records, turns_of(records)


def run_report(path: Path, png: Path | None = None, console: Console | None = None) -> int:
    records, turns = load_turns(path)
    out = console or results_console()
    start = next((r for r in records if r["type"] == "session_start"), {})
    rates = start.get("rates") or {}
    out.print(f"[bold]{path.name}[/]: {len(turns)} turn(s); models {start.get('models', {}).get('llm', {}).get('name')}"
              f" / {start.get('models', {}).get('stt', {}).get('name')}; {start.get('machine', {}).get('cpu', '?')}")
    if rates:
        out.print(f"rates (measured {rates.get('measured_at')}): read {rates.get('read_tps', 0):.0f} tok/s, "
                  f"decode {rates.get('decode_tps', 0):.1f} tok/s with {rates.get('threads')} threads — "
                  f"Samantha ratio {rates.get('samantha_ratio')}×")
    out.print(turns_table(turns))
    st = Table(title="session")
    st.add_column("measure")
    st.add_column("value")
    for k, v in session_summary(turns).items():
        st.add_row(k, v)
    out.print(st)
    if turns:
        png = png or path.with_suffix(".png")
        plot_timeline(turns, png)
        out.print(f"plot: {png}")
    return 0


def turns_table(turns: list[TurnRecord]) -> Table:
    table = Table(title="turns")
    for col in ("#", "heard", "reply", "v2v ms", "endpoint", "stt", "1st tok", "pauses s", "idle CPU-s",
                "could read", "used"):
        table.add_column(col, overflow="fold")
    for r in turns:
        p, tm = r.pauses, r.timings_ms
        pages = p.could_read_pages
        table.add_row(
            str(r.turn), escape(r.user.text[:40]), escape(r.reply.text[:40] + _cut(r)),  # words, not markup
            fmt(tm.voice_to_voice), fmt(tm.endpoint), fmt(tm.stt), fmt(tm.llm_first_token),
            fmt(p.all_pauses_s, 2), fmt(p.cpu_idle_s, 2),
            f"{pages:.2f} pages" if pages is not None else "-", f"{p.used_fraction * 100:.0f}%",
        )
    return table


def _cut(turn: TurnRecord) -> str:
    """Why her reply was cut short, as a note after it ("" when she said it all)."""
    reason = turn.reply.cut_reason
    return f" [{reason}]" if reason else ""


def session_summary(turns: list[TurnRecord]) -> dict[str, str]:
    v2v = [v for t in turns if (v := t.timings_ms.voice_to_voice) is not None]
    pauses = [t.pauses for t in turns]
    idle = sum(p.cpu_idle_s for p in pauses)
    busy = sum(p.cpu_busy_s for p in pauses)
    useful = sum(p.useful_cpu_s for p in pauses)
    tokens = sum(p.could_read_tokens or 0.0 for p in pauses)
    return {
        "turns": str(len(turns)),
        "interrupted": str(sum(1 for t in turns if t.reply.interrupted)),
        "cut by the reply guard": str(sum(1 for t in turns if t.reply.cut_by == CutBy.GUARD)),
        "voice-to-voice p50 / p90 / max (ms)": " / ".join(
            fmt(x) for x in (percentile(v2v, 50), percentile(v2v, 90), max(v2v) if v2v else None)),
        "speech (s)": fmt(sum(p.speech_s for p in pauses), 2),
        "pauses between words, all pauses (s)": f"{sum(p.pause_s for p in pauses):.2f}, "
        f"{sum(p.all_pauses_s for p in pauses):.2f}",
        "CPU-s idle / busy in pauses": f"{idle:.2f} / {busy:.2f}",
        "could have read": f"{tokens:.0f} tokens = {tokens / TOKENS_PER_PAGE:.1f} pages",
        "used for this conversation": f"{(useful / (idle + busy) * 100) if idle + busy else 0:.0f}% of pause CPU",
        "mean used_fraction per turn": fmt(statistics.fmean([p.used_fraction for p in pauses]), 2)
        if pauses else "-",
    }


def plot_timeline(turns: list[TurnRecord], png: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(turns), 1, figsize=(11, 1.6 + 1.5 * len(turns)), squeeze=False)
    max_idle = max([1e-6] + [_pause_idle(t)[1] for t in turns])
    for ax, turn in zip(axes[:, 0], turns):
        _plot_turn(ax, turn, max_idle)
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=110)
    plt.close(fig)
    return png


def _plot_turn(ax: Any, turn: TurnRecord, max_idle: float) -> None:
    """One turn's row: words, pauses sized by idle CPU, the decision and the start of her reply."""
    from matplotlib.patches import Rectangle

    user, p = turn.user, turn.pauses
    t0 = user.speech_start
    for w in user.words:
        ax.add_patch(Rectangle((w.start - t0, 0.0), w.end - w.start, 0.35, color="#3b6ea8"))
        ax.text((w.start + w.end) / 2 - t0, 0.42, w.word, ha="center", va="bottom", fontsize=7, rotation=30)
    spans, _ = _pause_idle(turn)
    for a, b, idle in spans:
        height = 0.15 + 0.8 * idle / max_idle
        ax.add_patch(Rectangle((a - t0, -height), max(b - a, 0.002), height, color="#f0a030", alpha=0.6))
    v2v = turn.timings_ms.voice_to_voice
    end = user.speech_end - t0
    decided = end + (turn.timings_ms.endpoint or 0) / 1000.0
    ax.axvline(decided, color="#888888", ls=":", lw=1)
    if v2v is not None:
        ax.axvline(end + v2v / 1000.0, color="#c03030", lw=2)
        ax.text(end + v2v / 1000.0, 0.9, f" reply +{v2v:.0f} ms", color="#c03030", fontsize=8, va="top")
    pages = p.could_read_pages
    title = f"turn {turn.turn}: \"{user.text[:70]}\" — pauses {p.all_pauses_s:.2f} s, " \
            f"{p.cpu_idle_s:.2f} CPU-s idle" + (f" (could read {pages:.2f} pages)" if pages is not None else "")
    ax.set_title(title, fontsize=9, loc="left")
    ax.set_xlim(-0.1, max(end + (v2v or 0) / 1000.0, decided) + 0.3)
    ax.set_ylim(-1.05, 1.0)
    ax.set_yticks([])
    ax.set_xlabel("seconds since speech start (blue: words; orange: pauses, height = idle CPU-s; "
                  "dotted: turn end decided; red: reply starts)", fontsize=7)


def _pause_idle(turn: TurnRecord) -> tuple[list[tuple[float, float, float]], float]:
    """Pause spans with their idle CPU-s, from the ledger's per-pause detail (spread by length in old logs
    without it)."""
    user, p = turn.user, turn.pauses
    if p.detail:
        out = [(d.start, d.end, d.cpu_idle_s) for d in p.detail]
        return out, max([x[2] for x in out] + [0.0])
    words = user.words
    spans: list[tuple[float, float]] = []
    if words:
        spans.append((user.speech_start, words[0].start))
        spans += [(a.end, b.start) for a, b in zip(words, words[1:]) if b.start > a.end]
        spans.append((words[-1].end, words[-1].end + p.tail_ms / 1000.0))
    total = sum(b - a for a, b in spans) or 1e-9
    out = [(a, b, p.cpu_idle_s * (b - a) / total) for a, b in spans]
    return out, max([x[2] for x in out] + [0.0])
