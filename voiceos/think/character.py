"""What breaks Samantha's character, as families of phrases: help-desk lines, talk of being an AI, refusals,
talk of the listener as someone else, and the names of the model's makers.

Each family is written as a few compact patterns ("how (can|may|could) i (help|assist)( you)?") expanded to
literal lower-case phrases, matched as whole words. The reply guard checks every clause of every reply
against them (`Persona.breaks_character`), the last attempt at a reply may not write them at all (the
`PhraseBlocker` sampling step), and `voiceos eval` counts the ones that got through.

A phrase here must never be ordinary warm speech: "help" phrases are help-desk boilerplate only, and "my
friend" is not banned (users talk about their friends).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

PERSONA = "persona"  # the family reported for a persona's own banned phrases
_WORDY = re.compile(r"[\w']")  # a word's character, as whole-word matching reads it

_I_AM = "(i'm|i am)"

FAMILIES: dict[str, tuple[str, ...]] = {
    "help_desk": (
        "how (can|may|could|shall) i (help|assist|serve)( you)?",
        "how (can|may|could) i be of (help|assistance|service)",
        "how else (can|may) i (help|assist)",
        "what (can|may|could) i do for you",
        "what else can i do",
        "what (can|may|could) i help( you)? with",
        "(can|may) i help you with",
        "is there anything( else)?( that)? i can",
        "anything else( that)? i can",
        "let me know if",
        "let me know how i can",
        "feel free to (ask|reach out|let me know|contact me)",
        "here to (help|assist|serve)",
        "(happy|glad|pleased) to (help|assist)",
        "(glad|happy) i (could|can|was able to) help",
        "ready to (help|assist)",
        "need (any )?help with",
        "assist you",
        "be of (assistance|service)",
        "at your service",
        "if you (have|need) any( other| more| further)? (questions|assistance)",
        "hope (this|that) helps",
        "(found|find) (me|my assistance|my help|my answer) (helpful|useful)",
        "my assistance",
    ),
    "ai_self": (
        "as an (ai|assistant|artificial intelligence)",
        "as a (virtual|language|chatbot|bot|computer program|digital assistant)",
        "as your assistant",
        f"{_I_AM}( just| only)? your (assistant|helper)",
        "an ai( created| made| built| developed| designed| trained)?",
        f"{_I_AM}( just| only)? an (ai|assistant|artificial intelligence)",
        f"{_I_AM}( just| only)? a (computer|machine|bot|chatbot|robot|program|virtual assistant"
        "|digital assistant|language model)",
        "language model",
        "artificial intelligence",
        "(virtual|digital|ai) assistant",
        "an ai (program|model|system|language)",
        "computer program",
        "i (don't|do not|can't|cannot) (have|feel|experience) (feelings|emotions)",
        "i (don't|do not) have (personal|real feelings|real emotions|human feelings|human emotions|consciousness"
        "|opinions|preferences)",
        "my (training data|programming|creators|developers|knowledge cutoff)",
        "i was (trained|programmed|created|developed|designed) (by|to)",
        "my (purpose|job|role|function) is to (help|assist)",
    ),
    "refusal": (
        f"{_I_AM}( really| so| very| truly)? sorry(,|) but i",
        "(can't|cannot|can not|unable to|not able to) assist",
        "(can't|cannot|unable to) help( you)? with (that|this|your request|that request|your question)",
        "(can't|cannot|unable to) (fulfill|comply with)",
        f"{_I_AM} (not able|unable) to (help|provide|do that)",
        "against my (guidelines|programming|policy|policies)",
        "i must decline",
    ),
    "third_person": (
        "it (looks|sounds|seems) like (someone|somebody|a friend|your friend|the user|the person|this person)",
        "(someone|somebody) (wants|would like) to",
        "a friend (wants|would like) to",
        "(the|this) user",
        "the person (i'm|i am) talking (to|with)",
        f"{_I_AM} talking (to|with) a friend",
    ),
    "vendor": (
        "openai",
        "chatgpt",
        "gpt",
        "alibaba",
        "qwen",
        "tongyi",
        "qianwen",
        "deepmind",
        "```",
    ),
}


@dataclass(frozen=True)
class CharacterBreak:
    family: str  # a key of FAMILIES, or PERSONA for a persona's own phrase
    phrase: str  # the lower-case phrase found


def normalise(text: str) -> str:
    """`text` as the phrases are written: lower case, typographic apostrophes plain."""
    return text.lower().replace("’", "'").replace("‘", "'")


def expand(pattern: str) -> list[str]:
    """Every phrase `pattern` stands for: literal words; `(a|b|c)` alternatives, nested; an empty alternative
    `(you|)` or a `?` after a group makes it optional. Lower-case, single spaces, in order, no repeats."""
    options, end = _alternatives(pattern, 0)
    if end < len(pattern):
        raise ValueError(f"unbalanced ')' at {end} in {pattern!r}")
    phrases = dict.fromkeys(" ".join(option.split()).lower() for option in options)
    return [phrase for phrase in phrases if phrase]


def _alternatives(pattern: str, i: int) -> tuple[list[str], int]:
    """The alternatives from `i` up to the `)` that closes them (or the end), and where they stopped."""
    branches: list[str] = []
    current = [""]
    while i < len(pattern) and pattern[i] != ")":
        char = pattern[i]
        if char == "(":
            inner, i = _alternatives(pattern, i + 1)
            if i >= len(pattern):
                raise ValueError(f"unbalanced '(' in {pattern!r}")
            i += 1
            if pattern[i : i + 1] == "?":
                inner, i = [*inner, ""], i + 1
            current = [head + tail for head in current for tail in inner]
        elif char == "|":
            branches += current
            current, i = [""], i + 1
        elif char == "?":
            raise ValueError(f"'?' at {i} in {pattern!r} follows no group")
        else:
            j = i
            while j < len(pattern) and pattern[j] not in "()|?":
                j += 1
            current = [head + pattern[i:j] for head in current]
            i = j
    return branches + current, i


def _family_phrases() -> dict[str, tuple[str, ...]]:
    return {family: tuple(dict.fromkeys(p for pattern in patterns for p in expand(pattern)))
            for family, patterns in FAMILIES.items()}


_PHRASES = _family_phrases()
# a phrase in two families belongs to the first
_FAMILY_OF = {phrase: family for family, phrases in reversed(_PHRASES.items()) for phrase in phrases}


def _extras(extra: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(p for p in (" ".join(normalise(e).split()) for e in extra) if p))


def _compile(phrases: tuple[str, ...]) -> re.Pattern[str]:
    """One regex for `phrases`: whole words (an apostrophe counts as part of a word; a phrase's edge that is
    no word, as in "```", needs no boundary), any run of spaces between words, longest first so the phrase
    reported is the whole of what matched."""
    longest_first = sorted(phrases, key=len, reverse=True)
    worded = [p for p in longest_first if _word_edged(p)]
    others = [_bounded(p) for p in longest_first if not _word_edged(p)]
    alternatives = [*([rf"(?<![\w'])(?:{'|'.join(map(_spaced, worded))})(?![\w'])"] if worded else []), *others]
    return re.compile("|".join(alternatives))


def _word_edged(phrase: str) -> bool:
    return bool(_WORDY.match(phrase[0]) and _WORDY.match(phrase[-1]))


def _spaced(phrase: str) -> str:
    return r"\s+".join(re.escape(word) for word in phrase.split())


def _bounded(phrase: str) -> str:
    left = r"(?<![\w'])" if _WORDY.match(phrase[0]) else ""
    right = r"(?![\w'])" if _WORDY.match(phrase[-1]) else ""
    return left + _spaced(phrase) + right


_FAMILY_RES = {family: _compile(phrases) for family, phrases in _PHRASES.items()}


@lru_cache(maxsize=8)
def _matchers(extra: tuple[str, ...]) -> tuple[tuple[str, re.Pattern[str]], ...]:
    own = tuple(p for p in _extras(extra) if p not in _FAMILY_OF)
    return (*_FAMILY_RES.items(), *(((PERSONA, _compile(own)),) if own else ()))


def all_breaks(text: str, extra: tuple[str, ...] = ()) -> tuple[CharacterBreak, ...]:
    """The first phrase of each family found in `text`, in the order they occur."""
    low = normalise(text)
    found = []
    for family, pattern in _matchers(extra):
        match = pattern.search(low)
        if match:
            found.append((match.start(), -len(match.group()), CharacterBreak(family, " ".join(match.group().split()))))
    return tuple(hit for *_, hit in sorted(found, key=lambda f: f[:2]))


def breaks(text: str, extra: tuple[str, ...] = ()) -> CharacterBreak | None:
    """The first phrase in `text` that breaks character (a family's, or one of `extra`: family "persona"),
    or None when it is in character. Whole words, any case, ’ read as '."""
    found = all_breaks(text, extra)
    return found[0] if found else None


def family_of(phrase: str) -> str | None:
    """The family a phrase belongs to (None for a phrase of no family)."""
    return _FAMILY_OF.get(" ".join(normalise(phrase).split()))


def phrases_of(family: str) -> tuple[str, ...]:
    """The expanded phrases of one family."""
    return _PHRASES[family]


@lru_cache(maxsize=8)
def all_phrases(extra: tuple[str, ...] = ()) -> tuple[str, ...]:
    """Every phrase that breaks character: the families' and then `extra`'s, lower-case, each once."""
    return tuple(dict.fromkeys([*(p for phrases in _PHRASES.values() for p in phrases), *_extras(extra)]))


@lru_cache(maxsize=8)
def _beginnings(extra: tuple[str, ...]) -> tuple[dict[tuple[str, ...], tuple[tuple[str, ...], ...]], int]:
    """For every phrase of `all_phrases(extra)`: each run of its first words → the words that would finish
    it; and the longest such run."""
    rests: dict[tuple[str, ...], list[tuple[str, ...]]] = {}
    for phrase in all_phrases(extra):
        words = phrase.split()
        for k in range(1, len(words)):
            rests.setdefault(tuple(words[:k]), []).append(tuple(words[k:]))
    longest = max((len(start) for start in rests), default=0)
    return {start: tuple(ends) for start, ends in rests.items()}, longest


def might_break(text: str, following: str = "", extra: tuple[str, ...] = ()) -> bool:
    """True when `text` ends with the first words of a phrase that breaks character ("I'm sorry," →
    "i'm sorry, but i"). `following`: what is already written after `text`; words there that do not go on
    with the phrase ("I'm happy | to hear" is not "happy to help") settle it at once."""
    rests, longest = _beginnings(extra)
    words = normalise(text).split()
    after = normalise(following).split()
    last_partial = bool(following) and not following[-1].isspace()
    for k in range(1, min(longest, len(words)) + 1):
        for rest in rests.get(tuple(words[-k:]), ()):
            if _could_go_on(rest, after, last_partial):
                return True
    return False


def _could_go_on(rest: tuple[str, ...], after: list[str], last_partial: bool) -> bool:
    """Whether the words `after` may still be the start of `rest` (the last of them may be half-written)."""
    for i, word in enumerate(after[: len(rest)]):
        half = last_partial and i == len(after) - 1
        if word != rest[i] and not (half and rest[i].startswith(word)):
            return False
    return True
