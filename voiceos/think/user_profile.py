"""What the user said about themselves, kept across sessions: their name, work, home, the people and pets
they care about, the things they love.

`think.fact_finding` finds them in each user turn; `UserProfile` keeps a few facts (one name, work and home; a
few pets, people and likes, newest last); `ProfileStore` keeps it as JSON in the user data folder, written whole
through a temporary file.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from voiceos.errors import ConfigError
from voiceos.think.fact_finding import WORK_VERBS, find_facts

log = logging.getLogger(__name__)

SCHEMA = "voiceos-memory/1"
ONE_EACH = ("name", "work", "home")  # a newer one replaces the older
MAX_PER_KIND = 3  # pets, people, likes: the oldest goes first
MAX_FACTS = 12


@dataclass(frozen=True)
class Fact:
    kind: str  # "name", "work", "home", "pet", "family" or "likes"
    value: str  # as it reads after the kind: "Theo", "a nurse", "in Lisbon", "a cat named Miso"
    learned: str  # when it was told, ISO-8601 UTC: "2026-12-02T10:41:00Z"


def utc_stamp(moment: datetime | None = None) -> str:
    """ISO-8601 UTC to the second, as `Fact.learned` holds it."""
    return (moment or datetime.now(timezone.utc)).astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- the profile ---------------------------------------------------------------------------------------------


def _same(old: str, new: str) -> bool:
    """Whether `new` tells nothing `old` did not: the same words, or less of them ("a cat" after "a cat named
    Miso")."""
    old, new = old.casefold(), new.casefold()
    return old == new or old.startswith(new + " named ")


def _replaces(old: str, new: str) -> bool:
    """Whether `new` is a newer or fuller telling of `old`: "a cat named Miso" for "a cat", "favourite food is
    sushi" for "favourite food is ramen"."""
    old, new = old.casefold(), new.casefold()
    if new.startswith(old + " named "):
        return True
    topic = re.match(r"favourite .+? is ", new)
    return bool(topic and old.startswith(topic.group(0)))


@dataclass
class UserProfile:
    """What Samantha knows about the user: a few facts, newest last."""

    facts: list[Fact] = field(default_factory=list)

    @property
    def name(self) -> str:
        return next((f.value for f in reversed(self.facts) if f.kind == "name"), "")

    @property
    def is_empty(self) -> bool:
        return not self.facts

    def of_kind(self, kind: str) -> list[Fact]:
        return [f for f in self.facts if f.kind == kind]

    def learn(self, user_text: str, now: str | None = None) -> list[Fact]:
        """Keep what `user_text` tells about the user; the facts that are new or changed (none for a fact
        already known)."""
        stamp = now or utc_stamp()
        told = [fact for kind, value in find_facts(user_text) if (fact := self.remember(Fact(kind, value, stamp)))]
        learned = [fact for fact in told if fact in self.facts]  # "I'm from Kenya but I live in Lisbon": one home
        if learned:
            log.debug("learned about the user: %s", ", ".join(f"{f.kind}={f.value!r}" for f in learned))
        return learned

    def remember(self, fact: Fact) -> Fact | None:
        """Add `fact` (replacing what it updates); itself when it was new, None when it was already known."""
        known = self.of_kind(fact.kind)
        if fact.kind in ONE_EACH:
            if known and known[-1].value.casefold() == fact.value.casefold():
                return None
            stale = known
        else:
            if any(_same(k.value, fact.value) for k in known):
                return None
            stale = [k for k in known if _replaces(k.value, fact.value)]
        self.facts = [f for f in self.facts if f not in stale] + [fact]
        self._trim()
        return fact

    def _trim(self) -> None:
        """At most one fact of each ONE_EACH kind, MAX_PER_KIND of the others, MAX_FACTS in all; oldest out."""
        kept: list[Fact] = []
        for fact in reversed(self.facts):
            limit = 1 if fact.kind in ONE_EACH else MAX_PER_KIND
            if sum(k.kind == fact.kind for k in kept) < limit:
                kept.append(fact)
        kept.reverse()
        while len(kept) > MAX_FACTS:
            kept.remove(next((f for f in kept if f.kind != "name"), kept[0]))
        self.facts = kept

    def in_their_words(self) -> str:
        """What is known, as the user said it: "My name is Priya. I work as a nurse…" ("" when nothing is
        known). A small model asked "what's my name?" answers this with "Your name is Priya"; told about the
        user in the third person, it tends to take the name for its own."""
        if self.is_empty:
            return ""
        lines = [f"My name is {self.name}."] if self.name else []
        return " ".join(lines + self._told(_Telling("", first_person=True)))

    def describe(self, her_name: str) -> str:
        """A short note for the model, from her side: "You are talking with Priya. Priya works as a nurse…"
        ("" when nothing is known)."""
        if self.is_empty:
            return ""
        name = self.name
        told = _Telling(name)
        lines = []
        if name:
            shared = f" {name} has the same name as you." if name.casefold() == her_name.casefold() else ""
            lines.append(f"You are talking with {name}.{shared}")
        return " ".join(lines + self._told(told))

    def _told(self, told: _Telling) -> list[str]:
        """Every fact but the name, one sentence each, as `told` words them."""
        lines = [told.work(fact.value) for fact in self.of_kind("work")[-1:]]
        lines += [told.home(fact.value) for fact in self.of_kind("home")[-1:]]
        family = [f.value for f in self.of_kind("family")]
        married = [v for v in family if v.startswith("married")]
        if married:
            lines.append(told.says("is", "am" if told.first_person else "are", married[-1]))
        has = [v for v in family if not v.startswith("married")] + [f.value for f in self.of_kind("pet")]
        if has:
            lines.append(told.says("has", "have", _listed(has)))
        likes = [f.value for f in self.of_kind("likes")]
        loved = [v for v in likes if not v.startswith("favourite ")]
        if loved:
            lines.append(told.says("loves", "love", _listed(loved)))
        lines += [told.owns(v) for v in likes if v.startswith("favourite ")]
        known = {"name", "work", "home", "family", "pet", "likes"}
        lines += [told.owns(f"{f.kind} is {f.value}") for f in self.facts if f.kind not in known]
        return lines


def _listed(values: list[str]) -> str:
    return values[0] if len(values) == 1 else f"{', '.join(values[:-1])} and {values[-1]}"


class _Telling:
    """Sentences about the user: by their name, else "the person you are talking with", then "they"."""

    def __init__(self, name: str, *, first_person: bool = False) -> None:
        self.name = name
        self.first = True
        self.first_person = first_person  # the user's own words: "I work as…", "My favourite…"

    def _subject(self) -> tuple[str, bool]:
        if self.first_person:
            return "I", False
        if self.name:
            return self.name, True
        if self.first:
            self.first = False
            return "The person you are talking with", True
        return "They", False

    def says(self, singular: str, plural: str, rest: str) -> str:
        subject, one = self._subject()
        return f"{subject} {singular if one else plural} {rest}."

    def owns(self, rest: str) -> str:
        subject, _ = self._subject()
        if subject == "I":
            return f"My {rest}."
        if subject == "They":
            return f"Their {rest}."
        if not self.name:
            return f"{subject} told you their {rest}."
        return f"{subject}'s {rest}."

    def work(self, value: str) -> str:
        head = value.split()[0].casefold()
        if head in WORK_VERBS and len(value.split()) > 1:  # "run a bakery": "Mei runs a bakery", "I run a bakery"
            return self.says(WORK_VERBS[head], head, value.split(maxsplit=1)[1])
        if "retired" in value.casefold() or "student" in value.casefold():
            return self.says("is", "am" if self.first_person else "are", value)
        if head in {"at", "in", "for", "with"}:
            return self.says("works", "work", value)
        return self.says("works as", "work as", value)

    def home(self, value: str) -> str:
        if value.casefold().startswith("from "):
            return self.says("is", "am" if self.first_person else "are", value)
        return self.says("lives", "live", value)


# --- keeping it ----------------------------------------------------------------------------------------------


def default_memory_path() -> Path:
    from platformdirs import user_data_dir

    return Path(user_data_dir("voiceos")) / "memory.json"


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


class ProfileStore:
    """The profile as a JSON file: read whole, written whole (a temporary file renamed over it)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def _unusable(self, why: str) -> ConfigError:
        return ConfigError(f"memory file {self.path} {why}; `voiceos memory forget` clears it")

    def load(self) -> UserProfile:
        """The saved profile (empty when there is none yet)."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return UserProfile()
        except (OSError, UnicodeDecodeError) as exc:
            raise self._unusable(f"cannot be read ({_one_line(exc)})") from exc
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise self._unusable(f"is not valid JSON ({_one_line(exc)})") from exc
        if not isinstance(data, dict) or data.get("schema") != SCHEMA:
            schema = data.get("schema") if isinstance(data, dict) else None
            raise self._unusable(f"is not a voiceos memory (schema {schema!r}, expected {SCHEMA!r})")
        profile = UserProfile([self._fact(raw) for raw in self._list(data.get("facts"))])
        profile._trim()
        return profile

    def _list(self, raw: Any) -> list[Any]:
        if not isinstance(raw, list):
            raise self._unusable("holds no list of facts")
        return raw

    def _fact(self, raw: Any) -> Fact:
        if not isinstance(raw, dict) or not all(isinstance(raw.get(k), str) and raw[k] for k in ("kind", "value")):
            raise self._unusable(f"holds a fact without a kind and value: {json.dumps(raw)[:60]}")
        return Fact(raw["kind"], raw["value"], str(raw.get("learned", "")))

    def save(self, profile: UserProfile) -> None:
        """Write `profile` whole: a crash leaves the old file or the new one, never half of one."""
        data = {"schema": SCHEMA,
                "facts": [{"kind": f.kind, "value": f.value, "learned": f.learned} for f in profile.facts]}
        text = json.dumps(data, ensure_ascii=False, indent=1) + "\n"
        tmp: str | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp")
            with os.fdopen(fd, "w", encoding="utf-8") as fh:  # mkstemp's file is the user's alone (0600)
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
            tmp = None
        except OSError as exc:
            raise ConfigError(f"cannot save memory file {self.path} ({_one_line(exc)})") from exc
        finally:
            if tmp is not None:
                Path(tmp).unlink(missing_ok=True)
        log.debug("saved %d fact(s) to %s", len(profile.facts), self.path)

    def forget(self) -> int:
        """Delete the saved profile (readable or not); how many facts it held (0 for none or an unreadable one)."""
        try:
            count = len(self.load().facts)
        except ConfigError:
            count = 0
        try:
            self.path.unlink(missing_ok=True)
            for leftover in self.path.parent.glob(f".{self.path.name}.*.tmp"):  # of a save cut short
                leftover.unlink(missing_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot delete memory file {self.path} ({_one_line(exc)})") from exc
        return count
