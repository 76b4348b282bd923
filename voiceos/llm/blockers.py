"""Sampling steps that keep a reply from writing what the reply guard would reject.

llama-cpp-python hands a logits processor the whole context and the next token's logits; these set the
logit of one token to -inf when writing it would copy an earlier sentence or complete a banned phrase.
"""

from __future__ import annotations

import re
import string
from typing import Any, Protocol

import numpy as np


class ReplyTokenizer(Protocol):
    def reply_tokens(self, text: str) -> list[int]: ...

    def token_text(self, token: int) -> str: ...


class CopyBlocker:
    """A sampling step that keeps a reply from copying an earlier sentence word for word.

    Small models copy their own earlier replies from the history ("I'm glad you're enjoying this." turn after
    turn). The reply guard catches a copy once it is written and has the reply written again, which costs the
    time of both. This step stops it while it is written: once the sentence being written has followed one of
    the `avoid` sentences for `MIN_SHARED` tokens, that sentence's next token is not allowed, so the model says
    it another way ("I'm glad you" → "I'm glad to…")."""

    MIN_SHARED = 3

    def __init__(self, llm: ReplyTokenizer, avoid: list[str], prompt_len: int) -> None:
        self._llm = llm
        self._prompt_len = prompt_len
        self._avoid = [ids for sentence in avoid for ids in _written_forms(llm, sentence)
                       if len(ids) > self.MIN_SHARED]
        self._seen = 0  # generated tokens looked at so far
        self._sentence_start = 0  # where the sentence being written starts (index into generated tokens)
        self._twins: dict[int, tuple[int, ...]] = {}

    def __call__(self, input_ids: Any, logits: Any) -> Any:
        generated = _generated(input_ids, self._prompt_len)
        for i in range(self._seen, len(generated)):
            if any(c in self._llm.token_text(generated[i]) for c in ".!?\n"):
                self._sentence_start = i + 1
        self._seen = len(generated)
        current = generated[self._sentence_start :]
        k = len(current)
        if k >= self.MIN_SHARED:
            for ids in self._avoid:
                if len(ids) > k and ids[:k] == current:
                    for token in self._with_glued_twin(ids[k]):
                        logits[token] = -np.inf
        return logits

    def _with_glued_twin(self, token: int) -> tuple[int, ...]:
        """`token` and, for a word that starts with a space (" when"), the same word without it ("when"):
        barred alone, the model writes the word glued to the last one ("twowhen") and goes on copying."""
        if token not in self._twins:
            text = self._llm.token_text(token)
            glued = self._llm.reply_tokens(text[1:]) if text.startswith(" ") and len(text) > 1 else []
            self._twins[token] = (token, glued[0]) if len(glued) == 1 else (token,)
        return self._twins[token]


class PhraseBlocker:
    """A sampling step that keeps a reply from writing a banned phrase ("I'm sorry, but I", "how can I assist").

    Once the last tokens are a banned phrase but for its last token, that token is not allowed. It is the
    last resort of the reply guard, not its first: the model then routes around the phrase, sometimes into
    an odd near-miss, where writing the reply anew usually gives a better one. But three attempts that all
    open with a refusal would leave the user with no answer at all."""

    def __init__(self, llm: ReplyTokenizer, banned: tuple[str, ...], prompt_len: int) -> None:
        self._prompt_len = prompt_len
        found: set[tuple[int, ...]] = set()
        for phrase in banned:
            natural = re.sub(r"\bai\b", "AI", re.sub(r"\bi\b", "I", phrase))  # the guard's list is lower-case
            for spelling in {phrase, natural, natural[:1].upper() + natural[1:], string.capwords(natural)}:
                found.update(tuple(ids) for ids in _written_forms(llm, spelling) if ids)
        self._sequences = [list(ids) for ids in found]

    def __call__(self, input_ids: Any, logits: Any) -> Any:
        generated = _generated(input_ids, self._prompt_len)
        for ids in self._sequences:
            k = len(ids) - 1
            if k <= len(generated) and (k == 0 or generated[-k:] == ids[:-1]):
                logits[ids[-1]] = -np.inf
        return logits


class OpenerBlocker:
    """A sampling step that keeps a reply from opening with given words.

    A small model falls into a stock opener ("That's a great idea!", "Oh, I love…") and opens reply after reply
    with it. For a two-word opening, once the reply's first word is its first, the first token of its second
    word is not allowed, so the reply opens another way ("Oh, that's" → "Oh, I…"); a one-word opening ("My")
    may not be the reply's first token at all. `openings`: as written ("Oh, that's", "My")."""

    def __init__(self, llm: ReplyTokenizer, openings: list[str], prompt_len: int) -> None:
        self._prompt_len = prompt_len
        barred: dict[tuple[int, ...], set[int]] = {}
        for opening in openings:
            words = opening.split()
            if len(words) == 1:
                first_token = llm.reply_tokens(words[0])[:1]
                barred.setdefault((), set()).update(first_token)
            if len(words) != 2:
                continue
            second = llm.reply_tokens(" " + words[1])
            bare = words[0].rstrip(",.!?;:")
            for first in {words[0], bare} - {""}:
                if second:
                    barred.setdefault(tuple(llm.reply_tokens(first)), set()).add(second[0])
        self._barred = barred
        self._longest = max((len(first) for first in barred), default=0)

    def __call__(self, input_ids: Any, logits: Any) -> Any:
        generated = input_ids[self._prompt_len :]
        if len(generated) <= self._longest:
            for token in self._barred.get(tuple(int(t) for t in generated), ()):
                logits[token] = -np.inf
        return logits


def opening_of(reply: str) -> str:
    """A reply's first two words, as written ("Oh, that's"): what `OpenerBlocker` keeps from coming back."""
    return " ".join(reply.split()[:2])


def _written_forms(llm: ReplyTokenizer, text: str) -> list[list[int]]:
    """The tokens of `text` as a reply may write it: opening the reply, or after earlier words."""
    return [llm.reply_tokens(text), llm.reply_tokens(" " + text)]


def _generated(input_ids: Any, prompt_len: int) -> list[int]:
    """The tokens written so far by this reply (llama-cpp-python hands a sampling step the whole context)."""
    return [int(t) for t in input_ids[prompt_len:]]
