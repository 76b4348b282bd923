"""`voiceos memory show|forget`: what Samantha remembers about the user across sessions."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from voiceos.errors import ConfigError
from voiceos.think.user_profile import Fact, ProfileStore


def _when(fact: Fact) -> str:
    """ "2026-12-02T10:41:00Z" as "2026-12-02 10:41 UTC" (an unreadable stamp as it is)."""
    try:
        return datetime.strptime(fact.learned, "%Y-%m-%dT%H:%M:%SZ").strftime("%Y-%m-%d %H:%M UTC")
    except ValueError:
        return fact.learned or "at an unknown time"


def run_memory(action: str, path: Path) -> int:
    """Show the remembered facts, or forget them all (deleting the file, even an unreadable one)."""
    store = ProfileStore(path)
    if action == "show":
        profile = store.load()  # an unreadable file: its ConfigError says how to clear it
        if profile.is_empty:
            print("Samantha remembers nothing about you yet.")
            print(f"(what she learns is kept in {path}; `voiceos chat --no-memory` keeps nothing)")
            return 0
        for fact in profile.facts:
            print(f"{fact.kind}: {fact.value} (learned {_when(fact)})")
        print(f"kept in {path}; `voiceos memory forget` deletes it")
        return 0
    if action == "forget":
        existed = path.exists()
        count = store.forget()
        print(f"forgot {count} fact(s)" + (f" (deleted {path})" if existed else ""))
        return 0
    raise ConfigError(f"unknown memory action {action!r}; use show or forget")
