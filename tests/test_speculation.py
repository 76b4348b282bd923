"""Thinking in the pauses: a speculative reply started at a pause is thrown away, unheard and forgotten,
when the user goes on — and the whole utterance gets exactly one answer."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from voiceos.stt import normalise

pytestmark = pytest.mark.models


def speech(text: str) -> np.ndarray:
    from voiceos.config import TtsConfig
    from voiceos.tts import SpeechSynthesizer, trim_silence

    synth = SpeechSynthesizer(TtsConfig(rate_wpm=160))
    audio = trim_silence(synth.synthesize(text).samples, lead_s=0.0, tail_s=0.0)
    synth.close()
    return audio


def test_a_user_who_goes_on_after_a_pause_gets_one_answer_to_everything(engines, config, tmp_path: Path) -> None:
    from voiceos.audio_in import WavSource, WavTurn
    from voiceos.audio_out import VirtualSpeaker
    from voiceos.session import Session

    first, second = speech("I went to the market this morning and"), speech("bought some lovely green apples.")
    # Long enough to transcribe and draft a reply; short of the 1.5 s an unfinished sentence ("…and") gets.
    pause = np.zeros(int(1.2 * 16000), np.float32)
    utterance = np.concatenate([first, pause, second])

    session = Session(config, engines, log_dir=tmp_path)
    speaker = VirtualSpeaker(session.clock).start()
    try:
        result = session.converse(WavSource(session.clock, [WavTurn("resumed", utterance)]), speaker)
    finally:
        speaker.close()
        session.close()
    log = [json.loads(line) for line in session.log.path.read_text().splitlines()]

    turns = [r for r in log if r["type"] == "turn"]
    assert len(turns) == 1 and result.turns == 1
    heard = normalise(turns[0]["user"]["text"])
    assert "market" in heard and "apples" in heard  # one answer to the whole utterance

    discarded = [r for r in log if r["type"] == "speculation_discarded"]
    started = [r for r in discarded if r["heard"]]  # a speculation that really transcribed the first half
    assert started, discarded
    assert "apples" not in normalise(started[0]["heard"])
    dropped_ids = {r["reply_id"] for r in discarded}
    final_id = turns[0]["reply"]["reply_id"]
    assert final_id not in dropped_ids
    # Nothing of a discarded reply reached the speaker; only the final reply did.
    for reply_id in dropped_ids:
        progress = speaker.progress.get(reply_id)
        assert progress is None or progress.played == 0
    assert speaker.progress[final_id].played > 0
    # ... nor the conversation's memory: one exchange, holding the whole utterance and the spoken reply.
    assert session.conversation is not None
    exchanges = session.conversation.exchanges
    assert len(exchanges) == 1
    assert "apples" in normalise(exchanges[0].user)
    assert exchanges[0].reply == turns[0]["reply"]["text"]
    # The speculation got as far as drafting words of a reply — which were never played (above).
    assert any(r["drafted"] for r in started), started
