"""Conversation memory: the history stays within its token budget (oldest exchanges dropped first), and
what the user said about themselves (their name, their work) outlives the exchange that held it."""

from __future__ import annotations

import pytest

from voiceos.llm.prompt_format import CHATML, GEMMA, TRANSCRIPT, PromptFormat
from voiceos.think.conversation import Conversation
from voiceos.think.persona import load_persona


def count_words(text: str) -> int:  # a stand-in tokenizer: one token a word
    return len(text.split())


def conversation(budget: int = 200, fmt: PromptFormat = CHATML) -> Conversation:
    return Conversation(load_persona(), fmt, count_words, budget)


def chat_about_the_sea(conv: Conversation, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        conv.add(f"Tell me about wave number {i}, I really want to know more about the waves today.",
                 f"Wave {i} is tall and green and full of quiet sounds, and I love it.")


def history_tokens(conv: Conversation) -> int:
    return sum(count_words(e.user) + count_words(e.reply) for e in conv.exchanges)


def test_history_never_exceeds_its_budget_and_drops_the_oldest_first() -> None:
    conv = conversation(budget=200)
    said = []
    for i in range(40):
        chat_about_the_sea(conv, 1, start=i)
        said.append(i)
        assert history_tokens(conv) <= 200
        kept = [int(e.user.split(",")[0].split()[-1]) for e in conv.exchanges]
        assert kept == said[-len(kept):], "memory must keep the newest exchanges, in order"
        assert kept and kept[-1] == i, "the exchange just made must be remembered"
    assert conv.dropped == 40 - len(conv.exchanges)


def test_the_prompt_holds_exactly_the_remembered_exchanges() -> None:
    conv = conversation(budget=120)
    chat_about_the_sea(conv, 12)
    prompt = conv.prompt("And what about the wind?")
    for i in range(12):
        remembered = any(e.user.startswith(f"Tell me about wave number {i},") for e in conv.exchanges)
        assert (f"wave number {i}," in prompt) == remembered, i
    assert prompt.rstrip().endswith("<|im_start|>assistant")
    assert prompt.index("And what about the wind?") > prompt.index("Tell me about wave number 11,")


@pytest.mark.parametrize("said", ["Hi, my name is Theo.", "hello, my name's theo and I'm tired", "Call me Theo.",
                                  "Hi Samantha, I'm Theo."])
def test_learns_the_users_name(said: str) -> None:
    conv = conversation()
    conv.add(said, "Nice to meet you!")
    assert conv.profile.name == "Theo"


@pytest.mark.parametrize("said", ["I'm tired.", "I am so happy today.", "I'm Just back from work."])
def test_does_not_take_moods_for_names(said: str) -> None:
    conv = conversation()
    conv.add(said, "Oh?")
    assert conv.profile.name == ""


@pytest.mark.parametrize("fmt", [CHATML, GEMMA, TRANSCRIPT], ids=lambda f: f.name)
def test_remembers_the_name_after_the_exchange_that_held_it_is_dropped(fmt: PromptFormat) -> None:
    conv = conversation(budget=150, fmt=fmt)
    conv.add("Hi Samantha, my name is Theo and I work as a letter writer.", "Oh, hello Theo! What a lovely job.")
    chat_about_the_sea(conv, 15)
    assert not any("Theo" in e.user for e in conv.exchanges), "the exchange should have been dropped by now"
    prompt = conv.prompt("Do you remember my name?")
    assert "Theo" in prompt
    assert "letter writer" in prompt
    # the reminder goes with the newest user turn, after the whole history (the cached prefix stays the same)
    assert prompt.index("Theo") > prompt.rindex("Wave 14 is tall")
    assert prompt.index("Theo") < prompt.index("Do you remember my name?")


def test_a_later_name_replaces_the_earlier_one() -> None:
    conv = conversation()
    conv.add("My name is Theo.", "Hi Theo.")
    conv.add("Actually, call me Theodora.", "Oh! Hi Theodora.")
    assert conv.profile.name == "Theodora"


def test_prefix_is_the_start_of_every_prompt() -> None:
    """What llama.cpp evaluates while the user talks must be the beginning of the final prompt."""
    conv = conversation(budget=300)
    chat_about_the_sea(conv, 3)
    assert conv.prompt("So, what now?").startswith(conv.prefix())
    partial = conv.prompt("So, what", final=False)
    assert conv.prompt("So, what now?").startswith(partial)


def test_an_interrupted_reply_is_remembered_as_cut_off() -> None:
    conv = conversation()
    conv.add("Tell me a story.", "Once upon a time, there was a", interrupted=True)
    assert conv.exchanges[-1].reply.endswith("—")
    assert conv.exchanges[-1].interrupted


def test_a_reply_cut_before_a_word_leaves_no_empty_turn_of_hers() -> None:
    """Nothing of hers was heard: the history shows no reply (a bare dash there is copied by the model
    from then on), and the user's words are answered with their next turn."""
    conv = conversation()
    conv.add("Drop the two when you add the figures.", "", interrupted=True)
    assert conv.exchanges == []
    prompt = conv.prompt("A thin stripe runs down the middle.")
    assert "Drop the two when you add the figures. A thin stripe runs down the middle." in prompt
    assert "—" not in prompt
    assert prompt.startswith(conv.prefix())
    conv.add("A thin stripe runs down the middle.", "Oh, like a road at night.")
    assert conv.exchanges[-1].user == "Drop the two when you add the figures. A thin stripe runs down the middle."
    assert conv.unanswered == ""
