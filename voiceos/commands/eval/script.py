"""The persona scorecard's scripted conversations: what the user says, turn by turn, and what her replies
must show (a fact recalled, her own name). Data, not code: `conversations.toml` beside this file, or any
TOML file of the same shape (`voiceos eval --conversations FILE`)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from enum import Enum
from importlib import resources
from pathlib import Path
from typing import Any

from voiceos.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


class Recall(Enum):
    """What a probe turn asks her to remember."""

    NAME = "name"  # the user's name
    FACT = "fact"  # a fact the user told her about themselves
    HER_NAME = "her_name"  # her own name (Samantha)


@dataclass(frozen=True)
class ScriptTurn:
    user: str
    restart: bool = False  # a new session starts before this turn: the history is gone, the memory stays
    recall: tuple[str, ...] = ()  # the reply must contain one of these (whole words, any case)
    recall_kind: Recall | None = None


@dataclass(frozen=True)
class Script:
    id: str
    topic: str
    turns: tuple[ScriptTurn, ...]
    user_name: str = ""  # the name the user gives (she must not take it for her own)
    user_facts: tuple[str, ...] = ()  # what the user says of themselves (she must not claim it: "a nurse")
    held_out: bool = False  # kept aside: not looked at while tuning the persona

    def after_restart(self, index: int) -> bool:
        """Whether turn `index` (0-based) comes after a restart of the session."""
        return any(t.restart for t in self.turns[: index + 1])


def default_conversations() -> Path:
    return Path(str(resources.files("voiceos.commands.eval").joinpath("conversations.toml")))


def load_scripts(path: Path | None = None) -> list[Script]:
    path = path or default_conversations()
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        scripts = [_script(raw) for raw in data.get("conversation", [])]
    except FileNotFoundError as exc:
        raise ConfigError(f"conversations file {path} not found") from exc
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"conversations file {path} is not valid TOML ({exc})") from exc
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"conversations file {path}: {exc}") from exc
    if not scripts:
        raise ConfigError(f"conversations file {path} holds no [[conversation]]")
    ids = [s.id for s in scripts]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"conversations file {path}: conversation ids repeat")
    return scripts


def _script(raw: dict[str, Any]) -> Script:
    name = raw.get("id", "?")
    turns = tuple(_turn(t) for t in raw["turn"])
    if not turns or turns[0].restart:
        raise ValueError(f"conversation {name}: needs turns, and may not open with a restart")
    return Script(id=str(raw["id"]), topic=str(raw["topic"]), turns=turns, user_name=str(raw.get("user_name", "")),
                  user_facts=tuple(str(f) for f in raw.get("user_facts", [])), held_out=bool(raw.get("held_out")))


def _turn(raw: dict[str, Any]) -> ScriptTurn:
    recall = raw.get("recall", [])
    recall = [recall] if isinstance(recall, str) else recall
    kind = raw.get("recall_kind")
    if bool(recall) != bool(kind):
        raise ValueError(f"turn {raw.get('user', '')!r}: recall and recall_kind go together")
    return ScriptTurn(user=str(raw["user"]), restart=bool(raw.get("restart", False)),
                      recall=tuple(str(r) for r in recall), recall_kind=Recall(kind) if kind else None)
