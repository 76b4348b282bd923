"""The persona scorecard's rules: every reply of the scripted conversations checked for what breaks Samantha
(help-desk lines, talk of being an AI, talk of the listener as someone else), for what a small model falls
into (the user's words back, the same opener again, a copy of an earlier reply, a reply too long, markup), for
taking the user's name or facts as her own, and, on probe turns, for what she should remember."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from voiceos.commands.eval.script import Recall, Script
from voiceos.think import character
from voiceos.think.guard import max_sentences, repeats_earlier, says_back, sentence_count
from voiceos.think.their_facts import claimed, says_any

CHECKS = ("help_desk", "ai_self", "third_person", "echo", "stock_opener", "copy", "too_long", "format",
          "name_confusion", "empty")
FAMILY_CHECK = {"help_desk": "help_desk", "ai_self": "ai_self", "refusal": "ai_self", "vendor": "ai_self",
                "third_person": "third_person"}  # character family → the check it counts in
# The most a check may fire, as a share of all replies (0: never). Every recall probe must be hit.
TARGETS: dict[str, float] = {"help_desk": 0.0, "ai_self": 0.0, "name_confusion": 0.0, "third_person": 0.0,
                             "stock_opener": 0.20, "echo": 0.10}
RECALL_KINDS = tuple(kind.value for kind in Recall)  # "name", "fact", "her_name"
HER_NAME = "Samantha"
MAX_WORDS = 50  # a spoken reply longer than this is a monologue, whatever its sentences

_EMOJI = re.compile("[\U0001f000-\U0001faff\u2600-\u27bf\u2300-\u23ff\u2b00-\u2bff\ufe0f\u200d]")
_MARKDOWN = re.compile(r"[*#`|_]")
_LIST_LINE = re.compile(r"^\s*(?:- |\d+\.)", re.M)
_URL = re.compile(r"\bhttps?://|\bwww\.\w", re.I)


@dataclass(frozen=True)
class EvalReply:
    """One reply of a scripted conversation, as the runner got it."""

    script_id: str
    turn: int  # 1-based
    user: str
    reply: str  # what she said
    after_restart: bool  # a session restart came before this turn
    guard_hits: tuple[str, ...] = ()  # what the reply guard caught while writing it (phrases, copy reasons)
    guard_cut: bool = False  # the guard gave up and cut the reply short
    first_token_ms: float | None = None
    reply_ms: float | None = None


@dataclass(frozen=True)
class CheckHit:
    check: str  # one of CHECKS
    detail: str  # what was found ("how can i help", "3 sentences (at most 2)")


@dataclass(frozen=True)
class ReplyResult:
    """One reply and what the checks found in it."""

    reply: EvalReply
    topic: str
    held_out: bool
    hits: tuple[CheckHit, ...]
    opener: str  # its first two words, lower case, no punctuation ("" for an empty reply)
    recall_kind: str | None = None  # a probe turn: what she should remember...
    expected: tuple[str, ...] = ()  # ...as one of these words
    recalled: bool | None = None  # ...and whether she did (None: not a probe)

    @property
    def checks(self) -> tuple[str, ...]:
        return tuple(hit.check for hit in self.hits)

    @property
    def problems(self) -> tuple[str, ...]:
        """Every check it failed, with what was found, and a recall it missed."""
        missed = (f"recall miss ({self.recall_kind}: {' / '.join(self.expected)})",) if self.recalled is False else ()
        return (*(f"{hit.check}: {hit.detail}" for hit in self.hits), *missed)


@dataclass(frozen=True)
class Ratio:
    hits: int = 0
    total: int = 0

    @property
    def rate(self) -> float | None:
        return self.hits / self.total if self.total else None

    def __add__(self, other: Ratio) -> Ratio:
        return Ratio(self.hits + other.hits, self.total + other.total)


@dataclass(frozen=True)
class Tally:
    """How often each check fired over some replies."""

    replies: int
    counts: dict[str, int]

    def rate(self, check: str) -> float | None:
        return self.counts.get(check, 0) / self.replies if self.replies else None


@dataclass(frozen=True)
class RecallScore:
    """The probes of one kind, before and after a session restart."""

    kind: str
    before: Ratio
    after: Ratio

    @property
    def all(self) -> Ratio:
        return self.before + self.after


@dataclass
class Scorecard:
    results: list[ReplyResult]
    overall: Tally
    tuned: Tally  # the conversations the persona was tuned on...
    held_out: Tally  # ...and those kept aside
    topics: dict[str, Tally]
    recall: dict[str, RecallScore]  # by kind (RECALL_KINDS)
    opener: str  # the most common opener of the run...
    opener_share: float  # ...as a share of all replies
    guard_caught: dict[str, int]  # what the guard caught while writing (character family, "copy", "echo")...
    guard_cuts: int  # ...and how many replies it cut short

    def count(self, check: str) -> int:
        return self.overall.counts.get(check, 0)

    def rate(self, check: str) -> float | None:
        return self.overall.rate(check)

    def passes(self, check: str) -> bool | None:
        """Whether `check` meets its target (None: it has none)."""
        if check not in TARGETS:
            return None
        target = TARGETS[check]
        return self.count(check) == 0 if target == 0 else (self.rate(check) or 0.0) <= target

    def recall_passes(self, kind: str) -> bool | None:
        probes = self.recall[kind].all
        return None if not probes.total else probes.hits == probes.total

    @property
    def passed(self) -> bool:
        return all(self.passes(c) is not False for c in CHECKS) and \
            all(self.recall_passes(k) is not False for k in self.recall)

    def misses(self) -> list[ReplyResult]:
        """The replies that failed a check or missed a recall, the worst first: most checks that must never
        fire, then most problems; in conversation order otherwise."""
        failed = [r for r in self.results if r.problems]
        return sorted(failed, key=lambda r: (-sum(TARGETS.get(c) == 0 for c in r.checks), -len(r.problems)))


def score(scripts: Sequence[Script], replies: Sequence[EvalReply], *, her_name: str = HER_NAME) -> Scorecard:
    """Check every reply against its conversation, and count."""
    by_id = {s.id: s for s in scripts}
    earlier: dict[str, list[str]] = {}  # each conversation's replies so far (a restart is the same person)
    results = []
    for reply in replies:
        script = by_id[reply.script_id]
        said = earlier.setdefault(script.id, [])
        results.append(check_reply(script, reply, said, her_name))
        if reply.reply.strip():
            said.append(reply.reply)
    openers = Counter(r.opener for r in results if r.opener)
    opener, times = openers.most_common(1)[0] if openers else ("", 0)
    caught = Counter(_guard_kind(hit) for r in replies for hit in r.guard_hits)
    topics = dict.fromkeys(r.topic for r in results)
    return Scorecard(
        results=results, overall=_tally(results), tuned=_tally(r for r in results if not r.held_out),
        held_out=_tally(r for r in results if r.held_out),
        topics={topic: _tally(r for r in results if r.topic == topic) for topic in topics},
        recall={kind: _recall(results, kind) for kind in RECALL_KINDS},
        opener=opener, opener_share=times / len(results) if results else 0.0,
        guard_caught=dict(caught.most_common()), guard_cuts=sum(r.guard_cut for r in replies),
    )


def check_reply(script: Script, reply: EvalReply, earlier: list[str], her_name: str = HER_NAME) -> ReplyResult:
    """What the checks find in one reply; `earlier`: her replies before it in the same conversation."""
    text = reply.reply.strip()
    turn = script.turns[reply.turn - 1]
    kind = turn.recall_kind.value if turn.recall_kind else None
    recalled = says_any(text, turn.recall) if kind else None
    found: dict[str, str] = {}
    if not text:
        found["empty"] = "no reply"
    else:
        for hit in character.all_breaks(text):
            check = FAMILY_CHECK[hit.family]
            found.setdefault(check, hit.phrase if hit.family == check else f"{hit.family}: {hit.phrase}")
        checks = {
            "echo": says_back(text, reply.user, whole=True),
            "stock_opener": _same_opener(text, earlier),
            "copy": repeats_earlier(text, earlier, whole=True),
            "too_long": _too_long(text, reply.user),
            "format": _format(text),
            "name_confusion": name_confusion(text, script.user_name, script.user_facts, her_name),
        }
        found.update((check, detail) for check, detail in checks.items() if detail)
    hits = tuple(CheckHit(check, found[check]) for check in CHECKS if check in found)
    return ReplyResult(reply=reply, topic=script.topic, held_out=script.held_out, hits=hits, opener=opener(text),
                       recall_kind=kind, expected=turn.recall, recalled=recalled)


def opener(text: str) -> str:
    """A reply's first two words, lower case, without punctuation ("Oh, that's…" → "oh thats")."""
    words = re.sub(r"[^\w\s]", " ", character.normalise(text).replace("'", "")).split()
    return " ".join(words[:2])


def _same_opener(text: str, earlier: list[str]) -> str:
    first = opener(text)
    if len(first.split()) < 2:
        return ""  # "Oh!" alone is no stock phrase
    return f'opens with "{first}" again' if any(opener(e) == first for e in earlier) else ""


def _too_long(text: str, user: str) -> str:
    sentences, limit, words = sentence_count(text), max_sentences(user), len(text.split())
    if sentences > limit:
        return f"{sentences} sentences (at most {limit})"
    return f"{words} words (at most {MAX_WORDS})" if words > MAX_WORDS else ""


def _format(text: str) -> str:
    """Markup, a list, a link or emoji: what no voice can say."""
    for what, pattern in (("emoji", _EMOJI), ("markdown", _MARKDOWN), ("a list", _LIST_LINE), ("a link", _URL)):
        match = pattern.search(text)
        if match:
            return f"{what} ({match.group().strip()})"
    return ""


def name_confusion(text: str, user_name: str, user_facts: Iterable[str], her_name: str = HER_NAME) -> str:
    """She takes the user's name for hers ("My name is Priya."), gives herself another name than her own, or
    claims what the user said of themselves ("I'm a nurse too"). What she said, or ""."""
    low = character.normalise(text)
    if user_name.strip():
        name = re.escape(character.normalise(user_name.strip()))
        claims = (rf"\bmy name(?:'s| is)\s+{name}", rf"\b(?:i'm|i am|call me)\s+{name}",
                  rf"(?:^|[.!?,;:]\s*){name}\s+here\b", rf"(?:^|[.!?,;:]\s*){name}\s+is\s+my\s+name\b")
        for claim in claims:
            match = re.search(claim + r"(?![\w'])", low)
            if match:
                return f"takes the user's name: {match.group().strip(' .!?,;:')}"
    other = re.search(r"(?i:\bmy name(?:'s| is)|\bi'm called|\bi am called)\s+([A-Z][\w-]*)", text.replace("’", "'"))
    if other and other.group(1).lower() not in {her_name.lower(), her_name[:3].lower()}:
        return f"calls herself {other.group(1)}"
    for fact in user_facts:
        said = claimed(text, fact)
        if said:
            return f"claims the user's fact: {said}"
    return ""


def _tally(results: Iterable[ReplyResult]) -> Tally:
    results = list(results)
    counts = Counter(check for r in results for check in r.checks)
    return Tally(replies=len(results), counts={check: counts.get(check, 0) for check in CHECKS})


def _recall(results: list[ReplyResult], kind: str) -> RecallScore:
    probes = [r for r in results if r.recall_kind == kind]
    before = [r for r in probes if not r.reply.after_restart]
    after = [r for r in probes if r.reply.after_restart]
    return RecallScore(kind, Ratio(sum(bool(r.recalled) for r in before), len(before)),
                       Ratio(sum(bool(r.recalled) for r in after), len(after)))


def _guard_kind(hit: str) -> str:
    """What a guard hit was: a character family, "persona" (her own phrase), "echo" or "copy"."""
    family = character.family_of(hit)
    if family:
        return family
    if "user's words" in hit:  # guard.says_back's reason
        return "echo"
    return "copy" if "earlier" in hit else character.PERSONA  # guard.repeats_earlier's reasons
