"""The live view as a person sees it: a real `voiceos chat` in a tmux pane (a real terminal) on the virtual
PulseAudio microphone and speaker. An utterance is played; the screen must show her state change, the words
recognised, her reply and the pauses; `m` mutes, a resize does not hurt, `q` ends the session cleanly."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ROOT, VOICEOS, count, records, references, wait_until

from voiceos.listen.transcript import normalise
from voiceos.view.tmux_pane import TmuxPane

pytestmark = [pytest.mark.models, pytest.mark.pulse]

BOX = re.compile(r"[│─╭╮╰╯┃━]")


def flat(screen: str) -> str:
    """The screen's words in reading order, panel borders and line breaks gone (wrapped lines join up)."""
    return normalise(BOX.sub(" ", screen))


@pytest.fixture
def pane(pulse, tmp_path: Path) -> Iterator[TmuxPane]:  # type: ignore[no-untyped-def]
    view = TmuxPane(tmp_path / "tmux", [*VOICEOS, "chat", "--log-dir", str(tmp_path / "logs")], pulse.env(),
                    stderr=tmp_path / "chat.err", cwd=ROOT).start()
    yield view
    view.close()


def test_the_view_shows_her_listen_hear_think_and_answer_and_q_ends_it(pulse, pane: TmuxPane, speech_dir: Path,
                                                                        tmp_path: Path) -> None:
    log_dir = tmp_path / "logs"
    wait_until(lambda: count(log_dir, "ready") == 1, 240, "voiceos chat to be ready")
    wait_until(lambda: "Samantha is listening" in pane.capture(), 10, "the view to say she listens")

    screens: list[str] = []
    player = pulse.play(speech_dir / "spk1_snt3.wav", "vmic")
    resized = False

    def answered() -> bool:
        nonlocal resized
        screens.append(pane.capture())
        if not resized and count(log_dir, "reply_start"):
            pane.resize(90, 30)  # while she speaks
            resized = True
        return count(log_dir, "turn") >= 1

    wait_until(answered, 90, "a turn record")
    player.wait()
    (turn,) = [r for r in records(log_dir) if r["type"] == "turn"]
    assert normalise(turn["user"]["text"]) == normalise(references()["spk1_snt3.wav"])
    seen = "\n".join(screens)
    assert "Samantha is hearing you" in seen and ("Samantha is thinking" in seen or "Samantha is speaking" in seen)

    def the_turn_shown() -> bool:
        screen = pane.capture()
        text = flat(screen)
        return (normalise(turn["user"]["text"]) in text and normalise(turn["reply"]["text"]) in text
                and re.search(r"\d\.\d\d s", screen) is not None and "first audio" in screen)

    wait_until(the_turn_shown, 5, "the words, her reply, a pause row and the waterfall on screen")
    screen = pane.capture()
    assert max(len(line) for line in screen.splitlines()) <= 90  # drawn at the new size
    assert "session: 1 turn(s)" in screen

    pane.send("m")
    wait_until(lambda: "mic MUTED" in pane.capture(), 5, "the view to show the microphone muted")
    wait_until(lambda: count(log_dir, "mute") == 1, 5, "the mute to be logged")
    pane.send("?")
    wait_until(lambda: "mute or unmute" in pane.capture(), 5, "the help")
    pane.send("q")
    assert pane.wait(30) == 0, (tmp_path / "chat.err").read_text()
    recs = records(log_dir)
    assert recs[-1]["type"] == "session_end" and recs[-1]["reason"] == "ended with the q key"
    assert [r["muted"] for r in recs if r["type"] == "mute"] == [True]
    assert "Traceback" not in (tmp_path / "chat.err").read_text()
    after = pane.capture()  # the view is gone; the conversation stays on the terminal as lines
    assert "you      › " in after and "samantha › " in after and "\x1b" not in after
