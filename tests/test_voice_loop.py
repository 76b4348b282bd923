"""The voice loop's turn-taking with scripted models and a scripted sound card (voiceos.testing): words as
tones heard exactly, replies as tones, time as the audio's own clock. The logic under test is the loop's —
reopened turns, backchannels, barge-in, a dropped speculation keeping its words, the end of the input —
so each case runs in a fraction of a second and the same way every time."""

from __future__ import annotations

import numpy as np
import pytest

from voiceos.config import Config
from voiceos.loop.record import CutBy
from voiceos.loop.turn_state import TurnState, Utterance
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
    assert turn.reply.cut_by is None and run.of_type("turn")[0]["reply"]["cut_by"] is None
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
    assert [w.word for w in first.user.words] == ["Tell", "me", "a", "story."]  # timed, though cut off
    assert first.reply.interrupted and 0 < len(first.reply.text.split()) < len(LONG_REPLY.split())
    assert first.reply.cut_by == CutBy.BARGE_IN and run.of_type("turn")[0]["reply"]["cut_by"] == "barge_in"
    assert second.reply.cut_by is None and not second.reply.interrupted
    assert first.reply.generated == LONG_REPLY
    assert run.of_type("barge_in")[0]["spoken"] == first.reply.text
    assert second.user.text == "Wait, stop please." and second.reply.text == "Oh, sorry. Go ahead."
    # memory keeps what she really said, marked as cut off
    assert run.session.conversation is not None
    assert run.session.conversation.exchanges[0].reply.endswith("—")


def test_going_on_over_her_first_words_merges_both_halves_into_one_turn() -> None:
    lex = Lexicon()
    # "…market." sounds finished: she answers ~0.4 s into the pause; the user goes on over her first words
    # 1.2 s into it. That was one turn: her fragment leaves the conversation, both halves are answered.
    audio = np.concatenate([lex.speech("I went to the market."), silence(1.2),
                            lex.speech("And bought apples.", lead_s=0.0), silence(4.0)])
    llm = ScriptedLlm(reply_to=lambda said: "Apples, nice." if "apples" in said else LONG_REPLY)
    run = run_conversation(audio, lex, llm=llm, latency_s=0.1)
    (merged,) = run.of_type("turn_merged")
    assert merged["spoken"] and merged["pause_s"] == pytest.approx(1.2, abs=0.1)
    assert not run.of_type("barge_in")
    (turn,) = run.turns
    assert turn.user.text == "I went to the market. And bought apples."
    assert [w.word for w in turn.user.words][4:6] == ["market.", "And"]
    assert turn.pauses.gaps_ms[4] == pytest.approx(1200, abs=15)
    assert turn.reply.text == "Apples, nice." and not turn.reply.interrupted
    conversation = run.session.conversation
    assert conversation is not None and len(conversation.exchanges) == 1
    assert conversation.exchanges[0].reply == "Apples, nice."  # her fragment is not remembered


def test_a_speaker_who_pauses_long_between_words_is_not_cut_off_in_a_later_turn() -> None:
    lex = Lexicon()
    slow = lex.speech("well I think that the sea is so nice.", [0.45, 0.5, 0.4, 0.45, 0.5, 0.45, 0.4, 0.5])
    # "I went." sounds finished and the LLM agrees: at a fresh speaker's pace the turn is taken after 0.36 s
    second = np.concatenate([lex.speech("I went."), silence(0.5), lex.speech("To the sea today.", lead_s=0.0)])
    fresh = run_conversation(np.concatenate([second, silence(4.0)]), lex)
    assert len(fresh.turns) + len(fresh.of_type("turn_reopened")) + len(fresh.of_type("turn_merged")) > 1
    paced = run_conversation(np.concatenate([slow, silence(4.0), second, silence(4.0)]), lex)
    assert not paced.of_type("turn_reopened") and not paced.of_type("turn_merged")
    assert [t.user.text for t in paced.turns] == ["well I think that the sea is so nice.", "I went. To the sea today."]
    assert paced.turns[1].endpoint.required_silence_ms >= 600


def test_a_dropped_speculation_keeps_the_long_stretch_it_heard_in_a_long_turn(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("voiceos.think.hearing.WHOLE_PASS_MAX_S", 5.0)  # a turn longer than this is "long"
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
    final_pass = run.transcriber.calls[-2]  # the last aligns the words to the whole turn
    assert final_pass < len(audio) // 2


def test_a_short_turn_is_heard_again_whole_after_a_dropped_speculation() -> None:
    lex = Lexicon()
    first = "yesterday after work I went out for a long walk by the river and"
    audio = np.concatenate([lex.speech(first), silence(0.6), lex.speech("it rained.", lead_s=0.0), silence(3.0)])
    run = run_conversation(audio, lex)
    (turn,) = run.turns
    assert turn.user.text == f"{first} it rained." and turn.stt.heard_earlier_s == 0
    final_pass = run.transcriber.calls[-2]
    assert final_pass >= len(lex.speech(first)) + len(lex.speech("it rained.", lead_s=0.0))


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
        state.keep(frame, i * 0.032, may_go_on=True)
    utt = state.open(0.16)
    assert len(utt.frames) == 3 and utt.audio_start == pytest.approx(2 * 0.032)
    state.keep(frames(1)[0], 0.16, may_go_on=True)
    assert len(utt.frames) == 4


def answered_turn() -> tuple[TurnState, Utterance, ReplyJob]:
    """A 1.3 s utterance whose turn ended at 2.5 s after 0.36 s of silence, committed to a reply."""
    state = TurnState(preroll_ms=96)
    utt = state.open(1.0)
    utt.frames += frames(40, 0.2)
    state.close(2.5, required_silence_s=0.36, longest_pause_s=0.0)
    job = ReplyJob(utt.utt_id, reply_id=state.new_id(), audio=utt.audio(), audio_start=0.9)
    state.commit(utt, job, now=2.5)
    return state, utt, job


def test_reopening_gives_the_turn_back_with_the_audio_heard_meanwhile() -> None:
    state, utt, job = answered_turn()
    state.keep(frames(1)[0], 2.5, may_go_on=True)  # her reply not audible: the turn may not be over
    active, pause_s = state.reopen(2.7)
    assert active.job is job and state.utt is utt and state.active is None
    assert len(utt.frames) == 41 and utt.job is None and utt.end_t is None
    assert pause_s == pytest.approx(2.7 - (2.5 - 0.36))


def test_merging_gives_the_turn_back_with_every_frame_since_it_ended() -> None:
    state, utt, job = answered_turn()
    for i in range(10):  # her reply audible from 2.6 s: the user may still go on for MERGE_WITHIN_S
        state.keep(frames(1)[0], 2.5 + i * 0.032, may_go_on=True)
    over = state.open(2.9)
    state.keep(frames(1)[0], 2.9, may_go_on=True)
    assert len(over.frames) == 4 and len(utt.frames) == 51
    active, pause_s = state.merge(2.9)
    assert active.job is job and state.utt is utt and state.active is None and utt.job is None
    assert pause_s == pytest.approx(2.9 - (2.5 - 0.36))


def test_speech_over_an_audible_reply_opens_a_new_utterance_marked_as_over_it() -> None:
    state = TurnState(preroll_ms=96)
    utt = state.open(1.0)
    state.close(2.0, required_silence_s=0.36, longest_pause_s=0.0)
    job = ReplyJob(utt.utt_id, reply_id=state.new_id())
    state.commit(utt, job, now=2.0)
    state.keep(frames(1)[0], 2.1, may_go_on=False)
    assert len(utt.frames) == 0, "frames after her voice is heard are not the old turn's"
    over = state.open(2.5)
    assert over.over_reply == job.reply_id and over.utt_id != utt.utt_id
