"""Turn LLM text into speakable language: no markdown, lists, code, links or emoji reach the speaker."""

from __future__ import annotations

import re

_CODE_FENCE = re.compile(r"```.*?(```|$)", re.S)
_INLINE_CODE = re.compile(r"`([^`]*)`")
_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")
_URL = re.compile(r"https?://\S+|www\.\S+")
_LIST_MARK = re.compile(r"(^|\n)\s*(?:[-*+•]|\d+[.)])\s+")
_HEADING = re.compile(r"(^|\n)\s*#{1,6}\s*")
_TABLE_RULE = re.compile(r"(^|\n)\s*\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*(?=\n|$)")
_EMPHASIS = re.compile(r"[*_~#>|]+|-{2,}")
_EMOJI = re.compile(
    "[\U0001f000-\U0001faff\U00002600-\U000027bf\U0001f900-\U0001f9ff\U00002b00-\U00002bff"
    "\U0000fe0f\U0000200d\U00002190-\U000021ff\U00002300-\U000023ff]+"
)
_ROLE_LEAK = re.compile(r"\b(?:Samantha|Assistant|User|Theodore)\s*:\s*", re.I)
_SPACES = re.compile(r"\s+")


def speakable(text: str) -> str:
    """Strip everything a voice should not read aloud; keep the words and sentence punctuation."""
    text = _CODE_FENCE.sub(" ", text)
    text = _INLINE_CODE.sub(r"\1", text)
    text = _LINK.sub(r"\1", text)
    text = _URL.sub("a link", text)
    text = _HEADING.sub(r"\1", text)
    text = _TABLE_RULE.sub(r"\1", text)
    text = _LIST_MARK.sub(r"\1", text)
    text = _EMOJI.sub("", text)
    text = _EMPHASIS.sub("", text)
    text = _ROLE_LEAK.sub("", text)
    text = text.replace("\n", " ")
    return _SPACES.sub(" ", text).strip()


def has_letters(text: str) -> bool:
    return any(ch.isalpha() for ch in text)
