"""The voice worker holds a speculative reply's audio until the turn is confirmed, drops it unheard when
the user goes on, and can take back words that turned out wrong as long as none reached the speaker.
Real espeak-ng speech; the playback side records what it was handed."""

from __future__ import annotations

import time

import numpy as np
import pytest

from voiceos.config import TtsConfig
from voiceos.measure.clock import SessionClock
from voiceos.speak.voice_worker import VoiceWorker


class HandedAudio:
    """Records what it is handed; `played` samples of it count as heard (set by the test)."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.samples = 0
        self.played = 0

    def play(self, reply_id: int, samples: np.ndarray, text: str = "") -> None:
        self.texts.append(text)
        self.samples += len(samples)

    def played_samples(self, reply_id: int) -> int:
        return self.played

    def stop(self) -> None:
        pass


def settle(voice: VoiceWorker, reply_id: int) -> None:
    deadline = time.monotonic() + 10
    while not voice.reply(reply_id).finished and time.monotonic() < deadline:
        time.sleep(0.01)


def test_words_taken_back_before_the_turn_is_confirmed_are_never_played() -> None:
    played = HandedAudio()
    voice = VoiceWorker(TtsConfig(), SessionClock(), played).start()
    try:
        voice.say(1, "I'm here,")
        voice.say(1, "to help you with anything.")
        time.sleep(0.3)  # synthesised and held: the turn is not confirmed yet
        assert played.texts == []
        assert voice.retract(1), "nothing was handed to the speaker, so it can be taken back"
        voice.say(1, "Oh, poor little dog!")
        voice.end(1)
        voice.commit(1)
        settle(voice, 1)
        time.sleep(0.1)
        assert played.texts == ["Oh, poor little dog!"]
        assert played.samples > 0.5 * 16000
        assert voice.reply(1).clauses == ["Oh, poor little dog!"]
        assert not voice.retract(1), "once handed to the speaker it may be heard: too late"
    finally:
        voice.close()


def test_a_discarded_speculation_is_never_played_even_if_committed_later() -> None:
    played = HandedAudio()
    voice = VoiceWorker(TtsConfig(), SessionClock(), played).start()
    try:
        voice.say(2, "Oh, nice!")
        voice.end(2)
        settle(voice, 2)
        voice.discard(2)
        voice.commit(2)
        time.sleep(0.1)
        assert played.texts == []
    finally:
        voice.close()


def test_speech_ahead_counts_what_is_held_queued_or_waiting_and_not_yet_heard() -> None:
    played = HandedAudio()
    voice = VoiceWorker(TtsConfig(rate_wpm=180), SessionClock(), played).start()
    try:
        assert voice.ahead_s(3) == 0.0, "nothing said yet: the speaker is about to run dry"
        voice.say(3, "That's,")
        voice.say(3, "the loveliest thing I have heard all week.")
        nine_words_s = 9 * 60 / 180
        assert 0.8 * nine_words_s <= voice.ahead_s(3) <= 1.3 * nine_words_s, "words not synthesised yet count too"
        voice.end(3)
        settle(voice, 3)
        held = voice.ahead_s(3)  # synthesised, held until the turn is confirmed
        assert held == sum(len(a) for a in voice.reply(3).audio) / 16000 and held > 1.5
        voice.commit(3)
        time.sleep(0.1)
        played.played = played.samples - 8000  # all but the last half second heard
        assert abs(voice.ahead_s(3) - 0.5) < 1e-6
        assert voice.retract(4) and voice.ahead_s(4) == 0.0
    finally:
        voice.close()


def test_a_short_clause_said_again_is_spoken_from_its_first_synthesis() -> None:
    from voiceos.speak.tts import SpeechSynthesizer

    synth = SpeechSynthesizer(TtsConfig())
    try:
        first = synth.synthesize("That's,").samples
        runs = synth.espeak_runs
        again = synth.synthesize("That's,").samples
        assert synth.espeak_runs == runs and np.array_equal(first, again) and len(first) > 1600
        sentence = "That's the perfect air for a bird."
        synth.synthesize(sentence)
        runs = synth.espeak_runs
        synth.synthesize(sentence)
        assert synth.espeak_runs == runs + 1  # a longer clause is spoken anew each time
    finally:
        synth.close()


def test_two_synthesizers_in_one_process_keep_their_own_speaking_rate() -> None:
    from voiceos.speak.tts import SpeechSynthesizer

    slow = SpeechSynthesizer(TtsConfig(rate_wpm=120), reuse_short_clauses=False)
    fast = SpeechSynthesizer(TtsConfig(rate_wpm=300), reuse_short_clauses=False)  # pyttsx3: the same engine
    try:
        sentence = "I wonder if the stars look different from the ocean."
        slow_s = len(slow.synthesize(sentence).samples)
        fast_s = len(fast.synthesize(sentence).samples)
        assert slow_s > 1.8 * fast_s, (slow_s, fast_s)  # 300/120 = 2.5 times as fast
        assert abs(len(slow.synthesize(sentence).samples) - slow_s) < 0.05 * slow_s  # and slow again after fast
        assert abs(len(fast.synthesize(sentence).samples) - fast_s) < 0.05 * fast_s  # and fast again after that
    finally:
        slow.close()
        fast.close()


def test_an_unknown_espeak_voice_is_a_clear_error_and_a_known_one_speaks() -> None:
    from voiceos.errors import ConfigError
    from voiceos.speak.tts import SpeechSynthesizer

    with pytest.raises(ConfigError, match="voice = 'no-such-voice': espeak-ng has no such voice"):
        SpeechSynthesizer(TtsConfig(voice="no-such-voice"))
    sentence = "The schedule for the tomato harvest is on the laboratory wall."  # 0.04 s longer in English
    english = SpeechSynthesizer(TtsConfig(), reuse_short_clauses=False)
    american = SpeechSynthesizer(TtsConfig(voice="gmw/en-US"), reuse_short_clauses=False)
    try:
        before = len(english.synthesize(sentence).samples)
        us = len(american.synthesize(sentence).samples)
        after = len(english.synthesize(sentence).samples)  # the default voice again, not the American one
        assert abs(after - before) < abs(after - us), (before, us, after)
    finally:
        english.close()
        american.close()
