"""Memory of the person across sessions: what the user says about themselves (name, work, home, the people
and pets they care about, what they love) is found in their transcripts, kept in a small profile, told to
the model in plain words, and saved in the user data folder; `voiceos memory show|forget` reads and clears it.
No model is needed: the transcripts are written as Whisper writes them (capitalised, punctuated)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from voiceos.commands.memory import run_memory
from voiceos.errors import ConfigError
from voiceos.think.fact_finding import find_facts
from voiceos.think.user_profile import SCHEMA, Fact, ProfileStore, UserProfile, default_memory_path

NOW = "2026-12-02T10:41:00Z"


@pytest.mark.parametrize(("said", "facts"), [
    ("Hi Samantha, I'm Theo.", [("name", "Theo")]),
    ("hello, my name's theo and I'm tired", [("name", "Theo")]),
    ("Call me Theo, everyone does.", [("name", "Theo")]),
    ("Actually, my name is Theo, not Leo.", [("name", "Theo")]),
    ("Hey, I'm Priya. I work as a nurse at the children's hospital, and I live in Lisbon.",
     [("name", "Priya"), ("work", "a nurse at the children's hospital"), ("home", "in Lisbon")]),
    ("I'm a teacher.", [("work", "a teacher")]),
    ("I work at the library.", [("work", "at the library")]),
    ("Well, my job is at the bakery on Main Street.", [("work", "at the bakery on Main Street")]),
    ("I'm from Kenya.", [("home", "from Kenya")]),
    ("My dog is called Biscuit.", [("pet", "a dog named Biscuit")]),
    ("I have a cat named Miso.", [("pet", "a cat named Miso")]),
    ("My sister Ana is coming to visit next week.", [("family", "a sister named Ana")]),
    ("My husband's name is Karl.", [("family", "a husband named Karl")]),
    ("I have two kids.", [("family", "two kids")]),
    ("I love painting.", [("likes", "painting")]),
    ("My favourite food is ramen.", [("likes", "favourite food is ramen")]),
    ("Hi Samantha, I'm Theo, how are you today?", [("name", "Theo")]),
])
def test_finds_what_the_user_says_about_themselves(said: str, facts: list[tuple[str, str]]) -> None:
    assert find_facts(said) == facts


@pytest.mark.parametrize("said", [
    "Do you know my name?",
    "What do I do for work?",
    "Did I tell you I'm a nurse?",
    "I'm not a nurse.",
    "My friend is a nurse.",
    "My brother works as a lawyer in Boston.",
    "My friend says I'm a great cook.",
    "My friend thinks I work at the library.",
    "Sometimes I pretend I live in Paris.",
    "Maybe I'm a writer.",
    "I used to work as a nurse.",
    "I'm tired.",
    "I'm Tired.",
    "I'm Going to the shop.",
    "I'm Just back from work.",
    "I'm English.",
    "I work at night.",
    "I live in fear of spiders.",
    "I don't live in Lisbon anymore.",
    "I'd love to live in Paris.",
    "I wish I had a dog.",
    "I have a cat allergy.",
    "My dog is sick.",
    "I love you.",
    "I love the way you talk.",
    "I'm a big fan of you.",
    "My job is killing me.",
])
def test_states_nothing_when_nothing_is_stated(said: str) -> None:
    """A wrong fact told back to the user is worse than one never learned."""
    assert find_facts(said) == []


def test_values_are_short_and_without_trailing_punctuation() -> None:
    facts = find_facts("I work as a nurse at the children's hospital in the old city centre near the river!")
    assert facts == [("work", "a nurse at the children's hospital")]
    assert find_facts("Sometimes I love cooking Italian food for my whole family on Sundays.") == [
        ("likes", "cooking Italian food")]


@pytest.mark.parametrize(("said", "facts"), [
    ("Oh hey, Dev here.", [("name", "Dev")]),
    ("Good evening Samantha, it's Joaquim here.", [("name", "Joaquim")]),
    ("I run a small flower shop near the station.", [("work", "run a small flower shop")]),
    ("My partner and I own a tiny cafe in Porto.", [("work", "own a tiny cafe in Porto")]),
    ("I run my own design studio.", [("work", "run a design studio")]),
    ("I teach chemistry at a secondary school.", [("work", "teach chemistry at a secondary school")]),
    ("I teach English at my daughter's school.", [("work", "teach English")]),
    ("Hello there. The name's Ingrid.", [("name", "Ingrid")]),
    ("I play the violin in a string quartet.", [("likes", "playing the violin in a string quartet")]),
    ("I play badminton most weekends.", [("likes", "playing badminton")]),
    ("I still play chess online, mostly at night.", [("likes", "playing chess")]),
    ("I've just adopted a kitten, a grey tabby called Pickle.", [("pet", "a kitten named Pickle")]),
    ("We rescued a puppy named Juno two weeks ago.", [("pet", "a puppy named Juno")]),
    ("I got a hamster yesterday.", [("pet", "a hamster")]),
    ("I have a dog, a neighbour called Jo walks him.", [("pet", "a dog")]),
    ("I moved to Utrecht nearly two years ago to be closer to my sister.", [("home", "in Utrecht")]),
    ("I moved to Ghent last spring for a job at the university.", [("home", "in Ghent")]),
    ("We've lived in Oslo for over a decade.", [("home", "in Oslo")]),
    ("I've been living in Kraków since last spring.", [("home", "in Kraków")]),
    ("I live in Bristol these days.", [("home", "in Bristol")]),
    ("I'm from Chile originally.", [("home", "from Chile")]),
    ("I work at the post office three days a week.", [("work", "at the post office")]),
    ("I love cooking for my grandchildren.", [("likes", "cooking")]),
    ("I'm a teacher at my son's school.", [("work", "a teacher")]),
])
def test_finds_more_ways_of_saying_it_and_ends_values_before_times(said: str, facts: list[tuple[str, str]]) -> None:
    """A value is what reads after its kind in "Mei runs…", "Mei lives…": no time, purpose or "my" in it."""
    assert find_facts(said) == facts


@pytest.mark.parametrize("said", [
    "Do you play the violin?",
    "What is my cat called?",
    "My brother plays the drums.",
    "I don't play any instruments.",
    "I used to play the piano.",
    "I play with my nephews after school.",
    "I play a lot of games on my phone.",
    "I run every morning before work.",
    "I run a marathon each spring.",
    "I own a car.",
    "I run a business meeting every Monday.",
    "My aunt runs a bakery.",
    "I'd love to run a cafe one day.",
    "I teach myself Japanese.",
    "My wife thinks I play the piano well.",
    "Sometimes I pretend I run a restaurant.",
    "Cold here.",
    "Stop here.",
    "Mum here.",
    "It's Christmas Eve here.",
    "Is Dev here?",
    "I got a chicken at the market.",
    "I got a puppy for my niece.",
    "I almost got a kitten.",
    "My sister got a puppy named Rolo.",
    "We got a dog bed.",
])
def test_the_new_ways_still_state_nothing_when_nothing_is_stated(said: str) -> None:
    assert find_facts(said) == []


def test_work_told_with_a_verb_reads_naturally() -> None:
    profile = UserProfile()
    profile.learn("Hello, Mei here. I run a small flower shop near the station.", now=NOW)
    assert "Mei runs a small flower shop." in profile.describe("Samantha")
    assert "I run a small flower shop." in profile.in_their_words()
    teacher = UserProfile()
    teacher.learn("I teach chemistry at a secondary school.", now=NOW)
    assert teacher.describe("Samantha") == "The person you are talking with teaches chemistry at a secondary school."
    assert teacher.in_their_words() == "I teach chemistry at a secondary school."


def test_a_correction_replaces_the_name() -> None:
    profile = UserProfile()
    profile.learn("Hi, I'm Leo.", now=NOW)
    learned = profile.learn("Actually, my name is Theo, not Leo.", now="2026-12-02T10:42:00Z")
    assert learned == [Fact("name", "Theo", "2026-12-02T10:42:00Z")]
    assert profile.name == "Theo"
    assert [f.value for f in profile.of_kind("name")] == ["Theo"]


def test_learn_returns_only_what_is_new_or_changed() -> None:
    profile = UserProfile()
    first = profile.learn("I'm Priya and I work as a nurse.", now=NOW)
    assert first == [Fact("name", "Priya", NOW), Fact("work", "a nurse", NOW)]
    assert profile.learn("I work as a nurse.", now=NOW) == [], "the same fact again is not news"
    assert profile.learn("My name is priya.", now=NOW) == [], "nor is it in another case"
    changed = profile.learn("I work at the library now.", now=NOW)
    assert changed == [Fact("work", "at the library", NOW)]
    assert [f.value for f in profile.of_kind("work")] == ["at the library"]
    assert profile.learn("Do you remember what I do?", now=NOW) == []


def test_learned_is_a_utc_timestamp_when_no_time_is_given() -> None:
    (fact,) = UserProfile().learn("My name is Theo.")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", fact.learned)


def test_a_fuller_or_newer_telling_replaces_the_old_one() -> None:
    profile = UserProfile()
    profile.learn("I have a cat.", now=NOW)
    assert profile.learn("My cat is called Miso.", now=NOW) == [Fact("pet", "a cat named Miso", NOW)]
    assert [f.value for f in profile.of_kind("pet")] == ["a cat named Miso"]
    assert profile.learn("I have a cat.", now=NOW) == [], "less than she knows is nothing new"
    profile.learn("My favourite food is ramen.", now=NOW)
    profile.learn("My favourite food is sushi.", now=NOW)
    assert [f.value for f in profile.of_kind("likes")] == ["favourite food is sushi"]


def test_a_few_of_each_kind_are_kept_newest_last() -> None:
    profile = UserProfile()
    for thing in ("painting", "hiking", "jazz", "gardening", "chess"):
        profile.learn(f"I love {thing}.", now=NOW)
    assert [f.value for f in profile.of_kind("likes")] == ["jazz", "gardening", "chess"]
    profile.learn("I'm from Kenya but I live in Lisbon.", now=NOW)
    assert [f.value for f in profile.of_kind("home")] == ["in Lisbon"]


def test_describe_speaks_of_the_user_by_name_from_her_side() -> None:
    profile = UserProfile()
    for said in ("Hi Samantha, I'm Priya.", "I work as a nurse at the children's hospital.", "I live in Lisbon.",
                 "I have a cat named Miso.", "I love painting.", "My favourite food is ramen."):
        profile.learn(said, now=NOW)
    note = profile.describe("Samantha")
    assert note.startswith("You are talking with Priya.")
    for told in ("Priya works as a nurse at the children's hospital.", "Priya lives in Lisbon.",
                 "Priya has a cat named Miso.", "Priya loves painting.", "Priya's favourite food is ramen."):
        assert told in note
    for wrong in ("your friend", "the user", "their name is"):
        assert wrong not in note.lower()


def test_describe_without_a_name_still_speaks_to_her() -> None:
    profile = UserProfile()
    profile.learn("I'm a teacher and I'm from Kenya.", now=NOW)
    note = profile.describe("Samantha")
    assert note == "The person you are talking with works as a teacher. They are from Kenya."
    assert UserProfile().describe("Samantha") == ""
    assert UserProfile().is_empty and not profile.is_empty


def test_saved_then_loaded_in_the_next_session(tmp_path: Path) -> None:
    store = ProfileStore(tmp_path / "data" / "voiceos" / "memory.json")
    profile = store.load()
    assert profile.is_empty, "no file yet: nothing remembered"
    profile.learn("Hi Samantha, I'm Theo. My dog is called Biscuit.", now=NOW)
    store.save(profile)

    next_session = ProfileStore(store.path).load()
    assert next_session.facts == profile.facts
    assert next_session.name == "Theo"
    data = json.loads(store.path.read_text(encoding="utf-8"))
    assert data["schema"] == SCHEMA
    assert data["facts"][0] == {"kind": "name", "value": "Theo", "learned": NOW}
    assert sorted(p.name for p in store.path.parent.iterdir()) == ["memory.json"], "no temporary file left"
    assert os.stat(store.path).st_mode & 0o077 == 0, "what she knows of the user is theirs alone"


def test_a_save_replaces_the_file_whole(tmp_path: Path) -> None:
    store = ProfileStore(tmp_path / "memory.json")
    profile = UserProfile()
    profile.learn("I'm Theo.", now=NOW)
    store.save(profile)
    profile.learn("Actually, call me Theodora.", now=NOW)
    store.save(profile)
    assert store.load().name == "Theodora"


@pytest.mark.parametrize("content", ["{not json", '{"schema": "something-else/1", "facts": []}',
                                     f'{{"schema": "{SCHEMA}", "facts": [{{"kind": "name"}}]}}', "[]"])
def test_a_corrupt_file_gives_a_config_error_naming_the_file(tmp_path: Path, content: str) -> None:
    path = tmp_path / "memory.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        ProfileStore(path).load()
    message = str(caught.value)
    assert str(path) in message
    assert "voiceos memory forget" in message
    assert "\n" not in message


def test_forget_deletes_and_counts(tmp_path: Path) -> None:
    store = ProfileStore(tmp_path / "memory.json")
    assert store.forget() == 0, "nothing to forget"
    profile = UserProfile()
    profile.learn("I'm Theo and I live in Lisbon.", now=NOW)
    store.save(profile)
    assert store.forget() == 2
    assert not store.path.exists()
    assert store.load().is_empty
    store.path.write_text("{garbage", encoding="utf-8")
    assert store.forget() == 0
    assert not store.path.exists(), "an unreadable file is deleted too"


def test_default_memory_path_is_in_the_user_data_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    assert default_memory_path() == tmp_path / "xdg-data" / "voiceos" / "memory.json"


def test_memory_show_lists_the_facts_and_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "memory.json"
    profile = UserProfile()
    profile.learn("Hi, I'm Priya. I work as a nurse.", now=NOW)
    ProfileStore(path).save(profile)
    assert run_memory("show", path) == 0
    out, err = capsys.readouterr()
    assert "name: Priya (learned 2026-12-02 10:41 UTC)" in out.splitlines()
    assert "work: a nurse (learned 2026-12-02 10:41 UTC)" in out.splitlines()
    assert str(path) in out
    assert err == ""


def test_memory_show_when_nothing_is_remembered(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_memory("show", tmp_path / "memory.json") == 0
    assert "Samantha remembers nothing about you yet." in capsys.readouterr().out
    assert not (tmp_path / "memory.json").exists(), "showing creates nothing"


def test_memory_forget_deletes_and_says_how_much(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "memory.json"
    profile = UserProfile()
    profile.learn("I'm Priya. I love painting.", now=NOW)
    ProfileStore(path).save(profile)
    assert run_memory("forget", path) == 0
    assert "forgot 2 fact(s)" in capsys.readouterr().out
    assert not path.exists()
    assert run_memory("forget", path) == 0
    assert "forgot 0 fact(s)" in capsys.readouterr().out


def test_memory_of_a_corrupt_file_show_fails_and_forget_clears(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "memory.json"
    path.write_text("{half a file", encoding="utf-8")
    with pytest.raises(ConfigError, match="voiceos memory forget"):
        run_memory("show", path)
    assert path.exists(), "show never deletes"
    assert run_memory("forget", path) == 0
    assert "forgot 0 fact(s)" in capsys.readouterr().out
    assert not path.exists()
