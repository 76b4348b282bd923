"""The reply guard's rules: what makes a written reply a miss (a copy of an earlier one), how many tries a
reply gets, and how long it may be. Breaking character (banned phrases) is the persona's to judge."""

from __future__ import annotations

import re

from voiceos.listen.transcript import normalise

ATTEMPTS = 3  # a reply that misses (out of character, a copy) is written again, this many times in all
SMALL_TALK_SENTENCES = 2  # a reply's length in sentences...
DETAIL_SENTENCES = 6  # ...unless the user asks for detail
REPLIES_REMEMBERED = 500  # her replies kept for the copy check, whether the prompt's history keeps them or not:
# a reply must not be the same as any of them...
EARLIER_REPLIES_CHECKED = 20  # ...nor copy a sentence or the start of one of her last 20
ECHO_MIN_WORDS = 5  # a sentence of the user's this long said back is an echo ("How are you?" back is not)
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


def repeats_earlier(text: str, earlier: list[str], *, whole: bool, min_words: int = 3) -> str:
    """Small models copy their own earlier replies from the history ("I'm glad you're feeling this way."
    turn after turn), and asked the same thing again they answer the same way. A miss: the same whole reply
    as one of `earlier` (`whole`), or, against the last `EARLIER_REPLIES_CHECKED` of them, a finished
    sentence of `min_words`+ words said in one or a start of `min_words` + 1 words one started with. The
    reason, or ""."""
    norm = normalise(text)
    if whole and norm in {normalise(r) for r in earlier}:
        return "repeats an earlier reply"
    recent = earlier[-EARLIER_REPLIES_CHECKED:]
    if len(norm.split()) > min_words and any(normalise(e).startswith(norm) for e in recent):
        return "starts like an earlier reply"
    said_before = {normalise(x) for x in sentences_of(recent)}
    finished = _SENTENCES.split(text.strip())
    if not re.search(r"[.!?][\"')]*$", text.strip()):
        finished = finished[:-1]  # the last sentence is still being written
    for sentence in finished:
        words = normalise(sentence)
        if len(words.split()) >= min_words and words in said_before:
            return "repeats an earlier sentence"
    return ""


_ABOUT_THEMSELVES = re.compile(r"\b(my|me|i|am i|do i|did i)\b", re.I)


def asks_about_themselves(user_text: str) -> bool:
    """A question of the user's about themselves ("What is my name?", "What do I do?"). A small model answers
    such a question as itself, mirroring its pronoun ("My name is…", "I work as…"); the reply may not open
    with "My" or "I" (`OPENINGS_BARRED_FOR_QUESTIONS_ABOUT_THEM`)."""
    questions = [s for s in _SENTENCES.split(user_text.strip()) if s.rstrip().endswith("?")]
    return any(_ABOUT_THEMSELVES.search(q) for q in questions)


OPENINGS_BARRED_FOR_QUESTIONS_ABOUT_THEM = ("My", "I")


def says_back(text: str, user_text: str, *, whole: bool) -> str:
    """A reply that is the user's words back (whole), or says a long sentence of theirs again. The reason,
    or ""."""
    return "says the user's words back" if repeats_earlier(text, [user_text], whole=whole,
                                                          min_words=ECHO_MIN_WORDS) else ""
