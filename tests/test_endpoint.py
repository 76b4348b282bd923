"""End of turn: does a pause end the user's turn or not? TurnDetector fed synthetic VAD probabilities
(one per 32 ms frame), plus the text rules that set how much silence a turn needs. Pure logic."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from voiceos.config import EndpointConfig, VadConfig
from voiceos.listen.turn_detector import FRAME_S, MAX_VAD_LAG_S, TurnDetector
from voiceos.listen.turn_end_rules import HESITATION_MS, silence_needed_ms, turn_sounds_complete, voice_matters
from voiceos.listen.turn_events import PauseBegan, SpeechGoesOn, SpeechResumed, SpeechStarted, TurnEnded, TurnEvent

CFG = EndpointConfig()
SPEECH, QUIET = 0.92, 0.03


def run(script: list[tuple[float, ...]], on_event: Callable[[TurnDetector, TurnEvent], None] | None = None,
        detector: TurnDetector | None = None) -> list[TurnEvent]:
    """Feed (probability, seconds[, loudness dB]) segments frame by frame; `on_event` plays the voice loop's
    part. Without a loudness the detector hears probabilities only."""
    det = detector or TurnDetector(VadConfig(), EndpointConfig())
    events: list[TurnEvent] = []
    t = 0.0
    for prob, seconds, *level in script:
        for _ in range(round(seconds / FRAME_S)):
            for event in det.push(prob, t, [level[0]] * 4 if level else None):
                events.append(event)
                if on_event:
                    on_event(det, event)
            t += FRAME_S
    return events


KINDS = {SpeechStarted: "start", SpeechGoesOn: "partial", PauseBegan: "speculate", SpeechResumed: "resume",
         TurnEnded: "end"}


def kind(event: TurnEvent) -> str:
    """The event's short name, as the tests below speak of them."""
    return KINDS[type(event)]


def kinds(events: list[TurnEvent], *, partial: bool = False) -> list[str]:
    return [kind(e) for e in events if partial or kind(e) != "partial"]


def hears(*heard: str | tuple[str, float | None], p_end: float | None = None
          ) -> Callable[[TurnDetector, TurnEvent], None]:
    """The speculative transcription: at each pause the transcript so far reaches the detector (the texts in
    turn, the last one repeated), with the LLM's end-of-turn probability."""
    texts = list(heard)

    def on_event(det: TurnDetector, event: TurnEvent) -> None:
        if kind(event) == "speculate":
            item = texts.pop(0) if len(texts) > 1 else texts[0]
            text, p = item if isinstance(item, tuple) else (item, p_end)
            det.hear_transcript(text, p)
    return on_event


def test_speech_start_is_found_where_speech_begins() -> None:
    events = run([(QUIET, 1.0), (SPEECH, 1.0), (QUIET, 3.0)])
    assert kinds(events)[0] == "start"
    assert events[0].t == pytest.approx(1.0, abs=FRAME_S)


def test_a_click_shorter_than_min_speech_is_not_a_turn() -> None:
    assert run([(QUIET, 0.5), (SPEECH, 0.096), (QUIET, 3.0)]) == []


def test_silence_only_is_not_a_turn() -> None:
    assert run([(QUIET, 5.0)]) == []


def test_a_short_pause_inside_speech_does_not_end_the_turn() -> None:
    events = run([(QUIET, 0.5), (SPEECH, 1.0), (QUIET, 0.5), (SPEECH, 1.0), (QUIET, 3.0)])
    assert kinds(events) == ["start", "speculate", "resume", "speculate", "end"]
    assert events[2].t == pytest.approx(2.0, abs=FRAME_S)  # resumed where the second stretch of speech began
    end = events[-1]
    assert end.t > 3.0 and end.silence_s >= CFG.incomplete_silence_ms / 1000.0 - 1e-9


def test_a_long_pause_ends_the_turn_after_the_silence_it_needs() -> None:
    events = run([(QUIET, 0.5), (SPEECH, 1.5), (QUIET, 4.0)])
    assert kinds(events) == ["start", "speculate", "end"]
    end = events[-1]
    # with no transcript yet, a turn needs the "unfinished" silence, and gets no more than one frame past it
    assert CFG.incomplete_silence_ms / 1000.0 <= end.silence_s <= CFG.incomplete_silence_ms / 1000.0 + FRAME_S
    assert end.t == pytest.approx(2.0 + end.silence_s, abs=FRAME_S)


def test_speculate_comes_at_once_in_a_pause_and_before_end() -> None:
    events = run([(QUIET, 0.5), (SPEECH, 1.0), (QUIET, 3.0)])
    spec, end = events[1], events[2]
    assert kind(spec) == "speculate" and kind(end) == "end"
    assert spec.silence_s <= CFG.speculate_after_ms / 1000.0 + 2 * FRAME_S
    assert spec.t < end.t


def test_a_complete_sentence_ends_the_turn_sooner() -> None:
    script = [(QUIET, 0.5), (SPEECH, 1.5), (QUIET, 3.0)]
    plain = run(script)[-1]
    complete = run(script, hears("Sunday is the best part of the week.", p_end=0.85))[-1]
    unfinished = run(script, hears("and so my fellow", p_end=0.9))[-1]
    assert kind(complete) == kind(unfinished) == kind(plain) == "end"
    assert complete.silence_s == pytest.approx(CFG.complete_silence_ms / 1000.0, abs=FRAME_S)
    assert unfinished.silence_s == pytest.approx(CFG.incomplete_silence_ms / 1000.0, abs=FRAME_S)
    assert complete.t < unfinished.t


LOUD, FADED, HUM = -20.0, -75.0, -40.0  # dB: a voice, silence, a hum within 30 dB of the voice


def test_silence_is_counted_from_where_the_voice_stopped_not_where_silero_let_go() -> None:
    # Silero still says speech for 64 ms after the voice has gone (its state trails the last syllable)
    script = [(QUIET, 0.512, FADED), (SPEECH, 1.472, LOUD), (SPEECH, 0.064, FADED), (QUIET, 3.0, FADED)]
    done = hears("Sunday is the best part of the week.", p_end=0.85)
    by_level = run(script, done)[-1]
    by_probability = run([(p, s) for p, s, _ in script], done)[-1]
    assert kind(by_level) == kind(by_probability) == "end"
    assert by_level.t == pytest.approx(1.984 + CFG.complete_silence_ms / 1000.0, abs=FRAME_S)
    assert by_probability.t - by_level.t == pytest.approx(0.064, abs=1e-6)
    assert by_level.silence_s == pytest.approx(CFG.complete_silence_ms / 1000.0, abs=FRAME_S)


def test_a_hum_under_the_voice_leaves_the_end_where_silero_put_it() -> None:
    script = [(QUIET, 0.512, HUM), (SPEECH, 1.472, LOUD), (SPEECH, 0.064, HUM), (QUIET, 3.0, HUM)]
    done = hears("Sunday is the best part of the week.", p_end=0.85)
    assert run(script, done)[-1].t == run([(p, s) for p, s, _ in script], done)[-1].t


def test_the_end_moves_back_at_most_max_vad_lag() -> None:
    script = [(QUIET, 0.512, FADED), (SPEECH, 1.28, LOUD), (SPEECH, 0.256, FADED), (QUIET, 3.0, FADED)]
    done = hears("Sunday is the best part of the week.", p_end=0.85)
    by_level, by_probability = run(script, done)[-1], run([(p, s) for p, s, _ in script], done)[-1]
    assert by_probability.t - by_level.t == pytest.approx(MAX_VAD_LAG_S, abs=FRAME_S)


def test_the_speculative_pass_starts_once_the_voice_has_gone_and_silero_is_unsure() -> None:
    unsure = 0.45  # between Silero's two thresholds: still speech by probability alone
    script = [(QUIET, 0.512, FADED), (SPEECH, 1.472, LOUD), (unsure, 0.096, FADED), (QUIET, 3.0, FADED)]
    by_level = [e for e in run(script) if kind(e) == "speculate"]
    by_probability = [e for e in run([(p, s) for p, s, _ in script]) if kind(e) == "speculate"]
    assert len(by_level) == len(by_probability) == 1
    assert by_level[0].t == pytest.approx(1.984 + 0.064, abs=1e-6)  # 48 ms of quiet, in whole frames
    assert by_probability[0].t == pytest.approx(1.984 + 0.096 + FRAME_S, abs=1e-6)


def test_a_quiet_stretch_inside_a_word_that_silero_is_sure_of_is_not_a_pause() -> None:
    script = [(QUIET, 0.512, FADED), (SPEECH, 1.0, LOUD), (SPEECH, 0.128, FADED), (SPEECH, 1.0, LOUD),
              (QUIET, 3.0, FADED)]
    assert kinds(run(script)) == ["start", "speculate", "end"]


def test_a_question_ends_the_turn_soon_whatever_the_model_thinks() -> None:
    end = run([(QUIET, 0.5), (SPEECH, 1.5), (QUIET, 3.0)], hears("What do you like about the ocean?", p_end=0.01))[-1]
    assert end.silence_s == pytest.approx(CFG.complete_silence_ms / 1000.0, abs=FRAME_S)


def test_a_slow_speaker_gets_more_than_their_longest_pause() -> None:
    """Someone who already paused 1.0 s mid-sentence is not cut off by a 1.1 s pause later, after words that
    sound finished but that the LLM is not sure end the turn."""
    script = [(QUIET, 0.5), (SPEECH, 1.0), (QUIET, 1.0), (SPEECH, 1.0), (QUIET, 1.1), (SPEECH, 0.5), (QUIET, 3.0)]
    listener = hears(("I was thinking", 0.02), ("I was thinking about the sea.", 0.3),
                     ("I was thinking about the sea. It is lovely here.", 0.3))
    events = run(script, listener)
    assert kinds(events) == ["start", "speculate", "resume", "speculate", "resume", "speculate", "end"]
    assert kind(events[-1]) == "end" and events[-1].silence_s >= 1.25 * 1.0 - FRAME_S
    # a quick speaker saying the same words is answered after the short "complete" silence
    quick = run([(QUIET, 0.5), (SPEECH, 2.5), (QUIET, 3.0)], hears("I was thinking about the sea.", p_end=0.3))
    assert quick[-1].silence_s == pytest.approx(CFG.complete_silence_ms / 1000.0, abs=FRAME_S)


def test_a_speaker_saying_one_word_at_a_time_is_not_cut_off_after_their_third_word() -> None:
    """"Samantha [0.33 s] do [0.38 s] you [0.55 s] ever wonder": three short stretches of speech in a row,
    and "Samantha, do you?" sounds like a question. Their longest pause so far (1.25 × 0.38 s) would end the
    turn in the 0.55 s pause; a speaker going word by word gets twice the median of their pauses."""
    words = [(SPEECH, 0.55), (QUIET, 0.33), (SPEECH, 0.26), (QUIET, 0.38), (SPEECH, 0.3), (QUIET, 0.55),
             (SPEECH, 0.45), (QUIET, 3.0)]
    listener = hears(("Samantha", 0.05), ("Samantha, do", 0.05), ("Samantha, do you?", 0.4),
                     ("Samantha, do you ever wonder?", 0.4))
    events = run([(QUIET, 0.5), *words], listener)
    assert kinds(events) == ["start", "speculate", "resume", "speculate", "resume", "speculate", "resume",
                             "speculate", "end"]
    assert events[-1].silence_s == pytest.approx(2 * 0.384, abs=FRAME_S)  # the median (0.38 s), twice
    # the same pauses between long stretches of speech: the 0.55 s pause ends the turn
    sentences = [(SPEECH, 1.5), (QUIET, 0.33), (SPEECH, 1.5), (QUIET, 0.38), (SPEECH, 1.5), (QUIET, 0.55),
                 (SPEECH, 0.45), (QUIET, 3.0)]
    fluent = run([(QUIET, 0.5), *sentences], hears(("I went down to the harbour and", 0.02),
                                                   ("I went down to the harbour and asked the man if", 0.02),
                                                   ("I went down to the harbour and asked the man if he sails?", 0.4)))
    assert kinds(fluent) == ["start", "speculate", "resume", "speculate", "resume", "speculate", "end",  # at 0.55 s
                             "start", "speculate", "end"]


def test_a_turn_taken_too_soon_and_gone_on_with_keeps_the_word_by_word_rhythm() -> None:
    """"Samantha [0.32 s] do" is taken as a finished "Samantha, do?" after 0.40 s; the user goes on ("you"),
    the loop reopens the turn (`went_on_after_end`), and the words before count: after "you" they have said
    three short stretches, so a 0.65 s pause (under twice the median of 0.32 and 0.45 s) does not end it."""
    script = [(QUIET, 0.5), (SPEECH, 0.55), (QUIET, 0.32), (SPEECH, 0.26), (QUIET, 0.45), (SPEECH, 0.3),
              (QUIET, 0.65), (SPEECH, 0.45), (QUIET, 3.0)]
    listener = hears(("Samantha", 0.05), ("Samantha, do?", 0.4), ("Samantha, do you?", 0.4), ("you ever?", 0.4))

    def loop(det: TurnDetector, event: TurnEvent) -> None:
        listener(det, event)
        if kind(event) == "start" and event.t > 1.0:  # the user went on after the turn was taken
            det.went_on_after_end(0.45)

    events = run(script, loop)
    assert kinds(events) == ["start", "speculate", "resume", "speculate", "end", "start", "speculate", "resume",
                             "speculate", "end"]
    assert events[-1].t > 0.5 + 0.55 + 0.32 + 0.26 + 0.45 + 0.3 + 0.65 + 0.45  # after the last word


def test_a_confident_end_does_not_wait_out_a_slow_speakers_longest_pause() -> None:
    """"And so, my fellow Americans, [1.2 s] ask not [1.1 s] what your country can do for you, [0.6 s] ask what
    you can do for your country." The pauses at unfinished words make this a slow speaker, but at the end the
    words and the LLM agree the turn is over: it ends after `confident_max_ms`, not 1.25 × 1.2 s. The 0.6 s
    pause at "for you," (finished words, the LLM unsure) does not end it."""
    script = [(QUIET, 0.5), (SPEECH, 1.5), (QUIET, 1.2), (SPEECH, 0.6), (QUIET, 1.1), (SPEECH, 1.3), (QUIET, 0.6),
              (SPEECH, 1.8), (QUIET, 3.0)]
    heard: list[tuple[str, float]] = [
        ("And so my fellow Americans.", 0.06), ("And so, my fellow Americans, ask not", 0.05),
        ("And so, my fellow Americans, ask not what your country can do for you.", 0.14),
        ("And so, my fellow Americans, ask not what your country can do for you, ask what you can do for your "
         "country.", 0.9)]
    events = run(script, hears(*heard))
    assert kinds(events) == ["start", "speculate", "resume", "speculate", "resume", "speculate", "resume",
                             "speculate", "end"]
    assert events[-1].silence_s == pytest.approx(CFG.confident_max_ms / 1000.0, abs=FRAME_S)
    # the same end with the LLM unsure waits out 1.25 × the longest pause
    unsure = run(script, hears(*heard[:3], (heard[3][0], 0.3)))
    assert kind(unsure[-1]) == "end" and unsure[-1].silence_s >= 1.25 * 1.2 - FRAME_S
    # nor does the 0.6 s pause end it when the LLM is confident there too (late in a session it often is)
    confident = run(script, hears(*heard[:2], (heard[2][0], 0.9), heard[3]))
    assert kinds(confident) == kinds(events)


def test_no_turn_waits_longer_than_max_silence() -> None:
    events = run([(QUIET, 0.5), (SPEECH, 1.0), (QUIET, 2.4), (SPEECH, 1.0), (QUIET, 5.0)], hears("and um", p_end=0.01))
    end = events[-1]
    assert kind(end) == "end"
    assert end.silence_s <= CFG.max_silence_ms / 1000.0 + FRAME_S


def test_a_very_long_utterance_is_cut_into_a_turn() -> None:
    det = TurnDetector(VadConfig(), EndpointConfig(max_turn_s=5.0))
    events = run([(QUIET, 0.5), (SPEECH, 8.0)], detector=det)
    assert "end" in kinds(events)
    first_end = next(e for e in events if kind(e) == "end")
    assert first_end.t == pytest.approx(5.5, abs=2 * FRAME_S)
    assert "partial" in kinds(events, partial=True)  # a long stretch of speech is transcribed while the user talks


def test_partial_comes_only_after_unbroken_speech() -> None:
    events = run([(QUIET, 0.5), (SPEECH, 0.8), (QUIET, 0.6), (SPEECH, 0.8), (QUIET, 0.6), (SPEECH, 0.8),
                  (QUIET, 3.0)])
    assert "partial" not in kinds(events, partial=True)  # each pause is transcribed by `speculate` instead
    events = run([(QUIET, 0.5), (SPEECH, 3.2), (QUIET, 0.6), (SPEECH, 1.3), (QUIET, 3.0)])
    partials = [e.t for e in events if kind(e) == "partial"]
    assert partials == pytest.approx([2.0, 3.5], abs=2 * FRAME_S)  # every 1.5 s of unbroken speech


def test_two_turns_in_a_row() -> None:
    events = run([(QUIET, 0.5), (SPEECH, 1.0), (QUIET, 2.0), (SPEECH, 1.0), (QUIET, 2.0)])
    assert kinds(events) == ["start", "speculate", "end", "start", "speculate", "end"]


# --- the text rules --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "complete"), [
    ("What time is it?", True),
    ("How about you?", True),
    ("Thank you.", True),
    ("It is sunny today.", True),
    ("Wow!", True),
    ("and so my fellow", False),
    ("I went to the", False),
    ("Well,", False),
    ("I think that um", False),
    ("So...", False),
    ("", False),
    ("Yes.", False),  # a single word with a full stop is Whisper's habit, not proof of a finished turn
])
def test_turn_sounds_complete(text: str, complete: bool) -> None:
    assert turn_sounds_complete(text) is complete


def test_silence_needed_ms() -> None:
    complete, incomplete = CFG.complete_silence_ms, CFG.incomplete_silence_ms
    assert silence_needed_ms("What time is it?", None, CFG) == complete
    assert silence_needed_ms("What time is it?", 0.0, CFG) == complete
    assert silence_needed_ms("I think that", 0.99, CFG) == incomplete  # a trailing connective wins
    # Whisper left out every mark: the words and a confident LLM decide, an unsure one leaves it unfinished
    unpunctuated = "and so my fellow americans ask not what your country can do for you ask what you can do for you"
    assert silence_needed_ms(unpunctuated, 0.98, CFG) == complete
    assert silence_needed_ms(unpunctuated, 0.2, CFG) == incomplete
    assert silence_needed_ms("so I went to the", 0.98, CFG) == incomplete
    assert silence_needed_ms("Sunday is the best part of the week.", 0.85, CFG) == complete
    assert silence_needed_ms("and so my fellow Americans.", 0.04, CFG) == incomplete  # the model hears it goes on
    middle = silence_needed_ms("Sunday is the best part of the week.", 0.1, CFG)
    assert complete < middle < incomplete
    assert silence_needed_ms("Sunday is the best.", None, CFG) == complete  # no model: trust the punctuation


def test_a_question_that_stops_on_a_dangling_word_waits_out_a_hesitation() -> None:
    complete = CFG.complete_silence_ms
    # Whisper's "?" on a phrase cut after a preposition, in a voice that sounds done (Smart Turn 0.97): the LLM's
    # near-zero P(end) holds it (values from scripts/check_dangling_questions.py and the turn-taking corpus)
    assert silence_needed_ms("Could you tell me more about?", 0.0002, CFG, 0.97) == HESITATION_MS
    assert silence_needed_ms("Did you get a chance to look at?", 0.0002, CFG, 0.96) == HESITATION_MS
    # whole questions that end on such a word, or on "not", "what", "mean", are answered at once
    assert silence_needed_ms("What are you up to?", 0.58, CFG, 0.87) == complete
    assert silence_needed_ms("Who are you waiting for?", 0.75, CFG, 0.96) == complete
    assert silence_needed_ms("Why not?", 0.0022, CFG, 0.92) == complete
    assert silence_needed_ms("So what?", 0.0043, CFG, 0.57) == complete
    assert silence_needed_ms("What do you mean?", 0.0116, CFG, 0.96) == complete
    assert silence_needed_ms("Could you tell me more about?", None, CFG) == complete  # no LLM: the mark decides


def test_the_voice_vetoes_a_quick_end_only_where_it_clearly_sounds_unfinished() -> None:
    complete, incomplete = CFG.complete_silence_ms, CFG.incomplete_silence_ms
    # P(complete) values as Smart Turn gave them on the turn-taking corpus's tune half
    assert silence_needed_ms("ask not what your country can do for you as well.", 0.24, CFG, 0.015) == HESITATION_MS
    assert silence_needed_ms("The child almost hurt the small dog.", 0.54, CFG, 0.03) == complete  # LLM sure enough
    assert silence_needed_ms("Samantha, do you ever wonder what happens?", 0.002, CFG, 0.14) == HESITATION_MS
    assert silence_needed_ms("What do you like about the ocean?", 0.9, CFG, 0.96) == complete
    assert silence_needed_ms("Could you tell me more about", 0.77, CFG, 0.97) == incomplete  # words decide
    assert silence_needed_ms("I was thinking that maybe we could", 0.0, CFG, 0.99) == incomplete
    assert HESITATION_MS > 1000  # longer than the hesitations a listener waits out


def test_the_voice_is_asked_only_where_its_verdict_could_change_the_wait() -> None:
    assert voice_matters("What happens?", 0.01, CFG)
    assert not voice_matters("What do you like about the ocean?", 0.9, CFG)  # the LLM is sure: no need to ask
    assert voice_matters("It runs down the middle.", 0.07, CFG)
    assert not voice_matters("Sunday is the best part of the week.", 0.81, CFG)
    assert not voice_matters("and so my fellow", 0.0, CFG)
