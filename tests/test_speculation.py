"""Thinking in the pauses: a speculative reply started at a pause is thrown away, unheard and forgotten,
when the user goes on — and the whole utterance gets exactly one answer."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from voiceos.listen.transcript import normalise

pytestmark = pytest.mark.models


def speech(text: str) -> np.ndarray:
    from voiceos.config import TtsConfig
    from voiceos.speak.tts import SpeechSynthesizer, trim_silence

    synth = SpeechSynthesizer(TtsConfig(rate_wpm=160))
    audio = trim_silence(synth.synthesize(text).samples, lead_s=0.0, tail_s=0.0)
    synth.close()
    return audio


def test_a_user_who_goes_on_after_a_pause_gets_one_answer_to_everything(engines, config, tmp_path: Path) -> None:
    from voiceos.audio.speaker import VirtualSpeaker
    from voiceos.audio.wav_source import WavSource, WavTurn
    from voiceos.loop.session import Session

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


def test_a_speculation_called_off_during_its_whisper_pass_skips_the_decoder(engines, speech_dir: Path) -> None:
    """A gap inside a word ("li|ttle") starts a speculation that the next frames call off: its Whisper pass
    stops after the encoder instead of decoding words nobody will use, and the next pass hears them again."""
    from voiceos.audio.wav import read_wav
    from voiceos.errors import Cancelled

    audio = read_wav(speech_dir / "spk1_snt1.wav")[0]
    checks: list[int] = []

    def called_off_after_first_check() -> bool:
        checks.append(1)
        return len(checks) > 1

    with pytest.raises(Cancelled):
        engines.transcriber.transcribe(audio, word_timestamps=False, cancelled=called_off_after_first_check)
    assert len(checks) == 2, "checked before and after the encoder, then stopped"
    again = engines.transcriber.transcribe(audio, word_timestamps=False, cancelled=lambda: False)
    assert normalise(again.text) == "the child almost hurt the small dog"


def test_a_long_stretch_before_a_pause_is_not_transcribed_again(engines, config, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A speech with pauses: the words before a long pause were transcribed by the speculation there; after
    the user goes on, only the rest is transcribed at the end, and the turn still holds every word."""
    monkeypatch.setattr("voiceos.think.hearing.WHOLE_PASS_MAX_S", 5.0)  # a turn longer than this is "long"
    from voiceos.audio.speaker import VirtualSpeaker
    from voiceos.audio.wav_source import WavSource, WavTurn
    from voiceos.listen.transcript import word_error_rate
    from voiceos.loop.session import Session

    first = "Yesterday after work I went out for a long and quiet walk along the river with my"
    second = "little dog, and it started to rain on the way back home."
    utterance = np.concatenate([speech(first), np.zeros(int(1.2 * 16000), np.float32), speech(second)])  # 1.2 s pause
    session = Session(config, engines, log_dir=tmp_path)
    speaker = VirtualSpeaker(session.clock).start()
    try:
        session.converse(WavSource(session.clock, [WavTurn("speech", utterance)]), speaker)
    finally:
        speaker.close()
        session.close()
    log = [json.loads(line) for line in session.log.path.read_text().splitlines()]
    turns = [r for r in log if r["type"] == "turn"]
    assert len(turns) == 1
    first_s = len(speech(first)) / 16000
    assert first_s >= 3.0
    # the words up to the pause (audio counted from the pre-roll) were not transcribed again at the end; the cut
    # lies in the pause (where the speculation stopped, or later when the turn had been taken and was reopened)
    assert first_s <= turns[0]["stt"]["heard_earlier_s"] <= first_s + 0.32 + 1.2, turns[0]["stt"]
    assert word_error_rate(f"{first} {second}", turns[0]["user"]["text"]) <= 0.07, turns[0]["user"]["text"]
    assert session.conversation is not None and "rain" in normalise(session.conversation.exchanges[0].user)
    assert len(session.conversation.exchanges) == 1


def test_input_that_ends_mid_turn_still_gets_its_answer(engines, config, tmp_path: Path) -> None:
    """The audio runs out while the user's turn is still open (a WAV cut right after the last word): the
    turn ends with the input, is answered, and the session ends instead of waiting for silence forever."""
    from voiceos.audio.interfaces import AudioChunk
    from voiceos.audio.speaker import VirtualSpeaker
    from voiceos.config import FRAME_SAMPLES, SAMPLE_RATE
    from voiceos.loop.session import Session

    audio = np.concatenate([np.zeros(SAMPLE_RATE // 2, np.float32), speech("Tell me about the sea.")])
    audio = audio[: len(audio) // FRAME_SAMPLES * FRAME_SAMPLES]

    class CutShort:
        overflows = 0
        realtime = True

        def __init__(self) -> None:
            self.idle_reads = 0
            self.blocks = [AudioChunk(audio[i : i + FRAME_SAMPLES], SAMPLE_RATE, i / SAMPLE_RATE)
                           for i in range(0, len(audio), FRAME_SAMPLES)]

        def start(self) -> None: ...

        def read(self, timeout: float) -> AudioChunk | None:
            if self.blocks:
                return self.blocks.pop(0)
            self.idle_reads += 1
            assert self.idle_reads < 600, "the loop still waits for audio 30 s after the input ended"
            time.sleep(timeout)
            return None

        def finished(self) -> bool:
            return not self.blocks

        def heard_nothing(self) -> bool:
            return False

        def turn_done(self) -> None: ...

        def close(self) -> None: ...

    session = Session(config, engines, log_dir=tmp_path)
    speaker = VirtualSpeaker(session.clock).start()
    try:
        result = session.converse(CutShort(), speaker)
    finally:
        speaker.close()
        session.close()
    assert result.turns == 1
    records = [json.loads(line) for line in session.log.path.read_text().splitlines()]
    turns = [r for r in records if r["type"] == "turn"]
    assert normalise(turns[0]["user"]["text"]).startswith("tell me")  # (Whisper may miss a word cut at the edge)
    assert turns[0]["reply"]["text"]


def test_reading_while_the_user_talks_after_a_long_pause_transcribes_only_what_follows(
        engines, monkeypatch: pytest.MonkeyPatch) -> None:
    """Reading during speech (a partial) builds on the words kept at a long pause: Whisper hears only the
    audio after it, and the LLM reads the kept words followed by the new ones (in a long turn: a shorter one
    is heard again whole)."""
    monkeypatch.setattr("voiceos.think.hearing.WHOLE_PASS_MAX_S", 2.0)
    from voiceos.measure.clock import SessionClock
    from voiceos.measure.ledger import WorkLog
    from voiceos.think.conversation import Conversation
    from voiceos.think.jobs import PartialJob
    from voiceos.think.responder import Responder

    heard: list[int] = []

    class Listening:
        def transcribe(self, samples: np.ndarray, **kw):  # type: ignore[no-untyped-def]
            heard.append(len(samples))
            return engines.transcriber.transcribe(samples, **kw)

    kept = speech("Yesterday after work I went out for a long walk.")
    audio = np.concatenate([kept, np.zeros(8000, np.float32), speech("The river was quiet and the air was cold.")])
    conversation = Conversation(engines.persona, engines.llm.fmt, engines.llm.count_tokens, 1100)
    responder = Responder(Listening(), engines.llm, conversation, None, SessionClock(), WorkLog())  # type: ignore[arg-type]
    responder.read_partial(PartialJob(1, audio=audio, heard_samples=len(kept),
                                      heard_text="Yesterday after work I went out for a long walk."))
    assert heard == [len(audio) - len(kept)], "only the audio after the kept words is transcribed"
    utt, words = responder.prompts.read_words
    assert utt == 1
    assert normalise(" ".join(words)).startswith("yesterday after work i went out for a long walk the river"), words
