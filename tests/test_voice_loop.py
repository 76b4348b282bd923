"""The voice loop's turn-taking with scripted models and a scripted sound card (voiceos.testing): words as
tones heard exactly, replies as tones, time as the audio's own clock. The logic under test is the loop's —
reopened turns, backchannels, barge-in, a dropped speculation keeping its words, the end of the input —
so each case runs in a fraction of a second and the same way every time."""

from __future__ import annotations

import numpy as np
import pytest

from voiceos.config import Config
from voiceos.loop.turn_state import TurnState
from voiceos.testing import Lexicon, ScriptedLlm, run_conversation, silence
from voiceos.think.jobs import ReplyJob

LONG_REPLY = ("Oh, once upon a time a little boat sailed out past the harbour lights, and the sea was calm and "
              "silver, and the boat met a whale who sang to it all night long.")


def test_a_turn_is_heard_answered_and_recorded_with_every_word_and_pause() -> None:
    lex = Lexicon()
    audio = np.concatenate([lex.speech("I like the sea.", [0.1, 0.4, 0.2]), silence(3.0)])
    run = run_conversation(audio, lex)
    (turn,) = run.turns
    assert turn.user.text == "I like the sea."
    assert [w.word for w in turn.user.words] == ["I", "like", "the", "sea."]
    assert turn.pauses.gaps_ms == pytest.approx([100, 400, 200], abs=15)
    assert turn.reply.text == "Oh, that sounds lovely. Tell me more?" and not turn.reply.interrupted
    assert turn.user.speech_end == pytest.approx(0.3 + 4 * 0.3 + 0.7, abs=0.02)
    assert turn.timings_ms.voice_to_voice is not None and turn.timings_ms.voice_to_voice > 0
    assert run.result.turns == 1 and run.of_type("ready") and run.records[-1]["type"] == "session_end"


def test_speaking_again_before_her_reply_is_heard_reopens_the_turn_and_keeps_both_halves() -> None:
    lex = Lexicon()
    # "…market." sounds finished and the LLM agrees: the turn is taken after ~0.36 s of silence; the user goes
    # on 0.5 s into the pause, before her reply (0.4 s of output latency) has made a sound.
    audio = np.concatenate([lex.speech("I went to the market."), silence(0.5),
                            lex.speech("And bought apples.", lead_s=0.0), silence(3.0)])
    run = run_conversation(audio, lex, latency_s=0.4)
    assert len(run.of_type("turn_reopened")) == 1
    (turn,) = run.turns
    assert turn.user.text == "I went to the market. And bought apples."
    assert len(turn.user.words) == 8 and turn.pauses.gaps_ms[4] == pytest.approx(500, abs=15)
    dropped = run.of_type("turn_reopened")[0]["reply_id"]
    assert run.result.turns == 1 and turn.reply.reply_id != dropped  # the first draft was dropped unheard
    assert dropped not in run.speaker.progress or run.speaker.progress[dropped].played == 0
    assert run.session.conversation is not None and len(run.session.conversation.exchanges) == 1


def test_a_short_sound_over_her_reply_is_a_backchannel_not_a_turn() -> None:
    lex = Lexicon()
    question = lex.speech("Tell me a story.")
    # "mm" (0.2 s, shorter than barge_in_ms) two seconds into her long reply
    audio = np.concatenate([question, silence(2.5), lex.tone("mm", 0.2), silence(12.0)])
    run = run_conversation(audio, lex, llm=ScriptedLlm(reply_to=lambda _said: LONG_REPLY))
    assert len(run.of_type("backchannel")) == 1 and not run.of_type("barge_in")
    (turn,) = run.turns
    assert turn.user.text == "Tell me a story." and not turn.reply.interrupted
    assert turn.reply.text == LONG_REPLY


def test_talking_over_her_stops_her_and_the_new_words_are_the_next_turn() -> None:
    lex = Lexicon()
    audio = np.concatenate([lex.speech("Tell me a story."), silence(2.5), lex.speech("Wait, stop please.", lead_s=0.0),
                            silence(6.0)])
    llm = ScriptedLlm(reply_to=lambda said: LONG_REPLY if "story" in said else "Oh, sorry. Go ahead.")
    run = run_conversation(audio, lex, llm=llm)
    assert len(run.of_type("barge_in")) == 1
    first, second = run.turns
    assert first.reply.interrupted and 0 < len(first.reply.text.split()) < len(LONG_REPLY.split())
    assert first.reply.generated == LONG_REPLY
    assert run.of_type("barge_in")[0]["spoken"] == first.reply.text
    assert second.user.text == "Wait, stop please." and second.reply.text == "Oh, sorry. Go ahead."
    # memory keeps what she really said, marked as cut off
    assert run.session.conversation is not None
    assert run.session.conversation.exchanges[0].reply.endswith("—")


def test_a_dropped_speculation_keeps_the_long_stretch_it_heard() -> None:
    lex = Lexicon()
    first = "yesterday after work I went out for a long walk by the river and"  # > 3 s, sounds unfinished
    audio = np.concatenate([lex.speech(first), silence(0.6), lex.speech("it rained.", lead_s=0.0), silence(3.0)])
    run = run_conversation(audio, lex)
    discarded = [r for r in run.of_type("speculation_discarded") if r["heard"]]
    assert any(r["heard"] == first for r in discarded), discarded
    (turn,) = run.turns
    assert turn.user.text == f"{first} it rained."
    assert len(turn.user.words) == len(first.split()) + 2  # every word, with its timing
    assert turn.pauses.gaps_ms[len(first.split()) - 1] == pytest.approx(600, abs=15)
    first_s = 0.3 + len(first.split()) * 0.3 + (len(first.split()) - 1) * 0.08
    assert turn.stt.heard_earlier_s == pytest.approx(first_s, abs=0.1)  # not transcribed again at the end
    final_pass = run.transcriber.calls[-2]  # the last is the timed pass over the whole turn
    assert final_pass < len(audio) // 2


def test_input_that_ends_mid_turn_is_answered_and_the_loop_ends() -> None:
    lex = Lexicon()
    audio = lex.speech("What is your favourite colour?")  # no silence after the last word
    run = run_conversation(audio, lex)
    (turn,) = run.turns
    assert turn.user.text == "What is your favourite colour?" and turn.reply.text
    assert run.result.turns == 1 and run.records[-1]["type"] == "session_end"


def test_the_plain_cascade_waits_its_fixed_silence_and_speaks_the_whole_reply() -> None:
    config = Config()
    config.session.speculate = False
    lex = Lexicon()
    run = run_conversation(np.concatenate([lex.speech("I like the sea."), silence(4.0)]), lex, config=config)
    (turn,) = run.turns
    assert turn.mode == "naive" and not turn.llm.speculative and not run.of_type("speculation_discarded")
    assert turn.timings_ms.endpoint == pytest.approx(800, abs=40)
    assert turn.reply.text == "Oh, that sounds lovely. Tell me more?"


# --- the bookkeeping alone ------------------------------------------------------------------------------


def frames(n: int, value: float = 0.0) -> list[np.ndarray]:
    return [np.full(512, value, np.float32) for _ in range(n)]


def test_a_new_utterance_starts_with_the_preroll_before_it() -> None:
    state = TurnState(preroll_ms=96)  # three frames
    for i, frame in enumerate(frames(5, 0.1)):
        state.keep(frame, i * 0.032, reply_audible=False)
    utt = state.open(0.16)
    assert len(utt.frames) == 3 and utt.audio_start == pytest.approx(2 * 0.032)
    state.keep(frames(1)[0], 0.16, reply_audible=False)
    assert len(utt.frames) == 4


def test_reopening_gives_the_turn_back_with_the_audio_heard_meanwhile() -> None:
    state = TurnState(preroll_ms=96)
    utt = state.open(1.0)
    utt.frames += frames(40, 0.2)
    state.close(2.5, required_silence_s=0.36, longest_pause_s=0.0)
    job = ReplyJob(utt.utt_id, reply_id=state.new_id(), audio=utt.audio(), audio_start=0.9)
    state.commit(utt, job, now=2.5)
    state.keep(frames(1)[0], 2.5, reply_audible=False)  # her reply not audible: the turn may not be over
    active, pause_s = state.reopen(2.7)
    assert active.job is job and state.utt is utt and state.active is None
    assert len(utt.frames) == 41 and utt.job is None and utt.end_t is None
    assert pause_s == pytest.approx(2.7 - (2.5 - 0.36))


def test_speech_over_an_audible_reply_opens_a_new_utterance_marked_as_over_it() -> None:
    state = TurnState(preroll_ms=96)
    utt = state.open(1.0)
    state.close(2.0, required_silence_s=0.36, longest_pause_s=0.0)
    job = ReplyJob(utt.utt_id, reply_id=state.new_id())
    state.commit(utt, job, now=2.0)
    state.keep(frames(1)[0], 2.1, reply_audible=True)
    assert len(utt.frames) == 0, "frames after her voice is heard are not the old turn's"
    over = state.open(2.5)
    assert over.over_reply == job.reply_id and over.utt_id != utt.utt_id
