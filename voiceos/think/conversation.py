"""Conversation memory within a token budget, and what Samantha knows about the user.

Old exchanges are dropped from the front when the history outgrows its budget — several at once, so the
prompt prefix (which llama.cpp keeps evaluated) changes rarely. What the user said about themselves (their
name, their work, who and what they care about) is kept in their profile (`think.user_profile`): saved
across sessions when the conversation has a store, and told to the model as a note in front of the newest
user turn, so she remembers it after the exchanges that held it are gone and the prefix stays the same.
"""

from __future__ import annotations

import copy
import logging
import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from voiceos.errors import VoiceosError
from voiceos.llm.prompt_format import PromptFormat
from voiceos.think.guard import REPLIES_REMEMBERED, asks_about_themselves
from voiceos.think.persona import Persona
from voiceos.think.their_facts import Remembering, asked_about, remembering, telling_words
from voiceos.think.user_profile import Fact, ProfileStore, UserProfile

log = logging.getLogger(__name__)

_NAMED = re.compile(r"\b(?:named|called) (\w+)")  # the name in a fact about someone ("a brother named Omar")
CLAIMED_KINDS = ("name", "work", "home")  # what is the user's alone: said by her as her own, it is a confusion
NOTE_OPENING = "Notes about the person you are talking with, not about you:"
NOTE_ASKED = "They ask about it; remind them:"
NOTE_WORDS = ("notes about the person", "not about you", "they ask about it", "remind them")  # never hers to say
NOT_HERS_KINDS = ("work", "home", "family", "pet", "likes")  # facts whose words she may not say of herself ("my
# brother Omar", "I'm on a narrowboat", "I'm in a community orchestra"); loving what they love is no claim


@dataclass
class Exchange:
    user: str
    reply: str
    interrupted: bool = False


@dataclass
class Conversation:
    persona: Persona
    fmt: PromptFormat
    count_tokens: Callable[[str], int]
    history_budget: int  # tokens of exchanges kept
    exchanges: list[Exchange] = field(default_factory=list)
    memory: ProfileStore | None = None  # where the profile is kept across sessions (None: this session only)
    profile: UserProfile = field(default_factory=UserProfile)  # loaded from `memory` when there is one
    dropped: int = 0  # exchanges dropped so far
    unanswered: str = ""  # the user's words of turns she was cut off from before saying anything
    said: deque[str] = field(default_factory=lambda: deque(maxlen=REPLIES_REMEMBERED))  # her replies, kept
    # past the history: a question asked again after its exchange was let go still gets a new answer

    def __post_init__(self) -> None:
        if self.memory is not None:
            self.profile = self.memory.load()

    def learn(self, user_text: str) -> list[Fact]:
        """What `user_text` tells about the user that was not known: kept in the profile (and saved)."""
        learned = self.profile.learn(user_text)
        if learned and self.memory is not None:
            try:
                self.memory.save(self.profile)
            except VoiceosError as exc:  # a full disk or a read-only folder: she remembers for this session
                log.warning("%s", exc)
        return learned

    def add(self, user: str, reply: str, interrupted: bool = False) -> list[Fact]:
        """A finished exchange joins the history; the facts it told about the user that are new."""
        learned = self.learn(user)
        if interrupted and not reply:
            # Cut off before a word of hers was heard: no exchange of hers to show (a bare "—" in the history
            # has the model answer "—" from then on); the user's words go in front of their next turn.
            self.unanswered = f"{self.unanswered} {user}".strip()
            return learned
        user = f"{self.unanswered} {user}".strip()
        self.unanswered = ""
        shown = reply if not interrupted else reply.rstrip(" ,.") + " —"
        self.exchanges.append(Exchange(user, shown, interrupted))
        if reply:
            self.said.append(reply)
        self._fit()
        return learned

    def _turns(self) -> list[tuple[str, str]]:
        return list(self.persona.examples) + [(e.user, e.reply) for e in self.exchanges]

    def _history_tokens(self) -> int:
        return sum(self.count_tokens(e.user) + self.count_tokens(e.reply) + 12 for e in self.exchanges)

    def drop_oldest(self) -> None:
        if self.exchanges:
            self.exchanges.pop(0)
            self.dropped += 1

    def _fit(self) -> None:
        if self._history_tokens() <= self.history_budget:
            return
        while self.exchanges and self._history_tokens() > self.history_budget * 0.6:
            self.exchanges.pop(0)
            self.dropped += 1

    def prompt(self, user_text: str, *, final: bool = True) -> str:
        # What she knows of the user goes in front of the newest user turn, not into the system text: the
        # persona and history before it stay byte-identical, so llama.cpp keeps them evaluated turn to turn.
        said = f"{self.unanswered} {user_text}" if self.unanswered and user_text else self.unanswered or user_text
        return self.fmt.render(self.persona.system, self._turns(), said, close_user=final, note=self.note(said))

    def claims(self, user_text: str = "") -> tuple[str, ...]:
        """What she must not say as her own in this conversation: who the user is — their name, work and home,
        known or said in `user_text` (the turn she answers) — in the first person ("my name is priya", "i'm
        priya", "i work as a nurse"): a small model asked "what is my name?" answers "My name is Priya", and
        told "call me Priya" answers "I'm Priya". What they love she may love too. Nor the words of the note
        about them (`note`), which a small model reads out."""
        profile = self._known_with(user_text)
        # Names keep their capitals: the guard reads the phrases in any case, but the last attempt's sampling
        # step bars them token by token, and "Kenji" is not written with the tokens of "kenji".
        others = [m.group(1) for fact in profile.facts if (m := _NAMED.search(fact.value))]  # Omar, Rex
        profile.facts = [fact for fact in profile.facts if fact.kind in CLAIMED_KINDS]
        told = [sentence.strip(" .") for sentence in profile.in_their_words().split(". ")]
        name = profile.name
        mine = [f"{lead} {name}" for lead in ("i'm", "i am", "my name's", "call me")] if name else []
        mine += [f"{name} is my name"] if name else []
        mine += [f"{lead} {other}" for other in others for lead in ("my name is", "my name's", "i'm", "i am")]
        her = self.persona.name
        if name.lower() != her.lower():  # nor call them by her name ("Your name is Samantha")...
            mine += [f"your name is {her}", f"you're {her}", f"you are {her}"]
            mine += [f"{name}'s name is {her}"] if name else []
        if asks_about_themselves(user_text):  # ...nor, asked who they are, answer who she is
            mine += [f"my name is {her}", f"i'm {her}", f"i am {her}"]
        work = [f"{lead} {f.value}" for f in profile.of_kind("work") for lead in ("i'm", "i am")
                if f.value.lower().startswith(("a ", "an "))]
        home = [f"{lead} {f.value}" for f in profile.of_kind("home") for lead in ("i'm", "i am", "i live")]
        return tuple(dict.fromkeys(p for p in (*told, *mine, *work, *home, *NOTE_WORDS) if len(p.split()) >= 2))

    def _known_with(self, user_text: str) -> UserProfile:
        """The profile with what `user_text` (the turn she answers) tells, not kept: a copy."""
        profile = copy.deepcopy(self.profile)
        profile.learn(user_text)
        return profile

    def not_hers(self, user_text: str = "") -> tuple[str, ...]:
        """The words of the user's facts (known, or told in `user_text`) that she may not say of herself
        (`their_facts.claimed`): "firefighter", "narrowboat", "Omar"."""
        facts = [f for f in self._known_with(user_text).facts if f.kind in NOT_HERS_KINDS]
        return tuple(dict.fromkeys(word for fact in facts for word in telling_words(fact)))

    def asked_to_remember(self, user_text: str) -> Remembering:
        """Asked in `user_text` about something they told her ("what's my brother called?"): what a reply
        that remembers it says ("Omar"); no words when the question asks nothing she knows."""
        return remembering(self.profile, user_text, self.persona.name)

    def note(self, user_text: str = "") -> str:
        """What she knows about the user, for the model, as notes about them ("their name is Priya; they work
        as a nurse"): told plainly ("Priya works as a nurse") or in the user's words ("My name is Priya"), a
        small model takes the name and facts for its own or reads them out (measured with `voiceos eval`).
        When `user_text` asks about one of them, the note says which, last, where a small model heeds it."""
        told = self.profile.in_their_words()
        if not told:
            return ""
        notes = _reworded(told, _ABOUT_THEM)
        asked = asked_about(self.profile, user_text)
        if asked:  # what she should say, in the words she should say it: read out, it is still right
            return f"{NOTE_OPENING} {notes}. {NOTE_ASKED} {_reworded(UserProfile(asked).in_their_words(), _TO_THEM)}."
        return f"{NOTE_OPENING} {notes}."

    def prefix(self) -> str:
        """Everything before the new user's words: what can be evaluated while waiting."""
        return self.prompt("", final=False)


_ABOUT_THEM = (("My ", "their "), ("I am ", "they are "), ("I ", "they "))  # "their name is Priya"
_TO_THEM = (("My ", "your "), ("I am ", "you are "), ("I ", "you "))  # "your name is Priya"


def _reworded(told: str, swaps: tuple[tuple[str, str], ...]) -> str:
    """The user's facts in their words ("My name is Priya. I am from Kenya.") said of them by `swaps`, one
    clause each: "their name is Priya; they are from Kenya"."""
    clauses = []
    for sentence in told.rstrip(".").split(". "):
        mine, theirs = next(((m, t) for m, t in swaps if sentence.startswith(m)), ("", ""))
        clauses.append(theirs + sentence[len(mine) :])
    return "; ".join(clauses)
