"""Samantha's persona: the system text, few-shot examples and the guard's banned phrases (a TOML file)."""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from voiceos.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


@dataclass(frozen=True)
class Persona:
    name: str
    system: str
    examples: tuple[tuple[str, str], ...]  # (user, reply) pairs shown as earlier turns
    banned: tuple[str, ...]  # lower-case phrases that break character

    def breaks_character(self, text: str) -> str:
        """The banned phrase found in `text` ("" when it is in character)."""
        low = text.lower().replace("’", "'")
        whole_words = (rf"(?<![\w']){re.escape(phrase)}(?![\w'])" for phrase in self.banned)
        return next((phrase for phrase, pattern in zip(self.banned, whole_words) if re.search(pattern, low)), "")

    def might_break_character(self, text: str, following: str = "") -> bool:
        """True when `text` ends with the first words of a banned phrase ("I'm sorry," → "i'm sorry, but i"):
        the next words decide, so it should not be spoken yet. `following`: what is already written after
        `text`; words there that do not go on with the phrase ("I'm happy | to hear" is not "happy to help")
        settle it at once."""
        low = " " + " ".join(text.lower().replace("’", "'").split())
        after = following.lower().replace("’", "'").split()
        last_partial = bool(following) and not following[-1].isspace()
        for phrase in self.banned:
            words = phrase.split()
            for k in range(1, len(words)):
                if low.endswith(" " + " ".join(words[:k])) and _could_go_on(words[k:], after, last_partial):
                    return True
        return False


def _could_go_on(rest: list[str], after: list[str], last_partial: bool) -> bool:
    """Whether the words `after` may still be the start of `rest` (the last of them may be half-written)."""
    for i, word in enumerate(after[: len(rest)]):
        half = last_partial and i == len(after) - 1
        if word != rest[i] and not (half and rest[i].startswith(word)):
            return False
    return True


def load_persona(path: Path | None = None) -> Persona:
    try:
        if path is None:
            raw = resources.files("voiceos.think").joinpath("personas/samantha.toml").read_text()
        else:
            raw = Path(path).read_text()
        data = tomllib.loads(raw)
        return Persona(
            name=data.get("name", "Samantha"),
            system=" ".join(data["system"].split()),
            examples=tuple((e["user"], e["samantha"]) for e in data.get("example", [])),
            banned=tuple(p.lower() for p in data.get("guard", {}).get("banned", [])),
        )
    except FileNotFoundError as exc:
        raise ConfigError(f"persona file {path} not found") from exc
    except (KeyError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"persona file {path} is not a valid persona TOML ({exc})") from exc
