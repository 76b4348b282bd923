"""Conversation memory within a token budget, and the facts Samantha keeps about the user.

Old exchanges are dropped from the front when the history outgrows its budget — several at once, so the
prompt prefix (which llama.cpp keeps evaluated) changes rarely. Facts the user stated (their name, their
work) are restated in front of the newest user turn, so she remembers them after the exchanges that held
them are gone.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from voiceos.llm.prompt_format import PromptFormat
from voiceos.think.guard import REPLIES_REMEMBERED
from voiceos.think.persona import Persona

_NAME = re.compile(r"\b(?:my name is|my name's|call me|i'm called|i am called)\s+([A-Z][a-z]+)", re.I)
_IM_NAME = re.compile(r"\b(?:I'm|I am|this is)\s+([A-Z][a-z]{2,})\b")
_WORK = re.compile(
    r"\b(?:i work (?:as|at|in|on|for)|my job is|i'm working (?:as|at|on)|i am working (?:as|at|on))\s+([^.,!?]{2,60})",
    re.I,
)
_NOT_NAMES = {"Good", "Fine", "Okay", "Sorry", "Tired", "Here", "Back", "Just", "Not", "Happy", "Sure", "Really",
              "Very", "So", "Still", "Going", "Doing", "Trying", "Thinking", "Feeling", "Glad", "Done", "Home"}


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
    facts: dict[str, str] = field(default_factory=dict)
    dropped: int = 0  # exchanges dropped so far
    unanswered: str = ""  # the user's words of turns she was cut off from before saying anything
    said: deque[str] = field(default_factory=lambda: deque(maxlen=REPLIES_REMEMBERED))  # her replies, kept
    # past the history: a question asked again after its exchange was let go still gets a new answer

    def facts_text(self) -> str:
        if not self.facts:
            return ""
        known = "; ".join(f"their {k} is {v}" for k, v in sorted(self.facts.items()))
        return f"(Remember about your friend: {known}.) "

    def learn(self, user_text: str) -> None:
        if m := _NAME.search(user_text):
            self.facts["name"] = m.group(1).capitalize()
        elif (m := _IM_NAME.search(user_text)) and m.group(1) not in _NOT_NAMES:
            self.facts["name"] = m.group(1)
        if m := _WORK.search(user_text):
            self.facts["work"] = m.group(1).strip()

    def add(self, user: str, reply: str, interrupted: bool = False) -> None:
        self.learn(user)
        if interrupted and not reply:
            # Cut off before a word of hers was heard: no exchange of hers to show (a bare "—" in the history
            # has the model answer "—" from then on); the user's words go in front of their next turn.
            self.unanswered = f"{self.unanswered} {user}".strip()
            return
        user = f"{self.unanswered} {user}".strip()
        self.unanswered = ""
        shown = reply if not interrupted else reply.rstrip(" ,.") + " —"
        self.exchanges.append(Exchange(user, shown, interrupted))
        if reply:
            self.said.append(reply)
        self._fit()

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
        # Facts go in front of the newest user turn, not into the system text: the persona and history
        # before them stay byte-identical, so llama.cpp keeps them evaluated from turn to turn.
        said = f"{self.unanswered} {user_text}" if self.unanswered and user_text else self.unanswered or user_text
        return self.fmt.render(self.persona.system, self._turns(), self.facts_text() + said, close_user=final)

    def prefix(self) -> str:
        """Everything before the new user's words: what can be evaluated while waiting."""
        return self.prompt("", final=False)
