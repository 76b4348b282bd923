"""The bench's progress bar (on stderr, so results on stdout stay clean)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


@contextmanager
def progress_bar(total: int) -> Iterator[Callable[[str, bool], None]]:
    """A rich progress bar on stderr; yields `update(description, advance)`."""
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        console=Console(stderr=True), redirect_stdout=False)
    task = progress.add_task("bench", total=total)

    def update(description: str, advance: bool) -> None:
        progress.update(task, description=description, advance=1 if advance else 0)

    with progress:
        yield update
