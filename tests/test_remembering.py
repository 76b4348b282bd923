"""Memory of the person across sessions, through the real voice loop and the scorecard's text sessions with
scripted models: what the user says about themselves is logged, kept in the memory file, and in the next
session's prompts; `--no-memory` keeps nothing; a bad memory file is one clear error."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from voiceos.commands.eval.runner import run_script
from voiceos.commands.eval.script import Recall, Script, ScriptTurn
from voiceos.config import Config
from voiceos.errors import ConfigError
from voiceos.loop.session import Engines, Session
from voiceos.testing import Lexicon, ScriptedLlm, ScriptedTranscriber, ScriptedVad, run_conversation, silence
from voiceos.think.persona import load_persona
from voiceos.think.user_profile import ProfileStore


def remembering(memory_file: Path | None) -> Config:
    config = Config()
    config.session.memory_file = memory_file
    config.session.memory = memory_file is not None
    return config


def say(lex: Lexicon, text: str) -> np.ndarray:
    return np.concatenate([lex.speech(text, 0.1), silence(3.0)])


def test_what_the_user_tells_about_themselves_is_logged_kept_and_known_in_the_next_session(tmp_path: Path) -> None:
    lex = Lexicon()
    memory_file = tmp_path / "memory.json"
    first = run_conversation(say(lex, "Hi Samantha, my name is Theo and I work as a nurse."), lex,
                             config=remembering(memory_file))
    (remembered,) = first.of_type("remembered")
    assert remembered["turn"] == 1 and remembered["saved"] is True
    assert {(f["kind"], f["value"]) for f in remembered["facts"]} == {("name", "Theo"), ("work", "a nurse")}
    assert {f.value for f in ProfileStore(memory_file).load().facts} == {"Theo", "a nurse"}

    llm = ScriptedLlm()
    second = run_conversation(say(lex, "Do you remember me?"), lex, llm=llm, config=remembering(memory_file))
    start = second.of_type("session_start")[0]
    assert [f["value"] for f in start["memory"]["facts"]] == ["Theo", "a nurse"]
    assert not second.of_type("remembered"), "nothing new was said about the user"
    # told to the model as facts about the person she talks with, in front of their newest words
    prompt = llm.prompts[-1]
    assert "their name is Theo; they work as a nurse" in prompt
    assert prompt.index("Theo") > prompt.index("Are you a computer?")  # after the persona and its examples


def test_a_session_without_memory_reads_and_keeps_nothing(tmp_path: Path) -> None:
    lex = Lexicon()
    memory_file = tmp_path / "memory.json"
    ProfileStore(memory_file).save(ProfileStore(memory_file).load())  # an empty memory exists
    llm = ScriptedLlm()
    config = remembering(memory_file)
    config.session.memory = False
    run = run_conversation(say(lex, "Hi Samantha, my name is Theo."), lex, llm=llm, config=config)
    assert run.of_type("session_start")[0]["memory"] is None
    (remembered,) = run.of_type("remembered")  # known for this session...
    assert remembered["saved"] is False
    assert ProfileStore(memory_file).load().is_empty  # ...and nowhere after it


def test_a_corrupt_memory_file_is_one_clear_error_before_any_log(tmp_path: Path) -> None:
    memory_file = tmp_path / "memory.json"
    memory_file.write_text("{not json")
    engines = Engines(ScriptedTranscriber(Lexicon()), ScriptedLlm(), load_persona(), make_vad=ScriptedVad)
    with pytest.raises(ConfigError, match="memory forget"):
        Session(remembering(memory_file), engines, log_dir=tmp_path / "logs")
    assert not (tmp_path / "logs").exists()


def test_the_scorecard_session_remembers_across_a_restart_only_with_memory(tmp_path: Path) -> None:
    """A scripted restart is a new session over the same memory file: the history is gone, the name is not."""
    script = Script("theo", "memory", (
        ScriptTurn("Hi Samantha, my name is Theo."),
        ScriptTurn("The sea was grey today."),
        ScriptTurn("Do you remember my name?", restart=True, recall=("Theo",), recall_kind=Recall.NAME),
    ), user_name="Theo")
    persona = load_persona()
    for store in (ProfileStore(tmp_path / "theo.json"), None):
        llm = ScriptedLlm(reply_to=lambda said: f"Mm, {said.split()[-1].strip('.?').lower()}, I hear you.")
        replies = run_script(llm, persona, Config(), script, store)
        assert [r.turn for r in replies] == [1, 2, 3]
        assert [r.after_restart for r in replies] == [False, False, True]
        assert replies[1].reply == "Mm, today, I hear you."
        after_restart = llm.prompts[-1]
        assert "The sea was grey today." not in after_restart  # a new session: no history
        assert ("their name is Theo" in after_restart) == (store is not None)
    assert json.loads((tmp_path / "theo.json").read_text())["facts"][0]["value"] == "Theo"


def test_she_never_says_the_users_name_or_facts_as_her_own(tmp_path: Path) -> None:
    """Asked "what is my name?", a small model answers "My name is Theo": the guard takes that for a reply
    out of character and writes it again; a model that keeps at it is cut before the claim is said."""
    lex = Lexicon()
    memory_file = tmp_path / "memory.json"
    run_conversation(say(lex, "Hi Samantha, my name is Theo and I work as a nurse."), lex,
                     config=remembering(memory_file))
    confused = ScriptedLlm(reply_to=lambda said: "Your name is… oh! My name is Theo. I work as a nurse.")
    run = run_conversation(say(lex, "What is my name?"), lex, llm=confused, config=remembering(memory_file))
    (turn,) = run.turns
    assert "my name is theo" in turn.reply.guard_hits
    assert "Theo" not in turn.reply.text and turn.reply.text.startswith("Your name is… oh!")
    fine = ScriptedLlm(reply_to=lambda said: "Your name is Theo, and you work as a nurse.")
    run = run_conversation(say(lex, "What is my name?"), lex, llm=fine, config=remembering(memory_file))
    assert run.turns[0].reply.text == "Your name is Theo, and you work as a nurse."
