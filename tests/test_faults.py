"""The fault suite: Ctrl-C at every phase of a session and devices that go away under a chat, on real
PortAudio streams through a private PulseAudio (voiceos.audio.virtual_devices).

Each Ctrl-C is sent when the program says it has reached the phase (a status line on stderr before the
log exists, a log record after), never after a sleep. What a user checks: the exit code, one line and no
traceback, and a log that ends with `session_end`. Config fuzzing is in test_config.py, the soak in
test_long_session.py, the audio server killed in test_live_audio.py.
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ROOT, VOICEOS, Chat, count, records, wait_until

pytestmark = [pytest.mark.models, pytest.mark.pulse]


def last_lines_ok(err: str) -> None:
    assert "Traceback" not in err, err[-3000:]


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[object]:
    """A private PulseAudio of its own: these tests unplug its devices."""
    from voiceos.audio.virtual_devices import pulse_rig

    with pulse_rig(tmp_path / "pulse") as r:
        yield r


# --- Ctrl-C -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("phase, extra", [
    ("loading speech recognition", []),
    ("loading the language model", []),
    ("calibrating", ["--recalibrate"]),
])
def test_ctrl_c_while_loading_stops(rig, tmp_path: Path, phase: str, extra: list[str]) -> None:  # type: ignore[no-untyped-def]
    err_path = tmp_path / "err.txt"
    proc = subprocess.Popen([*VOICEOS, "demo", "--no-play", "--fast", "--log-dir", str(tmp_path / "logs"),
                             "--out", str(tmp_path / "out"), *extra],
                            env=rig.env(), stdout=subprocess.DEVNULL, stderr=err_path.open("w"), cwd=ROOT)
    wait_until(lambda: phase in err_path.read_text(), 120, f"the status line {phase!r}")
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 130
    err = err_path.read_text()
    last_lines_ok(err)
    assert err.rstrip().splitlines()[-1] == "voiceos: stopped"
    assert "answered" not in err  # the session never started
    assert not list((tmp_path / "logs").glob("*.jsonl"))  # the log opens once the models are loaded


def test_ctrl_c_while_listening_ends_the_chat_cleanly(rig, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    chat = Chat(rig, tmp_path)
    assert chat.stop() == 0
    recs = chat.records()
    assert [r["type"] for r in recs][-1] == "session_end"
    assert recs[-1]["reason"] == "ended with Ctrl-C" and recs[-1]["turns"] == 0
    last_lines_ok(chat.err())


def test_ctrl_c_while_she_thinks_keeps_the_turn(rig, tmp_path: Path, speech_dir: Path) -> None:  # type: ignore[no-untyped-def]
    chat = Chat(rig, tmp_path)
    rig.play(speech_dir / "spk1_snt2.wav", "vmic")
    wait_until(lambda: count(chat.log_dir, "turn_end") == 1, 60, "the end of the user's turn")
    assert chat.stop() == 0
    recs = chat.records()
    assert [r["type"] for r in recs][-1] == "session_end"
    [turn] = [r for r in recs if r["type"] == "turn"]
    assert turn["user"]["text"] and turn["user"]["words"]  # what was heard is kept, timed
    if turn["reply"]["interrupted"]:  # Ctrl-C came before her reply ended (nearly always: it takes seconds)
        assert turn["reply"]["cut_by"] == "ctrl_c"
    last_lines_ok(chat.err())


def test_two_ctrl_c_while_she_speaks_still_leave_a_whole_log(rig, tmp_path: Path, speech_dir: Path) -> None:  # type: ignore[no-untyped-def]
    """The second Ctrl-C lands while the session is closing (stopping workers, writing the log)."""
    chat = Chat(rig, tmp_path)
    rig.play(speech_dir / "spk1_snt2.wav", "vmic")
    wait_until(lambda: count(chat.log_dir, "reply_start") == 1, 60, "her reply to start")
    chat.proc.send_signal(signal.SIGINT)
    chat.proc.send_signal(signal.SIGINT)  # at once: it lands while she is stopped and the session closes
    assert chat.proc.wait(timeout=30) == 0
    recs = chat.records()
    assert [r["type"] for r in recs][-1] == "session_end"
    [turn] = [r for r in recs if r["type"] == "turn"]
    assert turn["reply"]["interrupted"] and turn["reply"]["cut_by"] == "ctrl_c"
    last_lines_ok(chat.err())


def test_ctrl_c_in_the_demo_exits_130_with_a_whole_log(rig, tmp_path: Path, speech_dir: Path) -> None:  # type: ignore[no-untyped-def]
    logs, err_path = tmp_path / "logs", tmp_path / "err.txt"
    proc = subprocess.Popen([*VOICEOS, "demo", "--no-play", "--log-dir", str(logs), "--out", str(tmp_path / "out"),
                             "--input", str(speech_dir / "jfk.wav")],
                            env=rig.env(), stdout=subprocess.DEVNULL, stderr=err_path.open("w"), cwd=ROOT)
    wait_until(lambda: count(logs, "ready") == 1, 240, "the demo to listen")
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 130
    recs = records(logs)
    assert recs[-1]["type"] == "session_end" and recs[-1]["reason"] == "interrupted"
    assert err_path.read_text().rstrip().splitlines()[-2:][-1].startswith("voiceos: stopped")
    last_lines_ok(err_path.read_text())


# --- devices that go away -------------------------------------------------------------------------------


def test_speaker_unplugged_while_she_speaks_is_followed(rig, tmp_path: Path, speech_dir: Path) -> None:  # type: ignore[no-untyped-def]
    rig.pactl("set-default-sink", "vuser")  # where the system sends sound once her speaker is gone
    chat = Chat(rig, tmp_path)
    rig.play(speech_dir / "spk1_snt2.wav", "vmic").wait()
    wait_until(lambda: count(chat.log_dir, "reply_start") == 1, 60, "her reply to start")
    rig.remove_sink("vspk")
    wait_until(lambda: count(chat.log_dir, "device_change") >= 1, 15, "the change to be noticed")
    rig.play(speech_dir / "spk1_snt4.wav", "vmic").wait()  # the chat goes on
    wait_until(lambda: count(chat.log_dir, "turn") == 2, 60, "the next turn")
    assert chat.stop() == 0
    recs = chat.records()
    [change] = [r for r in recs if r["type"] == "device_change"]
    assert (change["stream"], change["before"], change["after"]) == ("output", "vspk", "vuser")
    first, second = [r for r in recs if r["type"] == "turn"]
    assert first["reply"]["interrupted"] and first["reply"]["cut_by"] == "device_lost"
    assert second["reply"]["text"]
    err = chat.err()
    assert "voiceos: the speaker moved from vspk to vuser; following it" in err
    assert "hear herself" not in err
    last_lines_ok(err)


def test_speaker_moved_onto_her_own_microphone_is_warned(rig, tmp_path: Path, speech_dir: Path) -> None:  # type: ignore[no-untyped-def]
    chat = Chat(rig, tmp_path)  # listens on vmic.monitor; vmic is also the default sink
    rig.play(speech_dir / "spk1_snt2.wav", "vmic").wait()
    wait_until(lambda: count(chat.log_dir, "reply_start") == 1, 60, "her reply to start")
    rig.remove_sink("vspk")
    wait_until(lambda: count(chat.log_dir, "device_feedback") >= 1, 15, "the warning")
    assert chat.stop() == 0
    err = chat.err()
    assert "voiceos: the speaker moved from vspk to vmic; following it" in err
    assert "her voice now reaches the input she listens on (vmic → vmic.monitor)" in err
    last_lines_ok(err)


def test_speaker_unplugged_with_stop_ends_the_session(rig, tmp_path: Path, speech_dir: Path) -> None:  # type: ignore[no-untyped-def]
    chat = Chat(rig, tmp_path, "--on-device-loss", "stop")
    rig.play(speech_dir / "spk1_snt2.wav", "vmic").wait()
    wait_until(lambda: count(chat.log_dir, "reply_start") == 1, 60, "her reply to start")
    rig.remove_sink("vspk")
    assert chat.proc.wait(timeout=30) == 5
    err = chat.err()
    last_lines_ok(err)
    assert err.rstrip().splitlines()[-1] == (
        "voiceos: error: the speaker moved from vspk to vmic; stopping (--on-device-loss stop)")
    recs = chat.records()
    assert recs[-1]["type"] == "session_end"
    [turn] = [r for r in recs if r["type"] == "turn"]
    assert turn["reply"]["cut_by"] == "device_lost"


def test_microphone_unplugged_while_listening_is_followed(rig, tmp_path: Path, speech_dir: Path) -> None:  # type: ignore[no-untyped-def]
    rig.pactl("set-default-source", "vuser.monitor")  # the microphone the system offers next
    chat = Chat(rig, tmp_path)
    rig.remove_sink("vmic")  # vmic.monitor, the microphone, goes with it
    wait_until(lambda: count(chat.log_dir, "device_change") >= 1, 15, "the change to be noticed")
    rig.play(speech_dir / "spk1_snt4.wav", "vuser").wait()  # the user, now heard on the new microphone
    wait_until(lambda: count(chat.log_dir, "turn") == 1, 60, "a turn on the new microphone")
    assert chat.stop() == 0
    recs = chat.records()
    [change] = [r for r in recs if r["type"] == "device_change"]
    assert (change["stream"], change["before"], change["after"]) == ("input", "vmic.monitor", "vuser.monitor")
    assert next(r for r in recs if r["type"] == "turn")["user"]["text"]
    err = chat.err()
    assert "voiceos: the microphone moved from vmic.monitor to vuser.monitor; following it" in err
    last_lines_ok(err)


def test_microphone_unplugged_with_stop_ends_the_session(rig, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    chat = Chat(rig, tmp_path, "--on-device-loss", "stop")
    rig.remove_sink("vmic")
    assert chat.proc.wait(timeout=30) == 5
    err = chat.err()
    last_lines_ok(err)
    last = err.rstrip().splitlines()[-1]  # the stream may end before the server reports the move
    assert last.startswith(("voiceos: error: the microphone moved from vmic.monitor to ",
                            "voiceos: error: the input device stopped")), last
    assert chat.records()[-1]["type"] == "session_end"


# --- ready means ready -----------------------------------------------------------------------------------


def test_listening_is_said_once_the_microphone_hears(rig, tmp_path: Path, speech_dir: Path) -> None:  # type: ignore[no-untyped-def]
    """A user who starts talking the moment "listening" appears is heard from the first word."""
    chat = Chat(rig, tmp_path, wait_ready=False)
    wait_until(lambda: "listening — talk to Samantha" in chat.err(), 240, "the listening line")
    assert count(chat.log_dir, "ready") == 1  # logged before it was said
    rig.play(speech_dir / "spk1_snt4.wav", "vmic").wait()
    wait_until(lambda: count(chat.log_dir, "turn") == 1, 60, "her answer")
    assert chat.stop() == 0
    [turn] = [r for r in chat.records() if r["type"] == "turn"]
    heard = turn["user"]["text"].lower()
    assert heard.startswith("a thin stripe"), heard
    err = chat.err()
    assert err.index("opening the microphone") < err.index("listening — talk to Samantha")
    last_lines_ok(err)
