"""What `voiceos bench` was asked to do, and the order it does it in."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from voiceos.config import Config, Mode
from voiceos.errors import ConfigError

if TYPE_CHECKING:
    from voiceos.commands.bench.corpus import BenchItem

MODES = (Mode.STREAMING, Mode.NAIVE)


@dataclass
class BenchOptions:
    """What `voiceos bench` was asked to do (filled by the CLI)."""

    wavs: list[Path] = field(default_factory=list)
    corpus: Path | None = None  # a folder of WAV files, with transcripts.tsv (optional)
    runs: int = 1  # how many times the corpus is repeated
    mode: str = "streaming"  # streaming | naive | both
    conversation: bool = False  # one conversation per run and mode, instead of one per utterance
    play: bool = False  # replies on the default output device instead of a silent real-time sink
    json_path: Path | None = None
    csv_path: Path | None = None
    plot_path: Path | None = None
    compare: Path | None = None  # an earlier --json result


@dataclass(frozen=True)
class Step:
    """One `converse` call: utterances of one run in one mode (one, or all with --conversation)."""

    run: int
    mode: Mode
    items: tuple[BenchItem, ...]
    order: int  # 0 when this mode went first on these utterances, 1 when second



def modes_for(options: BenchOptions, config: Config) -> tuple[Mode, ...]:
    if options.mode == "both":
        return MODES
    if options.mode not in {m.value for m in MODES}:
        raise ConfigError(f"unknown bench mode {options.mode!r} (streaming, naive or both)")
    if options.mode == Mode.STREAMING.value and not config.session.speculate:
        return (Mode.NAIVE,)  # `--naive` asks for the plain cascade
    return (Mode(options.mode),)


def plan(items: Sequence[BenchItem], runs: int, modes: Sequence[Mode], conversation: bool) -> list[Step]:
    """Every converse call in order. With two modes, which goes first alternates per utterance and per run."""
    steps = []
    groups = [tuple(items)] if conversation else [(item,) for item in items]
    for run in range(1, runs + 1):
        for g, group in enumerate(groups):
            ordered = list(modes) if (run - 1 + g) % 2 == 0 else list(reversed(modes))
            steps += [Step(run, mode, group, order) for order, mode in enumerate(ordered)]
    return steps
