"""Samantha's persona: the system text, few-shot examples and her own banned phrases (a TOML file); the
phrase families that break anyone's character are `voiceos.think.character`'s."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from voiceos.errors import ConfigError
from voiceos.think.character import CharacterBreak, all_phrases, breaks, might_break

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


@dataclass(frozen=True)
class Persona:
    name: str
    system: str
    examples: tuple[tuple[str, str], ...]  # (user, reply) pairs shown as earlier turns
    extras: tuple[str, ...] = ()  # her own phrases that break character, beyond the families of `character`

    @property
    def banned(self) -> tuple[str, ...]:
        """Every lower-case phrase that breaks character: the families' (`character.FAMILIES`) and her own."""
        return all_phrases(self.extras)

    def character_break(self, text: str) -> CharacterBreak | None:
        """The first phrase in `text` that breaks character, and its family (None when it is in character)."""
        return breaks(text, self.extras)

    def breaks_character(self, text: str, also: tuple[str, ...] = ()) -> str:
        """The banned phrase found in `text` ("" when it is in character). `also`: phrases that break character
        in this conversation besides (the user's name and facts claimed as hers: `Conversation.claims`)."""
        hit = breaks(text, (*self.extras, *also))
        return hit.phrase if hit else ""

    def might_break_character(self, text: str, following: str = "", also: tuple[str, ...] = ()) -> bool:
        """True when `text` ends with the first words of a banned phrase ("I'm sorry," → "i'm sorry, but i"):
        the next words decide, so it should not be spoken yet. `following`: what is already written after
        `text`; words there that do not go on with the phrase ("I'm happy | to hear" is not "happy to help")
        settle it at once."""
        return might_break(text, following, (*self.extras, *also))


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
            extras=tuple(str(p) for p in data.get("guard", {}).get("banned", [])),
        )
    except FileNotFoundError as exc:
        raise ConfigError(f"persona file {path} not found") from exc
    except (KeyError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"persona file {path} is not a valid persona TOML ({exc})") from exc
