"""The prompt a job reads: the conversation rendered for the model, fitted into its context, with the
user's words spelled as the LLM already read them.

The conversation is shared between the thinking worker (which reads it) and the voice loop (which adds each
finished exchange): `lock` guards it.
"""

from __future__ import annotations

import threading

from voiceos.errors import ConfigError
from voiceos.listen.transcript import normalise
from voiceos.llm.model import LanguageModel
from voiceos.think.conversation import Conversation
from voiceos.think.persona import Persona
from voiceos.think.user_profile import Fact

CONTEXT_MARGIN_TOKENS = 8  # room kept free besides a whole reply
_CLOSING_PUNCTUATION = " .?!,;:"


def steady_words(read: list[str], heard: list[str]) -> list[str]:
    """The words `heard` in a new pass, written as an earlier pass wrote them where the two agree.

    Whisper re-punctuates and re-cases the same audio from pass to pass ("At that high level the" →
    "At that high level, the air is pure."), and llama.cpp reuses only an identical token prefix: keeping
    the earlier spelling of the agreeing words keeps those words read. The last agreeing word takes the
    new spelling (its punctuation may have changed: "you." → "you,"), as do all the words after it."""
    same = 0
    for old, new in zip(read, heard):
        if normalise(old) != normalise(new) or not normalise(new):
            break
        same += 1
    same = min(same, len(heard)) - 1
    return read[:same] + heard[same:] if same > 0 else list(heard)


def context_needed(llm: LanguageModel, persona: Persona) -> int:
    """The fewest context tokens a reply needs: the persona's prompt (system text and examples, no history, no
    words yet), a whole reply and the margin."""
    persona_prompt = Conversation(persona, llm.fmt, llm.count_tokens, history_budget=0).prompt("")
    return len(llm.tokenize(persona_prompt)) + llm.config.max_reply_tokens + CONTEXT_MARGIN_TOKENS


def check_context(llm: LanguageModel, persona: Persona) -> None:
    """Raise `ConfigError` when the LLM's context cannot hold the persona's prompt and a whole reply."""
    needed = context_needed(llm, persona)
    if llm.n_ctx < needed:
        raise ConfigError(
            f"[llm] n_ctx = {llm.config.n_ctx}: too small for the persona {persona.name} and a reply of "
            f"[llm] max_reply_tokens = {llm.config.max_reply_tokens}: needs at least {needed} tokens")


class PromptFitter:
    """The prompts jobs read, fitted into the LLM's context (which must hold the persona and a whole reply)."""

    def __init__(self, llm: LanguageModel, conversation: Conversation) -> None:
        check_context(llm, conversation.persona)
        self.llm = llm
        self.conversation = conversation
        self.lock = threading.Lock()
        self.read_words: tuple[int, list[str]] = (-1, [])  # (utterance, its words now in the LLM's cache)

    def steady(self, utt_id: int, text: str) -> list[str]:
        """`text`'s words, spelled as the words of this utterance already read (see `steady_words`)."""
        read_utt, read = self.read_words
        return steady_words(read if read_utt == utt_id else [], text.split())

    def partial_prompt(self, words: list[str]) -> str:
        """The prompt with the user's words so far, their turn left open."""
        with self.lock:
            return self._fitted(" ".join(words), final=False)

    def reply_prompts(self, text: str) -> tuple[str, str]:
        """The reply's prompt for the user's `text`, and the same words without Whisper's closing
        punctuation and with the turn left open (the place to ask the LLM whether the turn is over)."""
        with self.lock:
            return self._fitted(text, final=True), self._fitted(text.rstrip(_CLOSING_PUNCTUATION), final=False)

    def prefix(self) -> str:
        """Persona and history: what can be read before the user says anything."""
        with self.lock:
            return self.conversation.prefix()

    def remember(self, user: str, spoken: str, interrupted: bool) -> list[Fact]:
        """A finished exchange joins the conversation; the facts about the user it told that are new."""
        with self.lock:
            return self.conversation.add(user, spoken, interrupted)

    def _fitted(self, text: str, *, final: bool) -> str:
        """The prompt for `text`, leaving room for a whole reply in the context: the oldest exchanges go
        first, and a turn too long on its own keeps its last words. Call with `lock` held."""
        room = self.llm.n_ctx - self.llm.config.max_reply_tokens - CONTEXT_MARGIN_TOKENS
        prompt = self.conversation.prompt(text, final=final)
        while len(self.llm.tokenize(prompt)) > room and self.conversation.exchanges:
            self.conversation.drop_oldest()
            prompt = self.conversation.prompt(text, final=final)
        words = text.split()
        while len(self.llm.tokenize(prompt)) > room and len(words) > 1:
            words = words[max(1, len(words) // 4) :]
            prompt = self.conversation.prompt(" ".join(words), final=final)
        return prompt
