"""The product as a user meets it: `voiceos chat` on real PortAudio streams through virtual PulseAudio
devices (voiceos.audio.virtual_devices) — what it heard, what it said out loud, and what it logged."""

from __future__ import annotations

import re
import signal
import time
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import Chat, count, records, references, wait_until

pytestmark = [pytest.mark.models, pytest.mark.pulse]


@pytest.fixture
def chat(pulse, tmp_path: Path) -> Iterator[Chat]:  # type: ignore[no-untyped-def]
    c = Chat(pulse, tmp_path)
    yield c
    c.stop()


def read_stereo(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with wave.open(str(path), "rb") as w:
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").reshape(-1, 2).astype(np.float32) / 32768.0
    return data[:, 0], data[:, 1]


def loud_seconds(samples: np.ndarray, floor: float = 0.01) -> float:
    frames = samples[: len(samples) // 160 * 160].reshape(-1, 160)
    return float((np.sqrt((frames**2).mean(axis=1)) > floor).sum() * 0.01)


def test_chat_hears_answers_and_logs_a_complete_turn(pulse, chat: Chat, speech_dir: Path, tmp_path: Path) -> None:
    recording = tmp_path / "speaker.wav"
    recorder = pulse.record("vrec.monitor", recording, channels=2)
    time.sleep(0.5)
    pulse.play(speech_dir / "spk1_snt3.wav", "vmic").wait()
    wait_until(lambda: count(chat.log_dir, "turn") >= 1, 90, "a turn record")
    time.sleep(0.5)
    recorder.send_signal(signal.SIGINT)
    recorder.wait(timeout=5)
    assert chat.stop() == 0, chat.err_path.read_text()

    from voiceos.listen.transcript import normalise

    recs = records(chat.log_dir)
    turns = [r for r in recs if r["type"] == "turn"]
    assert len(turns) == 1
    turn = turns[0]
    assert normalise(turn["user"]["text"]) == normalise(references()["spk1_snt3.wav"])
    words = turn["user"]["words"]
    assert [normalise(w["word"]) for w in words] == normalise(references()["spk1_snt3.wav"]).split()
    assert all(w["start"] <= w["end"] and 0.0 <= w["prob"] <= 1.0 for w in words)
    assert turn["user"]["speech_start"] <= words[0]["end"] and turn["user"]["speech_end"] == words[-1]["end"]
    assert turn["reply"]["text"] and turn["reply"]["interrupted"] is False
    for key in ("endpoint", "stt", "llm_first_token", "first_clause", "tts_first_audio", "voice_to_voice"):
        assert turn["timings_ms"][key] is not None and turn["timings_ms"][key] > 0, key
    for key in ("gaps_ms", "lead_ms", "tail_ms", "pause_s", "speech_s", "cpu_idle_s", "cpu_busy_s",
                "cpu_used_by_us_s", "could_decode_tokens", "could_read_tokens", "could_read_pages",
                "could_read_books", "samantha_ratio", "used_fraction"):
        assert key in turn["pauses"], key
    assert [r["type"] for r in recs][-1] == "session_end"
    # She was heard on the speaker: seconds of sound on the right channel after the user's words.
    _user, her = read_stereo(recording)
    assert loud_seconds(her) > 0.5
    out = (tmp_path / "chat.out").read_text()
    assert "you      › At that high level" in out and "samantha ›" in out and "voice-to-voice" in out


def test_her_own_voice_looped_back_is_not_a_user_turn(pulse, chat: Chat, speech_dir: Path) -> None:
    loop = pulse.loopback("vspk.monitor", "vmic", latency_ms=60)
    try:
        pulse.play(speech_dir / "spk1_snt5.wav", "vmic").wait()
        wait_until(lambda: count(chat.log_dir, "turn") >= 1, 90, "the answer")
        time.sleep(8.0)  # time for her echo to be (wrongly) taken as a new turn
    finally:
        pulse.unload(loop)
    chat.stop()
    recs = records(chat.log_dir)
    turns = [r for r in recs if r["type"] == "turn"]
    assert len(turns) == 1, [t["user"]["text"] for t in turns]
    assert turns[0]["reply"]["interrupted"] is False
    assert not [r for r in recs if r["type"] in ("barge_in", "dropped")]
    assert turns[0]["echo"]["cancelled_frames"] > 10  # her voice did come back, and was cancelled


def test_talking_over_her_stops_her_and_is_logged(pulse, chat: Chat, speech_dir: Path, tmp_path: Path) -> None:
    from conftest import espeak_words

    from voiceos.audio.wav import write_wav

    # A question that asks for a story, so that her answer is long enough to be talked over.
    question = write_wav(tmp_path / "question.wav", espeak_words(["Tell me a story about the sea."], [])[0])
    recording = tmp_path / "speaker.wav"
    recorder = pulse.record("vrec.monitor", recording, channels=2)
    pulse.play(question, "vmic").wait()
    wait_until(lambda: count(chat.log_dir, "reply_start") >= 1, 60, "her reply to start")
    time.sleep(2.0)  # well into her reply: sooner, going on over her first words would be the same turn
    pulse.play(speech_dir / "spk1_snt1.wav", "vboth").wait()
    wait_until(lambda: count(chat.log_dir, "turn") >= 2, 90, "the second turn")
    time.sleep(0.5)
    recorder.send_signal(signal.SIGINT)
    recorder.wait(timeout=5)
    chat.stop()
    recs = records(chat.log_dir)
    turns = [r for r in recs if r["type"] == "turn"]
    first, second = turns[0], turns[1]
    assert first["reply"]["interrupted"] is True
    assert len(first["reply"]["text"].split()) < len(first["reply"]["generated"].split())
    assert [r for r in recs if r["type"] == "barge_in"]
    from voiceos.listen.transcript import normalise

    assert normalise(second["user"]["text"]) == normalise(references()["spk1_snt1.wav"])
    # From outside: she goes quiet within ~300 ms of talking plus 200 ms of the user starting to talk over her.
    user, her = read_stereo(recording)
    talk = np.flatnonzero(np.abs(user) > 0.02)[0] / 16000.0  # the second utterance is the only one on the left
    frames = her[: len(her) // 160 * 160].reshape(-1, 160)
    loud = np.sqrt((frames**2).mean(axis=1)) > 0.01
    after = np.flatnonzero(loud[int(talk * 100) :])
    quiet_from = next(k for k in range(len(after)) if k + 1 >= len(after) or after[k + 1] - after[k] > 30)
    stopped = talk + after[quiet_from] * 0.01 if len(after) else talk
    assert stopped - talk <= 0.3 + 0.2 + 0.15, f"she kept talking {stopped - talk:.2f} s over the user"


def test_ctrl_c_in_the_middle_of_a_reply_keeps_what_was_said(pulse, chat: Chat, speech_dir: Path) -> None:
    pulse.play(speech_dir / "spk1_snt2.wav", "vmic").wait()
    wait_until(lambda: count(chat.log_dir, "reply_start") >= 1, 60, "her reply to start")
    time.sleep(0.3)
    assert chat.stop() == 0, chat.err_path.read_text()
    recs = records(chat.log_dir)  # every line whole
    assert [r["type"] for r in recs][-1] == "session_end"
    turns = [r for r in recs if r["type"] == "turn"]
    assert len(turns) == 1 and turns[0]["reply"]["interrupted"] is True
    assert "Traceback" not in chat.err_path.read_text()


def test_audio_server_vanishing_mid_session_ends_with_one_line(speech_dir: Path, tmp_path: Path) -> None:
    from voiceos.audio.virtual_devices import PulseRig

    rig = PulseRig(tmp_path / "pulse").start()
    try:
        chat = Chat(rig, tmp_path)
        rig.play(speech_dir / "spk1_snt4.wav", "vmic").wait()
        wait_until(lambda: count(chat.log_dir, "reply_start") >= 1, 60, "her reply to start")
    finally:
        rig.stop()  # the microphone and speaker vanish
    chat.proc.wait(timeout=30)
    err = chat.err_path.read_text()
    assert chat.proc.returncode == 5  # a device error (README: When things go wrong)
    assert "Traceback" not in err
    assert re.search(r"^voiceos: error: the (input|output) device stopped", err, re.M), err[-2000:]
    recs = records(chat.log_dir)  # still whole JSON, line by line
    assert [r["type"] for r in recs][-1] == "session_end"
    assert any(r["type"] == "error" for r in recs)
