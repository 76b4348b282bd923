"""The echo gate tells her voice coming back from a user whose voice is like hers (both espeak-ng here)."""

from __future__ import annotations

import numpy as np
import pytest

from voiceos.audio.echo_gate import EchoGate
from voiceos.config import FRAME_SAMPLES, SAMPLE_RATE, SessionConfig, TtsConfig

HER_REPLY = "I'd love to hear about them. Where would you go first, and why?"
ECHO_DELAY_S = 0.12


class PlayedReply:
    """Her reply, played from session time 0 (what `Playback.reference` and `last_audible_t` give the gate)."""

    def __init__(self, audio: np.ndarray) -> None:
        self.audio = audio

    def reference(self, t0: float, t1: float) -> np.ndarray:
        n = int(round((t1 - t0) * SAMPLE_RATE))
        out = np.zeros(n, np.float32)
        start = int(round(t0 * SAMPLE_RATE))
        lo, hi = max(0, start), min(len(self.audio), start + n)
        if hi > lo:
            out[lo - start : hi - start] = self.audio[lo:hi]
        return out

    def last_audible_t(self) -> float:
        return len(self.audio) / SAMPLE_RATE


@pytest.fixture(scope="module")
def voices() -> tuple[np.ndarray, np.ndarray]:
    from voiceos.speak.tts import SpeechSynthesizer, trim_silence

    synth = SpeechSynthesizer(TtsConfig(), reuse_short_clauses=False)
    said = [trim_silence(synth.synthesize(text).samples, lead_s=0.0, tail_s=0.0).astype(np.float32)
            for text in (HER_REPLY, "the places you would like to see")]
    return said[0], said[1]


def heard_by_the_gate(her: np.ndarray, microphone: np.ndarray, user: np.ndarray) -> tuple[EchoGate, int, int]:
    """Run the microphone through the gate frame by frame; how many of the user's voiced frames came through
    (at least half their level), of how many."""
    gate = EchoGate(PlayedReply(her), SessionConfig())
    through = voiced = 0
    for i in range(0, len(microphone) - FRAME_SAMPLES, FRAME_SAMPLES):
        frame = microphone[i : i + FRAME_SAMPLES]
        heard, _ = gate.clean(frame, i / SAMPLE_RATE)
        users = user[i : i + FRAME_SAMPLES]
        level = float(np.sqrt(np.mean(users * users)))
        if level > 0.01:
            voiced += 1
            through += float(np.sqrt(np.mean(heard * heard))) > 0.5 * level
    return gate, through, voiced


def test_a_user_whose_voice_is_like_hers_is_heard_over_her_reply(voices) -> None:  # type: ignore[no-untyped-def]
    her, said = voices
    user = np.zeros(len(her) + SAMPLE_RATE, np.float32)
    user[SAMPLE_RATE // 4 : SAMPLE_RATE // 4 + len(said)] = said  # a headset: none of her voice comes back
    gate, through, voiced = heard_by_the_gate(her, user, user)
    assert gate.lag_s is None and gate.gated_frames == 0
    assert voiced > 20 and through == voiced


def test_her_voice_coming_back_is_learned_and_gated(voices) -> None:  # type: ignore[no-untyped-def]
    her, _said = voices
    echo = np.zeros(len(her) + SAMPLE_RATE, np.float32)
    delay = int(ECHO_DELAY_S * SAMPLE_RATE)
    echo[delay : delay + len(her)] = 0.4 * her
    gate, through, voiced = heard_by_the_gate(her, echo, echo)
    assert gate.lag_s == pytest.approx(ECHO_DELAY_S, abs=0.002)
    assert gate.coupling == pytest.approx(0.4, abs=0.05)
    assert voiced > 50 and through <= 3  # the frames before the second search agreed on the delay
