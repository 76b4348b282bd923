"""What reaches the speaker: streamed LLM text → speakable clauses (no markdown, lists, code or emoji),
and the persona's guard against replies that break character. Pure logic, no models."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest

from voiceos.errors import ConfigError
from voiceos.speak.speakable import speakable
from voiceos.speak.splitter import ClauseSplitter, voiced
from voiceos.think.persona import load_persona

MARKUP = re.compile(r"[*_#`>|~\[\]]|-{2,}|https?://|^\s*[-•+]\s")


def stream(text: str, piece: int = 3, ahead_s: float | None = None) -> tuple[list[str], list[int]]:
    """Feed `text` in small pieces as an LLM would; return the clauses and how many characters had been fed
    when each came out (len(text) + 1 for what only `flush()` gave). `ahead_s`: the speech queued ahead, as
    the voice worker would report it."""
    splitter = ClauseSplitter(ahead_s=None if ahead_s is None else lambda: ahead_s)
    clauses, fed_at = [], []
    for i in range(0, len(text), piece):
        for clause in splitter.feed(text[i : i + piece]):
            clauses.append(clause)
            fed_at.append(i + piece)
    for clause in splitter.flush():
        clauses.append(clause)
        fed_at.append(len(text) + 1)
    return clauses, fed_at


def words(text: str) -> list[str]:
    return re.findall(r"[a-z']+", text.lower())


def is_emoji(ch: str) -> bool:
    return unicodedata.category(ch) == "So" or 0x1F000 <= ord(ch) <= 0x1FAFF or ch in "\ufe0f\u200d"


REPLY = ("Oh, that sounds lovely. I went to the sea once and the water was so cold that I screamed, then "
         "laughed for an hour. Did you swim?")


# --- streaming ------------------------------------------------------------------------------------------------


def test_clauses_stream_out_before_the_reply_is_finished() -> None:
    clauses, fed_at = stream(REPLY)
    assert len(clauses) >= 3
    assert fed_at[0] < 10, "the first clause should come out as soon as its comma arrives"
    assert sum(1 for at in fed_at if at <= len(REPLY)) >= len(clauses) - 1, "only the last clause may wait for flush"
    assert fed_at == sorted(fed_at)


def test_no_word_is_lost_or_repeated() -> None:
    for piece in (1, 2, 5, 17, len(REPLY)):
        clauses, _ = stream(REPLY, piece)
        assert words(" ".join(clauses)) == words(REPLY), piece


def test_first_clause_may_be_one_word_later_ones_are_not_fragments() -> None:
    text = ("Hmm, well, honestly, I think the ocean at night is the most beautiful thing, because the moon sits "
            "on the water like a silver road, and, you know, the waves whisper.")
    clauses, _ = stream(text)
    assert clauses[0] == "Hmm,"
    for clause in clauses[1:-1]:
        ends_sentence = clause.rstrip().endswith((".", "!", "?"))
        assert ends_sentence or len(clause.split()) >= 5, f"fragment {clause!r} in {clauses}"


def test_a_long_first_sentence_starts_at_its_first_phrase_boundary() -> None:
    text = "I'm not sure what you mean by a thin stripe, but it sounds pretty. Tell me more."
    clauses, fed_at = stream(text)
    assert clauses[0] == "I'm not sure"
    assert fed_at[0] <= len("I'm not sure what ") + 3, "cut as soon as the opener is a whole word"
    assert stream("I'm glad that you came. Me too.")[0][:2] == ["I'm glad", "that you came."], "two words are enough"
    assert stream("I'm glad you're feeling better today.")[0][0] == "I'm glad", "a fused pronoun opens a clause"
    assert stream("I really miss you so much today.")[0][0] == "I really miss you", "a bare 'you' may be an object"
    assert words(" ".join(clauses)) == words(text)
    assert voiced(clauses[0]) == "I'm not sure,", "a mid-sentence cut keeps a rising, unfinished intonation"
    assert voiced("Tell me more.") == "Tell me more."


def test_a_first_sentence_without_any_boundary_is_cut_after_a_few_words() -> None:
    clauses, _ = stream("Absolutely wonderful lovely perfect little sunny morning walks are the best. Yes.")
    assert clauses[0] == "Absolutely wonderful lovely perfect"
    assert clauses[1] == "little sunny morning walks are the best."


def test_an_opening_thats_is_spoken_as_soon_as_it_is_written() -> None:
    splitter = ClauseSplitter()
    assert list(splitter.feed("That")) == []
    assert list(splitter.feed("'s")) == ["That's"], "no need to wait for the next word"
    assert list(splitter.feed(" the perfect air for a bird.")) == ["the perfect air for a bird."]
    assert stream("It's a lovely day today.")[0] == ["It's", "a lovely day today."]
    assert stream("I'm not sure what you mean.")[0][0] == "I'm not sure", "'I'm' does not stand alone"
    assert stream("Thatsy little thing, that one.")[0][0] == "Thatsy little thing,"


def test_later_clauses_are_cut_early_only_when_the_speech_ahead_runs_low() -> None:
    text = "That's the perfect air for a bird and for a little kite in spring."
    plenty, _ = stream(text, ahead_s=5.0)
    assert plenty == ["That's", "the perfect air for a bird and for a little kite in spring."]
    running_out, _ = stream(text, ahead_s=0.2)
    assert running_out[:3] == ["That's", "the perfect air", "for a bird"], running_out
    assert words(" ".join(running_out)) == words(text)
    assert all(len(c.split()) <= 5 for c in running_out), "each cut at the next phrase boundary"


def test_the_cut_before_an_opener_does_not_wait_for_the_next_token() -> None:
    splitter = ClauseSplitter()
    assert list(splitter.feed("I'm not sure")) == []
    assert list(splitter.feed(" what")) == ["I'm not sure"]  # the opener is the newest token
    assert list(splitter.feed("ever you like.")) == ["whatever you like."]  # it grew: the cut was still a word boundary


def test_short_sentences_after_the_first_are_still_spoken_promptly() -> None:
    clauses, _ = stream("Oh, I suppose so. Really? Yes. Fine!")
    assert clauses == ["Oh,", "I suppose so.", "Really?", "Yes.", "Fine!"]


# --- nothing unspeakable reaches the speaker -------------------------------------------------------------------


def assert_speakable(clauses: list[str]) -> None:
    assert clauses, "nothing to say at all"
    for clause in clauses:
        assert not MARKUP.search(clause), f"markup in {clause!r}"
        assert not any(is_emoji(ch) for ch in clause), f"emoji in {clause!r}"
        assert clause == clause.strip() and "\n" not in clause


def test_code_fences_are_never_spoken_even_when_split_across_pieces() -> None:
    text = "Here you go: ```python\nx = 1\nprint(x)\n``` That is the code, my friend."
    for piece in (1, 3, 7):
        clauses, _ = stream(text, piece)
        assert_speakable(clauses)
        spoken = " ".join(clauses)
        assert "print" not in spoken and "x = 1" not in spoken and "python" not in spoken
        assert words(spoken) == words("Here you go: That is the code, my friend.")


def test_markdown_and_emoji_are_removed_words_kept() -> None:
    text = ("**Great question!** Here are *three* things I love: walks, `books` and [tea](http://tea.example). "
            "# Also\n> the sea 🌊 and you 😊❤️ 👍🏽 ✨. Visit https://example.com sometime.")
    clauses, _ = stream(text)
    assert_speakable(clauses)
    spoken = " ".join(clauses)
    for word in ("great", "question", "three", "walks", "books", "tea", "sea", "sometime"):
        assert word in words(spoken)
    assert "example" not in spoken


def test_bullet_lists_become_plain_speech() -> None:
    text = "Three things:\n- walks by the sea\n* good books\n• hot tea\n\nWhat about you?"
    clauses, _ = stream(text)
    assert_speakable(clauses)
    assert words(" ".join(clauses)) == words("Three things walks by the sea good books hot tea What about you")


def test_numbered_lists_do_not_read_out_their_numbers() -> None:
    text = "I love these:\n\n1. The sea\n2. The sky\n3. Music\n\nWhat about you?"
    clauses, _ = stream(text)
    assert_speakable(clauses)
    spoken = " ".join(clauses)
    assert not re.search(r"\d", spoken), f"list numbers spoken: {clauses}"


def test_markdown_tables_do_not_reach_the_speaker() -> None:
    clauses, _ = stream("Sure:\n\n| day | mood |\n|---|---|\n| Monday | sleepy |\n\nThat's me.")
    assert_speakable(clauses)


def test_a_reply_of_only_markup_and_emoji_says_nothing() -> None:
    clauses, _ = stream("```\ncode only\n``` 😊 **")
    assert clauses == []


@pytest.mark.parametrize(("raw", "spoken"), [
    ("**Bold** and _italic_ and ~~gone~~", "Bold and italic and gone"),
    ("## Heading\nText", "Heading Text"),
    ("Read [the page](http://x.org/a) now", "Read the page now"),
    ("Go to https://example.com/x?y=1 today", "Go to a link today"),
    ("Use `ls -la` here", "Use ls -la here"),
    ("1. one\n2. two", "one two"),
    ("Samantha: hello there", "hello there"),
    ("I love it 😍🎉 so much ❤️", "I love it so much"),
])
def test_speakable(raw: str, spoken: str) -> None:
    assert speakable(raw) == spoken


# --- persona and its guard --------------------------------------------------------------------------------------


def test_shipped_persona_is_samantha_with_examples_and_a_guard() -> None:
    persona = load_persona()
    assert persona.name == "Samantha"
    assert "Samantha" in persona.system
    assert len(persona.examples) >= 2 and all(u and r for u, r in persona.examples)
    # her own examples must be in character, or the model learns the wrong voice
    for _user, reply in persona.examples:
        assert persona.breaks_character(reply) == ""
        assert speakable(reply) == reply


@pytest.mark.parametrize("reply", [
    "As an AI language model, I don't have feelings.",
    "How can I assist you today?",
    "I'm an AI, so I can't swim.",
    "Sure! Let me know if you need anything else.",
    "I am an assistant created by Alibaba Cloud.",
    "I don’t have feelings, but the sea sounds nice.",  # typographic apostrophe
])
def test_breaks_character_catches_assistant_boilerplate(reply: str) -> None:
    assert load_persona().breaks_character(reply) != ""


def test_words_that_may_grow_into_boilerplate_wait_for_the_next_clause() -> None:
    persona = load_persona()
    assert persona.might_break_character("I'm sorry,")  # … "but I can't assist with that"
    assert persona.might_break_character("I'm happy")  # … "to help"
    assert persona.might_break_character("Oh, I'm here")  # … "to help you"
    assert not persona.might_break_character("Oh,")
    assert not persona.might_break_character("That's great!")
    assert not persona.might_break_character("I'm not sure")
    assert not persona.might_break_character("I'm sorry, but it hurts.")
    assert not persona.breaks_character("I'm sorry, but it hurts."), "whole words: 'but i' is not 'but it'"


def test_the_words_already_written_after_a_clause_can_clear_it_at_once() -> None:
    persona = load_persona()
    assert persona.might_break_character("I'm happy", "to")  # "to help" or "to hear"?
    assert persona.might_break_character("I'm happy", "to he")  # "help" is still possible
    assert not persona.might_break_character("I'm happy", "to hea"), "not 'happy to help' any more"
    assert not persona.might_break_character("I'm glad", "you"), "'glad to help', 'glad I could help': not 'you'"
    assert not persona.might_break_character("I'm sorry,", "but it ")
    assert persona.might_break_character("I'm sorry,", "but i"), "'i' may be whole: 'but I'"


@pytest.mark.parametrize("reply", [
    "Oh, I love that! The sea at dawn makes me feel so awake.",
    "Mm, that sounds tiring. What kept you so busy?",
    "Honestly? I'd help you carry the boxes if I had arms.",
])
def test_breaks_character_lets_samantha_be_herself(reply: str) -> None:
    assert load_persona().breaks_character(reply) == ""


def test_custom_persona_file(tmp_path: Path) -> None:
    path = tmp_path / "ada.toml"
    path.write_text('name = "Ada"\nsystem = """You are Ada,\n  a poet."""\n[[example]]\nuser = "Hi"\n'
                    'samantha = "Hello, dear."\n[guard]\nbanned = ["As A Robot"]\n')
    persona = load_persona(path)
    assert persona.name == "Ada" and persona.system == "You are Ada, a poet."
    assert persona.examples == (("Hi", "Hello, dear."),)
    assert persona.breaks_character("Well, as a robot I must say") == "as a robot"


@pytest.mark.parametrize("content", [None, "not = [toml", 'name = "x"\n'])
def test_bad_persona_file_is_a_config_error(tmp_path: Path, content: str | None) -> None:
    path = tmp_path / "p.toml"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError) as info:
        load_persona(path)
    assert str(path) in str(info.value)


# --- a reply that copies an earlier one ------------------------------------------------------------------------


def test_a_reply_copied_from_the_history_is_a_miss() -> None:
    from voiceos.think.guard import repeats_earlier

    earlier = ["I'm here.", "That's an interesting observation. What do you think about the air?"]
    assert repeats_earlier("I'm here.", earlier, whole=True)
    assert repeats_earlier("That's an interesting observation", earlier, whole=False), "the same start of 4 words"
    assert repeats_earlier("That's an interesting observation.", earlier, whole=False)
    assert repeats_earlier("Hmm. That's an interesting observation!", earlier, whole=False)
    # new words, a short reaction said before, or a sentence not finished yet are fine
    assert not repeats_earlier("I'm here too, and glad of it.", earlier, whole=True)
    assert not repeats_earlier("Oh, I'm here.", earlier, whole=False)
    assert not repeats_earlier("That's an", earlier, whole=False)
    assert not repeats_earlier("Oh, what a thing to say.", earlier, whole=True)
