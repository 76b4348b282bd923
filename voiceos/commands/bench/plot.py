"""The bench's waterfall: per turn, one bar per stage from the end of speech; modes side by side."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from voiceos.commands.bench.metrics import TurnMetrics

# The waterfall: (label, key of the turn record's trace_ms), every time measured from the end of speech.
STAGES = (
    ("end of turn", "turn_decided"),
    ("STT done", "stt_done"),
    ("first token", "first_token"),
    ("first clause", "first_clause"),
    ("first audio", "first_audio_ready"),
    ("voice-to-voice", "first_sample_out"),
)

STAGE_COLOURS = ("#9e9e9e", "#3b6ea8", "#6aa84f", "#e6a23c", "#a64d79", "#c0392b")



def turn_label(turn: TurnMetrics) -> str:
    return f"run {turn.run} {turn.utterance}" + (f" ({turn.part + 1})" if turn.part else "")


def plot_waterfall(path: Path, turns: Sequence[TurnMetrics]) -> Path:
    """Per turn, one bar per stage from the end of speech to when the stage was reached; modes side by side.

    Rows are shared between the modes, so the same utterance of the same run sits at the same height."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    answered = [t for t in turns if t.answered]
    modes = list(dict.fromkeys(t.mode for t in answered)) or ["streaming"]
    rows = list(dict.fromkeys(turn_label(t) for t in answered)) or ["(no answered turn)"]
    ncol = len(STAGES) if len(modes) > 1 else 3
    legend_in = 0.3 * math.ceil(len(STAGES) / ncol)  # inches of legend above the plots
    fig, axes = plt.subplots(1, len(modes), figsize=(max(8.0, 6.5 * len(modes)), 1.6 + legend_in + 0.62 * len(rows)),
                             sharex=True, sharey=True, squeeze=False)
    for ax, mode in zip(axes[0], modes):
        draw_stages(ax, [t for t in answered if t.mode == mode], rows)
        ax.set_title(f"{mode}: stages from the end of speech", fontsize=10)
    axes[0][0].set_yticks(range(len(rows)))
    axes[0][0].set_yticklabels(rows, fontsize=8)
    axes[0][0].set_ylim(len(rows) - 0.5, -0.5)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=ncol, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 1 - (legend_in + 0.1) / fig.get_figheight()))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def draw_stages(ax: Any, turns: Sequence[TurnMetrics], rows: list[str]) -> None:
    """One panel of the waterfall: a group of thin bars per turn, on the row named like the turn."""
    height = 0.8 / len(STAGES)
    labelled: set[str] = set()
    for turn in turns:
        i = rows.index(turn_label(turn))
        for j, (label, key) in enumerate(STAGES):
            v = turn.trace_ms.get(key)
            if v is None:
                continue
            y = i - 0.4 + (j + 0.5) * height
            ax.barh(y, v, height=height * 0.9, color=STAGE_COLOURS[j], label=None if label in labelled else label)
            labelled.add(label)
        ends = [v for _, key in STAGES if (v := turn.trace_ms.get(key)) is not None]
        v2v = turn.trace_ms.get("first_sample_out")
        note = (f" {v2v:.0f} ms" if v2v is not None else "") + (" (talked over, cut)" if turn.interrupted else "")
        ax.text(max([*ends, 0.0]), i + 0.4 - 0.5 * height, note, va="center", fontsize=7,
                color="#c0392b" if turn.interrupted else "black")
    ax.axvline(0, color="black", lw=0.8)
    ax.margins(x=0.1)  # room for the voice-to-voice label
    ax.grid(axis="x", ls=":", alpha=0.6)
    ax.set_xlabel("ms after the end of the user's speech")
