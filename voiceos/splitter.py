"""Streamed LLM text → speakable clauses, as early as they can be spoken naturally.

The first clause may be short (a word or two ending in a comma or full stop: "Oh," "Sure,") so speech starts
sooner; later
clauses wait for more words so espeak's prosody stays natural. TTS synthesises a clause while the LLM
writes the next, so audio stays gapless once it starts.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from voiceos.spoken import has_letters, speakable

# Punctuation ends a clause when a space follows — or at the very end of what has been written so far,
# when it cannot be a decimal point or an abbreviation: saves waiting for the next token.
_SENTENCE_END = re.compile(
    r"[.!?…]+[\"')\]]*(?=\s)|[!?…]+$|(?<![0-9])(?<!\b[A-Z])(?<!\bMr|\bDr|\bSt|\bMs)(?<!\bMrs)\.$")
_CLAUSE_END = re.compile(r"[,;:—–]+(?=\s)|(?<![0-9])[,;:]$|\s-\s")


class ClauseSplitter:
    """Feed text pieces with `feed()`; it yields clauses ready to speak. `flush()` yields the rest."""

    def __init__(self, first_min_words: int = 1, min_words: int = 5, max_words: int = 14) -> None:
        self.first_min_words = first_min_words
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
        need = self.first_min_words if self.emitted == 0 else self.min_words
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
        if cut is None and _words(text) > self.max_words and text[-1].isspace():
            cut = len(text.rstrip())
        if cut is None:
            return None
        self._buffer = text[cut:].lstrip()
        return text[:cut]


def _words(text: str) -> int:
    return len(speakable(text).split())
