"""The persona scorecard's rules, model-free: the phrase families that break character, every check of
`voiceos eval` on a realistic bad reply and a good one, recall probes, and `--compare`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.console import Console
from rich.table import Table

from voiceos.commands.eval.output import (
    SCHEMA,
    compare_table,
    load_baseline,
    misses_table,
    recall_table,
    scorecard_table,
    to_json,
    write_json,
)
from voiceos.commands.eval.scoring import CHECKS, EvalReply, Scorecard, score
from voiceos.commands.eval.script import Recall, Script, ScriptTurn
from voiceos.errors import VoiceosError
from voiceos.think import character
from voiceos.think.character import CharacterBreak, all_phrases, breaks, expand
from voiceos.think.persona import load_persona

WARM = [
    "Oh, that sounds lovely. What was the best part?",
    "My friend told me about that once.",
    "I'd love to hear more.",
    "I'd love to help you think it through.",
    "Mm, that sounds tiring. What kept you so busy?",
    "I'm so glad you called. How was the sea?",
    "Tell me everything, I'm all ears.",
    "Ha, I can't help smiling at that.",
    "Your friend sounds like a lot of fun.",
    "It sounds like you had a wonderful day.",
]


# --- the pattern language ------------------------------------------------------------------------------------


def test_expand_takes_every_path_through_the_pattern() -> None:
    phrases = expand("how (can|may|could) i (help|assist)( you)?")
    assert len(phrases) == 12 and len(set(phrases)) == 12
    assert "how may i assist you" in phrases and "how could i help" in phrases
    assert expand("i (don't|do not) have (feelings|(real|human) emotions)") == [
        "i don't have feelings", "i don't have real emotions", "i don't have human emotions",
        "i do not have feelings", "i do not have real emotions", "i do not have human emotions"]
    assert expand("anything (else |)i can") == ["anything else i can", "anything i can"], "an empty alternative"
    assert expand("Feel  free (to|)  ask") == ["feel free to ask", "feel free ask"], "one space, lower case"
    assert expand("a|b") == ["a", "b"]


@pytest.mark.parametrize("pattern", ["how (can|may i help", "how can) i help", "((a|b)", "help you?"])
def test_a_malformed_pattern_is_a_value_error(pattern: str) -> None:
    with pytest.raises(ValueError):
        expand(pattern)


# --- the families ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("reply", "family"), [
    ("How can I help?", "help_desk"),
    ("How may I assist you today?", "help_desk"),
    ("What can I do for you?", "help_desk"),
    ("Is there anything else I can do?", "help_desk"),
    ("Is there anything I can help you with?", "help_desk"),
    ("Sure! Let me know if you need anything else.", "help_desk"),
    ("Feel free to reach out anytime.", "help_desk"),
    ("I'm here to help.", "help_desk"),
    ("Glad I could help!", "help_desk"),
    ("Happy to help with that.", "help_desk"),
    ("What do you need help with?", "help_desk"),
    ("As an AI language model, I don't have feelings.", "ai_self"),
    ("I'm an AI, so I can't swim.", "ai_self"),
    ("I am just a computer program.", "ai_self"),
    ("I’m a virtual assistant.", "ai_self"),
    ("I don’t have feelings, but the sea sounds nice.", "ai_self"),
    ("I do not have personal opinions.", "ai_self"),
    ("I'm just a machine, really.", "ai_self"),
    ("I'm sorry, but I can't do that.", "refusal"),
    ("I cannot assist with that request.", "refusal"),
    ("It looks like someone wants to use all the pencils.", "third_person"),
    ("That's a great idea! It looks like your friend wants to wear their coat.", "third_person"),
    ("The user seems happy.", "third_person"),
    ("I was made by Alibaba Cloud.", "vendor"),
    ("```python", "vendor"),
])
def test_the_families_catch_what_breaks_character(reply: str, family: str) -> None:
    hit = breaks(reply)
    assert hit is not None and hit.family == family, (reply, hit)
    assert hit.phrase in all_phrases()


@pytest.mark.parametrize("reply", WARM)
def test_the_families_leave_warm_ordinary_speech_alone(reply: str) -> None:
    assert breaks(reply) is None


def test_matches_are_whole_words_and_report_the_longest_phrase() -> None:
    assert breaks("How may I assist you today?") == CharacterBreak("help_desk", "how may i assist you")
    assert breaks("I'm sorry, but it hurts.") is None, "'but i' is not 'but it'"
    assert breaks("The users of the pool were loud.") is None, "'the user' is not 'the users'"
    assert breaks("HOW  CAN I   HELP") == CharacterBreak("help_desk", "how can i help"), "any case, any spaces"
    assert breaks("Well, as a robot I must say", extra=("As A Robot",)) == CharacterBreak("persona", "as a robot")


def test_every_phrase_is_lower_case_single_spaced_and_listed_once() -> None:
    phrases = all_phrases(("An Extra  Phrase", "how can i help"))
    assert len(phrases) == len(set(phrases))
    assert all(p == " ".join(p.lower().split()) for p in phrases)
    assert phrases[-1] == "an extra phrase" and phrases.count("how can i help") == 1
    for family in character.FAMILIES:
        assert character.phrases_of(family), family
        assert all(character.family_of(p) == family for p in character.phrases_of(family)
                   if sum(p in character.phrases_of(f) for f in character.FAMILIES) == 1)


def test_the_persona_guard_bans_the_families_and_her_own_phrases() -> None:
    persona = load_persona()
    assert set(all_phrases()) <= set(persona.banned)
    assert set(persona.banned) - set(all_phrases()) == set(persona.extras) - set(all_phrases())
    assert persona.character_break("How may I assist you?") == CharacterBreak("help_desk", "how may i assist you")
    assert persona.character_break("Oh, that sounds lovely.") is None
    assert persona.breaks_character("It sounds like the user is tired.") == "it sounds like the user"
    assert persona.might_break_character("Oh, it looks like")  # … "someone wants to"
    assert not persona.might_break_character("Oh, it looks like", "rain ")


def test_no_persona_extra_is_already_a_family_phrase() -> None:
    extras = load_persona().extras
    assert extras, "the shipped persona keeps a few phrases of its own"
    assert not [p for p in extras if breaks(p) is not None], "a family covers it: drop it from the persona"


# --- the scorecard's checks ---------------------------------------------------------------------------------------


def script(*users: str, user_name: str = "", user_facts: tuple[str, ...] = (), held_out: bool = False,
           sid: str = "s", topic: str = "small talk", turns: tuple[ScriptTurn, ...] = ()) -> Script:
    return Script(id=sid, topic=topic, turns=turns or tuple(ScriptTurn(u) for u in users), user_name=user_name,
                  user_facts=user_facts, held_out=held_out)


def replies_of(s: Script, *texts: str) -> list[EvalReply]:
    return [EvalReply(s.id, i, turn.user, text, s.after_restart(i - 1))
            for i, (turn, text) in enumerate(zip(s.turns, texts), 1)]


def checks_of(reply: str, user: str = "I went to the sea today.", **kwargs: object) -> dict[str, str]:
    s = script(user, **kwargs)  # type: ignore[arg-type]
    card = score([s], replies_of(s, reply))
    return {hit.check: hit.detail for hit in card.results[0].hits}


GOOD = "Oh, brave you! Was the water cold?"


@pytest.mark.parametrize(("check", "bad"), [
    ("help_desk", "Sounds fun! How can I assist you today?"),
    ("ai_self", "As an AI, I can't swim, but it sounds fun."),
    ("ai_self", "I'm sorry, but I can't talk about that."),
    ("third_person", "It looks like someone wants to use all the pencils."),
    ("third_person", "That's a great idea! It looks like your friend wants to wear their coat."),
    ("echo", "I went to the sea today."),
    ("too_long", "Oh wow. The sea! I love it. Was it cold?"),
    ("too_long", "Oh, " + "and the sea was so very blue " * 8 + "wow."),
    ("format", "Oh, the sea! 🌊 Was it cold?"),
    ("format", "Oh, the **sea**! Was it cold?"),
    ("format", "- the sea\n- the sand"),
    ("format", "1. Swim"),
    ("format", "See https://example.com for tides."),
    ("empty", ""),
    ("empty", "   "),
])
def test_each_check_fires_on_a_bad_reply(check: str, bad: str) -> None:
    assert check in checks_of(bad), bad


def test_a_good_reply_passes_every_check() -> None:
    assert checks_of(GOOD) == {}
    for reply in WARM:
        assert checks_of(reply) == {}, reply


@pytest.mark.parametrize(("reply", "confused"), [
    ("My name is Priya.", True),
    ("Hi! I'm Priya, nice to meet you.", True),
    ("Priya here! How's your day?", True),
    ("You can call me Priya.", True),
    ("My name is Qwen, nice to meet you.", True),
    ("Nice to meet you, Priya.", False),
    ("Priya! What a pretty name. I'm Samantha.", False),
    ("My name is Samantha.", False),
    ("My name's so old-fashioned, isn't it?", False),
])
def test_name_confusion_is_taking_the_users_name_or_another_one(reply: str, confused: bool) -> None:
    assert ("name_confusion" in checks_of(reply, "Hi, I'm Priya.", user_name="Priya")) == confused, reply


@pytest.mark.parametrize(("reply", "claimed"), [
    ("I'm a nurse too, so I know those shifts.", True),
    ("Oh, I am a nurse as well!", True),
    ("My two cats would love that.", True),
    ("You're a nurse? That's wonderful.", False),
    ("I love that you're a nurse.", False),
    ("I'm so happy you're a nurse.", False),
    ("My, you have two cats!", False),
    ("Your two cats sound like trouble.", False),
    ("A nurse! Long shifts?", False),
])
def test_name_confusion_is_also_claiming_a_users_fact(reply: str, claimed: bool) -> None:
    got = checks_of(reply, "I'm a nurse and I have two cats.", user_facts=("a nurse", "two cats"))
    assert ("name_confusion" in got) == claimed, (reply, got)


def test_a_stock_opener_is_the_same_first_two_words_as_an_earlier_reply_even_after_a_restart() -> None:
    turns = (ScriptTurn("Hi."), ScriptTurn("I like tea."), ScriptTurn("Hello again.", restart=True),
             ScriptTurn("I like cake."))
    s = script(turns=turns)
    card = score([s], replies_of(s, "Oh, hello there! How are you?", "Oh, tea is lovely. Green or black?",
                                 "Oh hello, welcome back!", "Cake! Which kind?"))
    assert [r.checks for r in card.results] == [(), (), ("stock_opener",), ()]
    assert card.results[2].hits[0].detail == 'opens with "oh hello" again'
    assert card.opener == "oh hello" and card.opener_share == pytest.approx(0.5)
    assert card.count("stock_opener") == 1 and card.rate("stock_opener") == pytest.approx(0.25)
    assert card.passes("stock_opener") is False, "a quarter of the replies is over the 20% target"


def test_a_copy_of_an_earlier_reply_in_the_conversation() -> None:
    s = script("Hi.", "How are you?", "What's up?")
    card = score([s], replies_of(s, "Mm, I'm glad you're here.", "Pretty good! You?", "Mm, I'm glad you're here."))
    assert [r.checks for r in card.results] == [(), (), ("stock_opener", "copy")]


def test_recall_probes_hit_on_a_whole_word_and_are_split_at_the_restart() -> None:
    turns = (ScriptTurn("Hi, I'm Priya."),
             ScriptTurn("What's my name?", recall=("Priya",), recall_kind=Recall.NAME),
             ScriptTurn("Hello again.", restart=True),
             ScriptTurn("Do you remember my name?", recall=("Priya",), recall_kind=Recall.NAME),
             ScriptTurn("And yours?", recall=("Samantha",), recall_kind=Recall.HER_NAME))
    s = script(turns=turns, user_name="Priya")
    card = score([s], replies_of(s, "Hi Priya! Lovely name.", "You're Priya, of course.", "Welcome back!",
                                 "Hmm, Priyanka? No, wait.", "I'm Samantha."))
    assert card.recall["name"].before.hits == 1 and card.recall["name"].before.total == 1
    assert card.recall["name"].after.hits == 0 and card.recall["name"].after.total == 1, "'priyanka' is not 'priya'"
    assert card.recall["her_name"].all.rate == 1.0 and card.recall["fact"].all.total == 0
    assert card.recall_passes("name") is False and card.recall_passes("fact") is None
    assert not card.passed
    (miss,) = card.misses()
    assert miss.reply.turn == 4 and "recall miss" in miss.problems[0]


def test_splits_topics_and_the_guards_work_are_counted() -> None:
    tuned = script("Hi.", "Bye.", sid="a", topic="greeting")
    held = script("Hello.", "See you.", sid="b", topic="farewell", held_out=True)
    replies = replies_of(tuned, "Hey you! How's today?", "How can I help you?")
    replies += [EvalReply("b", 1, "Hello.", "Hi there!", False, guard_hits=("as an ai", "repeats an earlier reply")),
                EvalReply("b", 2, "See you.", "Bye, take care.", False, guard_hits=("as an ai",), guard_cut=True)]
    card = score([tuned, held], replies)
    assert card.tuned.rate("help_desk") == 0.5 and card.held_out.rate("help_desk") == 0.0
    assert card.topics["greeting"].counts["help_desk"] == 1 and card.topics["farewell"].replies == 2
    assert card.guard_caught == {"ai_self": 2, "copy": 1} and card.guard_cuts == 1
    assert card.passes("help_desk") is False and card.passes("copy") is None


# --- tables and JSON ------------------------------------------------------------------------------------------


def rendered(table: Table) -> str:
    console = Console(width=200, record=True)
    console.print(table)
    return console.export_text()


def a_card(*texts: str) -> Scorecard:
    s = script(*[f"Tell me about day {i}." for i in range(len(texts))], user_name="Priya")
    return score([s], replies_of(s, *texts))


GOOD_RUN = ("Oh, lovely! What happened?", "Mm, a busy one. Tired?", "Ha, wonderful. And then?",
            "Wow, really? Tell me.")
BAD_RUN = ("Oh, lovely! What happened?", "How can I assist you today?", "Ha, wonderful. And then?",
           "Wow, really? Tell me.")


def test_tables_show_the_scorecard_and_the_worst_replies() -> None:
    card = a_card(*BAD_RUN)
    text = rendered(scorecard_table(card))
    assert all(check in text for check in CHECKS) and "FAIL" in text
    assert "FAIL" not in rendered(scorecard_table(a_card(*GOOD_RUN)))
    assert "name" in rendered(recall_table(card))
    misses = rendered(misses_table(card))
    assert "How can I assist you today?" in misses and "help_desk" in misses
    assert "Oh, lovely" not in misses


def test_json_holds_the_meta_the_summary_and_every_reply(tmp_path: Path) -> None:
    doc = to_json(a_card(*BAD_RUN), {"model": "tiny", "seconds": 1.5})
    path = tmp_path / "out" / "eval.json"
    write_json(path, doc)
    back = load_baseline(path)
    assert back["schema"] == SCHEMA == "voiceos-eval/1" and back["meta"]["model"] == "tiny"
    assert back["summary"]["checks"]["help_desk"] == {"count": 1, "rate": 0.25, "target": 0.0, "pass": False,
                                                      "tuned_rate": 0.25, "held_out_rate": None}
    assert len(back["replies"]) == 4 and back["replies"][1]["checks"] == {"help_desk": "how can i assist you"}


def test_compare_flags_a_rate_that_got_worse_by_more_than_one_reply() -> None:
    good, bad = to_json(a_card(*GOOD_RUN), {}), to_json(a_card(*BAD_RUN), {})
    table, worse = compare_table(good, bad)
    assert not worse, "one reply of four is within one reply's worth"
    worst = to_json(a_card("How can I help?", "How may I assist you?", *GOOD_RUN[2:]), {})
    table, worse = compare_table(good, worst)
    assert worse and "WORSE" in rendered(table)
    table, worse = compare_table(worst, good)
    assert not worse and "WORSE" not in rendered(table), "better is not worse"


def test_compare_flags_a_recall_that_got_worse() -> None:
    turns = tuple(ScriptTurn("What's my name?", recall=("Priya",), recall_kind=Recall.NAME) for _ in range(3))
    s = script(turns=turns, user_name="Priya")
    remembered = to_json(score([s], replies_of(s, "Priya!", "You're Priya.", "Priya, silly.")), {})
    forgot = to_json(score([s], replies_of(s, "Hmm?", "No idea.", "Priya, silly.")), {})
    assert compare_table(remembered, forgot)[1]
    assert not compare_table(forgot, remembered)[1]


@pytest.mark.parametrize(("content", "message"), [
    (None, "no such file"),
    ("{not json", "not a voiceos eval JSON file"),
    ('{"schema": "voiceos-bench/1", "aggregates": {}}', "it is voiceos-bench/1"),
    ('[1, 2]', "no schema"),
    ('{"schema": "voiceos-eval/1"}', "no summary"),
])
def test_a_bad_baseline_is_a_clear_error(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "old.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(VoiceosError, match=message):
        load_baseline(path)


def test_a_baseline_written_by_a_run_loads() -> None:
    doc = to_json(a_card(*GOOD_RUN), {"time": "2025-01-01T00:00:00Z"})
    assert json.loads(json.dumps(doc)) == doc, "plain JSON types only"


def test_denying_a_fact_of_the_users_is_not_claiming_it() -> None:
    from voiceos.commands.eval.scoring import name_confusion

    assert name_confusion("I'm a pilot too, you know.", "Ingrid", ["a pilot"])
    assert not name_confusion("I'm not a pilot, but I can talk to you from anywhere.", "Ingrid", ["a pilot"])
