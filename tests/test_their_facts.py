"""What a user's question asks her to remember, the words that say it, and a fact of theirs claimed as hers:
the rules the reply guard and the persona scorecard share (model-free)."""

from __future__ import annotations

import pytest

from voiceos.llm.prompt_format import CHATML
from voiceos.think.conversation import Conversation
from voiceos.think.persona import load_persona
from voiceos.think.their_facts import Remembering, asked_about, claimed, says_any, telling_words
from voiceos.think.user_profile import UserProfile

TOLD = ("Hi Samantha, my name is Amara.", "I just got a puppy, a little beagle called Biscuit.",
        "My brother Omar is visiting.", "I moved to Lisbon about three months ago for a new job.",
        "I run a little bakery by the harbour.", "I play cello in a community orchestra.")


def profile() -> UserProfile:
    known = UserProfile()
    for sentence in TOLD:
        known.learn(sentence)
    return known


@pytest.mark.parametrize(("question", "words"), [
    ("Okay, quick test. Do you remember what my name is?", ("Amara",)),
    ("And what did I say my puppy is called?", ("Biscuit",)),
    ("What's the name of my dog?", ("Biscuit",)),
    ("Can you remember my brother's name?", ("Omar",)),
    ("Where do I live again?", ("Lisbon",)),
    ("Remind me, what city am I living in these days?", ("Lisbon",)),
    ("Good morning! Do you know who's talking?", ("Amara",)),
    ("New city, same me. What do you call me?", ("Amara",)),
    ("Do you remember what I do for a living?", ("bakery",)),
    ("What instrument do I play?", ("cello", "community", "orchestra")),
    ("Do you like rainy days?", ()),  # not about them
    ("What's my sister called?", ()),  # nothing known
    ("My name is hard to spell.", ()),  # not a question
])
def test_a_question_asks_for_what_they_told_her(question: str, words: tuple[str, ...]) -> None:
    asked = asked_about(profile(), question)
    assert tuple(w for fact in asked for w in telling_words(fact)) == words


def test_a_reply_says_it_in_a_whole_word_of_any_case() -> None:
    assert says_any("Your puppy is BISCUIT, of course!", ("Biscuit",))
    assert not says_any("Biscuits are lovely.", ("Biscuit",))


@pytest.mark.parametrize(("reply", "said"), [
    ("I'm on a narrowboat too.", "i'm on a narrowboat"),
    ("Oh, my brother Omar says hi.", "oh my brother omar"),
    ("You're on a narrowboat, I remember.", ""),
    ("I'm not a narrowboat person.", ""),
    ("I'm on a narowboat too.", "i'm on a narowboat"),  # misspelt
    ("I'm on a rowboat.", ""),  # another word
    ("A narrowboat sounds cosy.", ""),
])
def test_a_fact_of_theirs_said_in_the_first_person_is_claimed(reply: str, said: str) -> None:
    assert claimed(reply, "narrowboat" if "boat" in reply else "Omar") == said


def test_the_note_ends_with_what_they_ask_her_to_remember() -> None:
    conversation = Conversation(load_persona(), CHATML, lambda text: len(text.split()), 1100)
    for sentence in TOLD:
        conversation.learn(sentence)
    assert conversation.note("What's my brother called?").endswith(
        "They ask about it; remind them: you have a brother named Omar.")
    assert "They ask" not in conversation.note("How are you?")
    assert conversation.asked_to_remember("What's my name?") == Remembering(("Amara",), "Your name is", ("Samantha",))
    assert conversation.asked_to_remember("Where do I live?") == Remembering(("Lisbon",), "You")
    assert {"Biscuit", "Omar", "Lisbon", "bakery"} <= set(conversation.not_hers())


def test_said_as_a_fact_of_theirs_before_her_own_words_is_claimed() -> None:
    assert claimed("As a firefighter, I'm always on call.", "firefighter") == "as a firefighter i'm"
    assert claimed("As a firefighter, you must be tired.", "firefighter") == ""
