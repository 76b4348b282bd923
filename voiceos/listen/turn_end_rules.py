"""How much silence ends a turn, judged from its words, the LLM's end-of-turn probability and the voice.

Whisper puts a full stop after almost any stretch of audio, so punctuation alone cannot tell "and so my
fellow Americans." from "Sunday is the best part of the week."; the words (a trailing conjunction or
filler) and the language model's P(end) can.
"""

from __future__ import annotations

import re

from voiceos.config import EndpointConfig

_TRAILING_OPEN = {
    "and", "but", "or", "so", "because", "cause", "if", "when", "while", "that", "which", "who", "the", "a", "an",
    "to", "of", "in", "on", "at", "for", "with", "about", "my", "your", "our", "their", "his", "her", "is",
    "are", "was", "were", "um", "uh", "er", "like", "then", "than", "also", "just", "maybe", "i", "we",
    "it's", "i'm", "what", "how", "not", "very", "really", "from", "by", "as", "into", "think", "mean",
}

# Words that need a complement: a phrase that stops on one is unfinished even when Whisper hears a question
# ("Could you tell me more about?"). Not "not", "what" or "mean": "Why not?", "So what?", "What do you mean?".
_DANGLING = {
    "and", "but", "or", "because", "if", "that", "the", "a", "an", "to", "of", "in", "on", "at", "for", "with",
    "about", "my", "your", "our", "their", "his", "from", "by", "as", "into", "than",
}

_OPENERS = {"and", "so", "but", "or", "well", "because", "then", "also", "now"}
PREAMBLE_MAX_WORDS = 6  # "And so, my fellow Americans": a turn this short that opens with a connective
PREAMBLE_SURE_P = 0.9  # ...is taken as finished only when the LLM is this sure
LIKELY_END_P = 0.15  # P(end) at or above which finished-sounding words need only `complete_silence_ms`
UNSURE_END_P = 0.03  # between this and LIKELY_END_P: a sixth of the way towards `incomplete_silence_ms`
# The audio end-of-turn model (Smart Turn), set on the `tune` half of the turn-taking corpus: its P(complete)
# at the true end of a real sentence can be as low as 0.04 (`voiceos bench --turn-taking`, `endpoint.voice_complete_p`
# in the log), so it only vetoes clear cases:
HESITATION_MS = 1100  # a vetoed end waits out a hesitation of up to a second
QUESTION_VOICE_P = 0.5  # "…what happens?" (Whisper's "?" on a pause mid-sentence) in a voice below this...
QUESTION_SURE_END_P = 0.5  # ...unless the LLM is this sure the question is the whole turn
# "Could you tell me more about?": Whisper writes a question mark after a phrase that stops on a preposition
# in a rising voice. The LLM tells it from a whole question ending the same way ("What are you up to?"): on
# espeak-ng questions made for this (scripts/check_dangling_questions.py), P(end) 0.0000–0.0021 where the cut
# was heard as it was said, 0.05–0.98 on whole ones but "Do you want to come with?" (0.0002: it waits).
DANGLING_QUESTION_END_P = 0.003
STATEMENT_VOICE_P = 0.1  # "…can do for you as well." in a voice below this, and words the LLM...
STATEMENT_END_P = 0.5  # ...is less sure than this end the turn


def turn_sounds_complete(text: str) -> bool:
    """True when the words so far sound like a finished turn (a question or a full sentence)."""
    stripped = text.strip()
    if not stripped:
        return False
    words = re.findall(r"[A-Za-z']+", stripped.lower())
    if not words:
        return False
    if stripped.endswith("?") and not stripped.endswith("...?"):
        return True  # "How about you?", "So what?"
    if words[-1] in _TRAILING_OPEN or stripped.endswith((",", "...", "…", "-", "—", ";", ":")):
        return False
    if stripped.endswith("!"):
        return True
    return stripped.endswith(".") and len(words) >= 2


def _unpunctuated_but_whole(text: str) -> bool:
    """Whisper sometimes writes a turn in lower case with no punctuation at all ("and so my fellow americans
    ask not … for your country"): then only the words and the LLM can tell whether it is finished."""
    words = re.findall(r"[A-Za-z']+", text.lower())
    if len(words) < 3 or re.search(r"[.,?!;:…]", text) or words[-1] in _TRAILING_OPEN:
        return False
    return not (words[0] in _OPENERS and len(words) <= PREAMBLE_MAX_WORDS)  # "and so my fellow": a preamble


def _dangling_question(text: str, end_probability: float | None) -> bool:
    """A question mark after a word that leaves the phrase open ("…tell me more about?"), where the LLM all
    but rules out an end."""
    words = re.findall(r"[a-z']+", text.lower())
    return (bool(words) and words[-1] in _DANGLING and end_probability is not None
            and end_probability < DANGLING_QUESTION_END_P)


def confident_end(end_probability: float | None, cfg: EndpointConfig) -> bool:
    """The LLM is sure enough the turn ends here to answer a finished-sounding turn without delay."""
    return end_probability is not None and end_probability >= cfg.confident_end_p


def silence_needed_ms(text: str, end_probability: float | None, cfg: EndpointConfig,
                      voice_complete_p: float | None = None) -> int:
    """The silence that should end this turn, from its words, the LLM's end-of-turn probability and the
    audio end-of-turn model's P(complete).

    Whisper puts a full stop after almost any stretch of audio, so its punctuation alone cannot tell
    "and so my fellow Americans." from "Sunday is the best part of the week."; the language model can
    (P(end) 0.04 against 0.85 here). A question mark or a clear trailing connective decides outright.
    Words that look finished in a voice that clearly does not sound it ("… can do for you as well." after a
    hesitation) wait one out (`HESITATION_MS`), unless the LLM is sure the turn ends there.
    """
    ms = _silence_from_words(text, end_probability, cfg)
    if voice_complete_p is None or end_probability is None:
        return ms
    stripped = text.strip()
    if ms >= HESITATION_MS:
        return ms
    if stripped.endswith("?"):
        unsure = end_probability < QUESTION_SURE_END_P and voice_complete_p < QUESTION_VOICE_P
        return HESITATION_MS if unsure else ms
    if voice_complete_p < STATEMENT_VOICE_P and end_probability < STATEMENT_END_P:
        return HESITATION_MS
    return ms


def voice_matters(text: str, end_probability: float | None, cfg: EndpointConfig) -> bool:
    """Whether the audio end-of-turn model's verdict could change the silence this turn needs (it takes
    a core for a moment, so it is asked only then)."""
    return silence_needed_ms(text, end_probability, cfg, 0.0) != silence_needed_ms(text, end_probability, cfg, 1.0)


def _silence_from_words(text: str, end_probability: float | None, cfg: EndpointConfig) -> int:
    stripped = text.strip()
    confident = confident_end(end_probability, cfg)
    if not turn_sounds_complete(stripped) and not (confident and _unpunctuated_but_whole(stripped)):
        return cfg.incomplete_silence_ms
    if stripped.endswith("?") and _dangling_question(stripped, end_probability):
        return HESITATION_MS
    if stripped.endswith("?") or end_probability is None:
        return cfg.complete_silence_ms
    words = re.findall(r"[a-z']+", stripped.lower())
    if words and words[0] in _OPENERS and len(words) <= PREAMBLE_MAX_WORDS and end_probability < PREAMBLE_SURE_P:
        # "And so, my fellow Americans …": a short turn that opens with a connective is a preamble
        return cfg.incomplete_silence_ms
    if end_probability >= LIKELY_END_P:
        return cfg.complete_silence_ms
    if end_probability >= UNSURE_END_P:  # finished by its words, the model unsure: a little longer than "complete"
        return cfg.complete_silence_ms + (cfg.incomplete_silence_ms - cfg.complete_silence_ms) // 6
    return cfg.incomplete_silence_ms  # "The child almost hurt." (P(end) 0.006): the model hears it goes on
