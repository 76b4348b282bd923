"""The reply guard's rules: what makes a written reply a miss (a copy of an earlier one), how many tries a
reply gets, and how long it may be. Breaking character (banned phrases) is the persona's to judge."""

from __future__ import annotations

import re

from voiceos.listen.transcript import normalise

ATTEMPTS = 3  # a reply that misses (out of character, a copy) is written again, this many times in all
SMALL_TALK_SENTENCES = 2  # a reply's length in sentences...
DETAIL_SENTENCES = 6  # ...unless the user asks for detail
EARLIER_REPLIES_CHECKED = 20  # a reply must not copy these many most recent replies (history kept or not)
_SENTENCES = re.compile(r"(?<=[.!?])\s+")
_SENTENCE_ENDS = re.compile(r"[.!?]+(\s|$)")
_DETAIL = re.compile(r"\b(explain|tell me (more|about)|in detail|describe|story|how does|why does|walk me)\b", re.I)


def max_sentences(user_text: str) -> int:
    """How many sentences a reply to `user_text` may have."""
    return DETAIL_SENTENCES if _DETAIL.search(user_text) else SMALL_TALK_SENTENCES


def sentence_count(text: str) -> int:
    return len(_SENTENCE_ENDS.findall(text + " "))


def sentences_of(replies: list[str]) -> list[str]:
    """Every sentence of `replies`, in order."""
    return [sentence for reply in replies for sentence in _SENTENCES.split(reply)]


def repeats_earlier(text: str, earlier: list[str], *, whole: bool) -> str:
    """Small models copy their own earlier replies from the history ("I'm glad you're feeling this way."
    turn after turn). A miss: the same whole reply (`whole`), a finished sentence of 3+ words said in one of
    the `earlier` replies, or a start of 4+ words that one of them started with. The reason, or ""."""
    norm = normalise(text)
    earlier_norm = [normalise(r) for r in earlier]
    if whole and norm in earlier_norm:
        return "repeats an earlier reply"
    if len(norm.split()) >= 4 and any(e.startswith(norm) for e in earlier_norm):
        return "starts like an earlier reply"
    said_before = {normalise(x) for x in sentences_of(earlier)}
    finished = _SENTENCES.split(text.strip())
    if not re.search(r"[.!?][\"')]*$", text.strip()):
        finished = finished[:-1]  # the last sentence is still being written
    for sentence in finished:
        words = normalise(sentence)
        if len(words.split()) >= 3 and words in said_before:
            return "repeats an earlier sentence"
    return ""
