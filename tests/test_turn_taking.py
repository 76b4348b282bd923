"""Letting people finish and hearing every word, with the real models on real espeak-ng speech fed in real
time: a slow, thoughtful speaker is answered once, after the last word, with every word and pause in the
record; a question whose last word trails off is heard to its end."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import espeak_words

from voiceos.listen.transcript import normalise

pytestmark = pytest.mark.models

SLOW_SENTENCE = ["samantha", "do", "you", "ever", "wonder", "what", "happens", "in", "the", "silence", "between",
                 "my", "words"]
EDGE_S = 0.060


def converse(engines: Any, config: Any, tmp_path: Path, audio: np.ndarray) -> list[dict[str, Any]]:
    from voiceos.audio.speaker import VirtualSpeaker
    from voiceos.audio.wav_source import WavSource, WavTurn
    from voiceos.loop.session import Session

    session = Session(config, engines, log_dir=tmp_path)
    speaker = VirtualSpeaker(session.clock).start()
    try:
        session.converse(WavSource(session.clock, [WavTurn("utterance", audio)], realtime=True), speaker)
    finally:
        speaker.close()
        session.close()
    return [json.loads(line) for line in session.log.path.read_text().splitlines()]


def test_a_slow_speaker_is_answered_once_after_the_last_word_with_every_word_and_pause(
        engines: Any, config: Any, tmp_path: Path) -> None:
    rng = random.Random(5)
    pauses = [round(rng.uniform(0.12, 0.6), 3) for _ in SLOW_SENTENCE[1:]]
    audio, starts = espeak_words(SLOW_SENTENCE, pauses)
    log = converse(engines, config, tmp_path, audio)
    turns = [r for r in log if r["type"] == "turn"]
    taken_back = [r for r in log if r["type"] in ("turn_reopened", "turn_merged", "barge_in")]
    assert len(turns) == 1 and not taken_back, [(r["type"], r.get("user", {}).get("text")) for r in turns + taken_back]
    (turn,) = turns
    words = turn["user"]["words"]
    assert [normalise(w["word"]) for w in words] == SLOW_SENTENCE, turn["user"]["text"]
    t0 = words[0]["start"] - 0.3  # the audio's first sample on the session clock (0.3 s lead-in)
    for k, (pause, start) in enumerate(zip(pauses, starts)):
        assert words[k]["end"] - t0 == pytest.approx(start, abs=EDGE_S), f"pause after {SLOW_SENTENCE[k]!r}"
        assert words[k + 1]["start"] - t0 == pytest.approx(start + pause, abs=EDGE_S), \
            f"pause before {SLOW_SENTENCE[k + 1]!r}"
    assert turn["pauses"]["gaps_ms"] == pytest.approx([1000 * p for p in pauses], abs=2000 * EDGE_S)
    assert turn["reply"]["text"] and not turn["reply"]["interrupted"]


def test_a_question_whose_last_word_trails_off_is_heard_to_its_end(engines: Any, config: Any,
                                                                     tmp_path: Path) -> None:
    from voiceos.audio.wav import read_wav
    from voiceos.commands.demo import builtin_question

    audio, _ = read_wav(builtin_question(tmp_path / "cache", config))
    log = converse(engines, config, tmp_path, audio)
    (turn,) = [r for r in log if r["type"] == "turn"]
    heard = normalise(turn["user"]["text"])
    assert heard.endswith("what do you like about the ocean"), turn["user"]["text"]
    assert turn["reply"]["text"]


def test_the_audio_end_of_turn_model_hears_the_end_of_a_sentence_apart_from_its_middle(
        engines: Any, speech_dir: Path) -> None:
    from voiceos.audio.wav import read_wav

    jfk, _ = read_wav(speech_dir / "jfk.wav")
    assert engines.turn_model is not None
    # each with 0.2 s of what follows, as when the model is asked in a pause
    assert engines.turn_model(jfk[: int(6.96 * 16000)]) < 0.1  # "… ask not what your country can"
    assert engines.turn_model(jfk[: int(10.72 * 16000)]) > 0.9  # "… ask what you can do for your country."


def test_the_features_are_the_ones_smart_turn_was_trained_on(speech_dir: Path) -> None:
    """Our log-mel equals the reference shipped beside the model in the pipecat-ai wheel."""
    import importlib.util

    from voiceos import registry
    from voiceos.audio.wav import read_wav
    from voiceos.listen.smart_turn import WINDOW_S, log_mel

    entry = registry.find_entry("smart-turn-v3.2", "turn")
    package = importlib.util.find_spec(entry.parts[0].split(":")[0])
    assert package is not None and package.submodule_search_locations
    reference = Path(next(iter(package.submodule_search_locations))) / "audio/turn/smart_turn/_whisper_features.py"
    spec = importlib.util.spec_from_file_location("smart_turn_features", reference)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    samples, _ = read_wav(speech_dir / "spk1_snt1.wav")
    padded = np.pad(samples, (WINDOW_S * 16000 - len(samples), 0))
    assert np.abs(log_mel(samples) - module.compute_whisper_log_mel_features(padded)).max() < 1e-5
