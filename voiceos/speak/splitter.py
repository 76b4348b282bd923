"""Streamed LLM text → speakable clauses, as early as they can be spoken naturally.

The first clause may be short (a word or two ending in a comma or full stop: "Oh," "Sure,") so speech starts
sooner. A first sentence without early punctuation is cut at its first phrase boundary: after an opening
"That's" or "It's" ("That's | the perfect place"), before a phrase opener once two words are written
("I'm not sure | what you mean …"), or after `first_max_words`: waiting for its full stop would cost a token
(~40 ms) per word. Later clauses wait for more words so espeak's prosody stays natural — unless the speech
already queued (`ahead_s`) is about to run out, when they are cut at the next phrase boundary the same way,
so the audio stays gapless after a short first clause.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from voiceos.speak.speakable import has_letters, speakable

# Punctuation ends a clause when a space follows — or at the very end of what has been written so far,
# when it cannot be a decimal point or an abbreviation: saves waiting for the next token.
_SENTENCE_END = re.compile(
    r"[.!?…]+[\"')\]]*(?=\s)|[!?…]+$|(?<![0-9])(?<!\b[A-Z])(?<!\bMr|\bDr|\bSt|\bMs)(?<!\bMrs)\.$")
_CLAUSE_END = re.compile(r"[,;:—–]+(?=\s)|(?<![0-9])[,;:]$|\s-\s")
# Words that open a new phrase: the first clause may end just before one of them.
_PHRASE_OPENERS = {
    "and", "but", "or", "so", "because", "since", "though", "although", "while", "when", "where", "which",
    "who", "whose", "that", "what", "how", "why", "if", "unless", "to", "for", "with", "about", "in", "on",
    "at", "from", "into", "after", "before", "until", "like",
    # a pronoun fused with its verb starts a clause ("I'm glad | you're here"); a bare "you" may be an object
    "i'm", "i've", "i'll", "i'd", "you're", "you've", "you'll", "you'd", "it's", "that's", "there's", "they're",
    "we're", "he's", "she's",
}
# An opening "That's" or "It's" is a phrase of its own: a reply may start speaking as soon as it is written
# ("That's… the perfect place"), a hesitation people make too. ("I'm… not sure" would split what belongs
# together, so "I'm" is not one of them.)
_POINTING_OPENERS = {"that's", "it's", "there's", "here's", "what's"}
_WORD = re.compile(r"\S+")
# Below this much queued speech a later clause is cut at its next phrase boundary: writing ~3 words and
# synthesising them takes ~0.2 s on 2 cores, so this keeps a margin against a gap.
HURRY_AHEAD_S = 0.6


class ClauseSplitter:
    """Feed text pieces with `feed()`; it yields clauses ready to speak. `flush()` yields the rest."""

    def __init__(self, first_min_words: int = 1, min_words: int = 5, max_words: int = 14,
                 first_phrase_words: int = 2, first_max_words: int = 4,
                 ahead_s: Callable[[], float] | None = None) -> None:
        """`ahead_s`: seconds of this reply's speech queued and not yet heard; when it runs low a later clause
        is cut as early as a first one. Without it, later clauses always wait for `min_words`."""
        self.ahead_s = ahead_s
        self.first_min_words = first_min_words
        self.first_phrase_words = first_phrase_words
        self.first_max_words = first_max_words
        self.min_words = min_words
        self.max_words = max_words
        self._buffer = ""
        self._in_code = False
        self.emitted = 0

    def feed(self, piece: str) -> Iterator[str]:
        self._buffer += piece
        while True:
            clause = self._take()
            if clause is None:
                return
            spoken = speakable(clause)
            if has_letters(spoken):
                self.emitted += 1
                yield spoken

    @property
    def pending(self) -> str:
        """Text fed but not yet given out as a clause."""
        return self._buffer

    def flush(self) -> Iterator[str]:
        rest, self._buffer = self._buffer, ""
        spoken = speakable(rest)
        if has_letters(spoken):
            self.emitted += 1
            yield spoken

    def _take(self) -> str | None:
        text = self._buffer
        if text.count("```") % 2 == 1:  # inside a code fence: wait for its end, it will be dropped
            return None
        hurry = self.emitted == 0 or (self.ahead_s is not None and self.ahead_s() < HURRY_AHEAD_S)
        need = self.first_min_words if self.emitted == 0 else self.min_words if not hurry else 2
        cut = None
        for match in _SENTENCE_END.finditer(text):
            line = text[text.rfind("\n", 0, match.start()) + 1 : match.start()]
            if line.strip().isdigit():  # "2." starting a list item, not the end of a sentence
                continue
            if _words(text[: match.end()]) >= need or self.emitted > 0:
                cut = match.end()
                break
        if cut is None:
            for match in _CLAUSE_END.finditer(text):
                if _words(text[: match.end()]) >= need:
                    cut = match.end()
                    break
        if cut is None and hurry:
            cut = self._phrase_cut(text, first=self.emitted == 0)
        if cut is None and _words(text) > self.max_words and text[-1].isspace():
            cut = len(text.rstrip())
        if cut is None:
            return None
        self._buffer = text[cut:].lstrip()
        return text[:cut]

    def _phrase_cut(self, text: str, *, first: bool) -> int | None:
        """Where a clause may end without punctuation: after an opening "That's" (first clause only), before
        a phrase opener once `first_phrase_words` words are written, or after `first_max_words` words."""
        words = list(_WORD.finditer(text))
        if first and words and _bare(words[0].group()) in _POINTING_OPENERS:
            return words[0].end()  # whole once its "'s" is written: waiting for the next word costs a token
        for k in range(self.first_phrase_words, len(words)):
            # the newest word may still grow ("what" → "whatever"), but the cut before it is a word boundary
            # either way, and waiting for the next token to be sure would cost ~45 ms
            if _bare(words[k].group()) in _PHRASE_OPENERS:
                return words[k - 1].end()
        complete = len(words) if text[-1:].isspace() else len(words) - 1
        if complete > self.first_max_words:
            return words[self.first_max_words - 1].end()
        return None


def voiced(clause: str) -> str:
    """The text to synthesise for a clause cut mid-sentence: a trailing comma keeps espeak's intonation
    open (a continuation, not a full stop)."""
    return clause if clause[-1:] in ".,;:!?…\"')" else clause + ","


def _bare(word: str) -> str:
    return word.lower().replace("’", "'").strip("\"'(")


def _words(text: str) -> int:
    return len(speakable(text).split())
