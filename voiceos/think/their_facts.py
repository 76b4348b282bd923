"""The user's facts in Samantha's replies: what a question of theirs asks her to remember, whether a reply
says it, and whether a reply claims it as hers.

A 0.5B model given "their name is Amara" in its notes and asked "do you remember my name?" still answers
"Of course I remember!" and no name, or takes the facts for its own ("I'm on a narrowboat too"). The reply
guard asks these questions of every reply, and the persona scorecard (`voiceos eval`) scores replies with
the same rules.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from difflib import SequenceMatcher

from voiceos.think.character import normalise
from voiceos.think.fact_finding import PEOPLE, PETS
from voiceos.think.user_profile import Fact, UserProfile

MISSPELT_MIN_LETTERS = 6  # words this long count as the same when they are this similar (difflib's ratio)
MISSPELT_SIMILARITY = 0.85
CLAIM_WINDOW_WORDS = 3  # a user's fact is claimed when "i'm", "my"… come at most this many words before it
_CLAIMS = ("i'm", "i am", "im", "i work", "i live", "i have", "i've", "i was", "my")
_NOT_CLAIMS = ("you", "your", "you're", "you are", "youre", "yours", "not", "never")  # "I'm not a pilot" denies
_WORD = re.compile(r"[\w']+")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")

# What a question about themselves asks for, by the kind of fact that answers it.
_ASKS_FOR = {
    "name": re.compile(r"\b(my name|who am i|who i am|what am i called|what i'm called|who('s| is) (this|talking|"
                       r"speaking|here)|what (do|did|should) you call me)\b"),
    "work": re.compile(r"\b(my (job|work|profession|career)|for (work|a living)|what (do|did) i (do|say i do)|"
                       r"where do i work|what i do)\b"),
    "home": re.compile(r"\b(where (do|did) i (live|move|moved|come from|say i live)|where am i (from|living|based)|"
                       r"(what|which) (city|town|country|place) (am|do|did) i\b|"
                       r"where i (live|moved|am from|'m from)|my (city|town|home|hometown|country))\b"),
    "likes": re.compile(r"\b(my (hobby|hobbies|favou?rite \w+)|what (\w+ )?(do|did) i (love|like|enjoy|play)|"
                        r"what i (love|like|enjoy|play))\b"),
}
_MINE = re.compile(r"\bmy (\w+(?: pig)?)\b")  # "my brother", "my dog", "my guinea pig"
_PET_WORDS = {*PETS, *PETS.values(), "pet", "pets"}
_PERSON_WORDS = {*PEOPLE, *PEOPLE.values()}
_SAME_PEOPLE = ({"mother", "mom", "mum"}, {"father", "dad"}, {"grandmother", "grandma", "granny"},
                {"grandfather", "grandpa", "grandad", "granddad"}, {"child", "kid", "son", "daughter"},
                {"aunt", "auntie"})
_NOT_TELLING = {"about", "their", "there", "with", "from", "named", "called", "little", "some", "really", "very",
                "just", "been", "years", "year", "months", "month", "weeks", "week", "days", "ago", "kind", "sort",
                "work", "works", "working", "live", "lives", "living", "moved", "move", "have", "favourite",
                "favorite", "love", "loves", "like", "likes", "enjoy", "play", "plays", "playing", "this", "that",
                "these", "those", "older", "younger", "new", "old"}


def _questions(text: str) -> list[str]:
    """The sentences of `text` that ask something: a question, or a "do you remember …" said flat."""
    return [normalise(s) for s in _SENTENCE.split(text.strip())
            if s.rstrip().endswith("?") or "remember" in s.lower()]


def _people_alike(word: str) -> set[str]:
    singular = next((one for one, many in PEOPLE.items() if word in (one, many)), word)
    return next((group for group in _SAME_PEOPLE if singular in group), {singular})


def asked_about(profile: UserProfile, user_text: str) -> list[Fact]:
    """The facts of `profile` that a question in `user_text` asks her to remember ("What's my name?", "What
    did I say my puppy is called?", "Where do I live?"); none when it asks nothing of the kind."""
    asked: list[Fact] = []
    for question in _questions(user_text):
        for kind, pattern in _ASKS_FOR.items():
            if pattern.search(question):
                asked += profile.of_kind(kind)[-1:] if kind != "likes" else profile.of_kind(kind)
        for word in _MINE.findall(question):
            if word in _PET_WORDS:
                pets = profile.of_kind("pet")
                asked += [f for f in pets if word in normalise(f.value)] or pets
            elif word in _PERSON_WORDS:
                alike = _people_alike(word)
                asked += [f for f in profile.of_kind("family") if alike & set(_WORD.findall(normalise(f.value)))]
    return list(dict.fromkeys(asked))


@dataclass(frozen=True)
class Remembering:
    """What a question asks her to remember: the words a reply that remembers it says ("Omar"), and how an
    answer about them opens ("Your name is Amara", "You run a bakery"; a small model asked "what do I do?"
    answers as itself: "I run a bakery")."""

    words: tuple[str, ...] = ()
    opening: str = "You"
    not_the_answer: tuple[str, ...] = ()  # asked their name, her own is not it ("Your name is Samantha")


def remembering(profile: UserProfile, user_text: str, her_name: str) -> Remembering:
    """What `user_text` asks her to remember of `profile` (no words when it asks nothing she knows)."""
    asked = asked_about(profile, user_text)
    words = tuple(dict.fromkeys(word for fact in asked for word in telling_words(fact)))
    if any(fact.kind == "name" for fact in asked):
        return Remembering(words, "Your name is", (her_name,))
    return Remembering(words)


def telling_words(fact: Fact) -> tuple[str, ...]:
    """The words of `fact` that a reply saying it would use: a name in it ("Biscuit", "Omar", "Lisbon") or,
    but for a person or a pet (whose name is what is asked), its plainest words ("firefighter", "bakery");
    the user's name for their name."""
    if fact.kind == "name":
        return (fact.value,)
    words = _WORD.findall(fact.value)
    names = [w for w in words[1:] if w[0].isupper()] + [w for w in words[:1] if w[0].isupper()]
    if names or fact.kind in ("family", "pet"):
        return tuple(dict.fromkeys(names))
    plain = [w.lower() for w in words if len(w) >= 4 and w.lower() not in _NOT_TELLING and w not in names]
    return tuple(dict.fromkeys([*names, *plain]))


def says_any(text: str, words: Iterable[str]) -> bool:
    """Whether `text` has one of `words` as a whole word, in any case."""
    low = normalise(text)
    return any(re.search(rf"(?<![\w']){re.escape(normalise(word))}(?![\w'])", low) for word in words)


def _same_word(said: str, told: str) -> bool:
    """The same word, or a long one misspelt ("gardner" for "gardener"): a small model's spelling slips."""
    return said == told or (min(len(said), len(told)) >= MISSPELT_MIN_LETTERS
                            and SequenceMatcher(None, said, told).ratio() >= MISSPELT_SIMILARITY)


def claimed(text: str, fact: str) -> str:
    """The words in which `text` says `fact` (the user's) of herself ("i'm a nurse", "my brother omar"): a
    first-person word at most `CLAIM_WINDOW_WORDS` before it, and no "you" or "not" there, or "as a nurse, I…".
    "" when none."""
    fact_words = _WORD.findall(normalise(fact))
    if not fact_words:
        return ""
    for sentence in _SENTENCE.split(normalise(text)):
        words = _WORD.findall(sentence)
        for i in range(len(words) - len(fact_words) + 1):
            if not all(_same_word(a, b) for a, b in zip(words[i : i + len(fact_words)], fact_words)):
                continue
            before = " " + " ".join(words[max(0, i - CLAIM_WINDOW_WORDS) : i]) + " "
            if any(f" {c} " in before for c in _CLAIMS) and not any(f" {n} " in before for n in _NOT_CLAIMS):
                return " ".join(words[max(0, i - CLAIM_WINDOW_WORDS) : i + len(fact_words)])
            after = words[i + len(fact_words) : i + len(fact_words) + 2]
            if before.endswith(" as a ") and after[:1] in (["i"], ["i'm"]):  # "as a nurse, i'm always tired"
                return " ".join(["as a", *fact_words, after[0]])
    return ""
