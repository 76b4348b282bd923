"""The text side of speech recognition: scoring transcripts, cutting Whisper's loops, and dropping what
Whisper says to silence. Pure logic on hand-made transcripts."""

from __future__ import annotations

import pytest

from voiceos.listen.transcript import (
    Transcript,
    Word,
    drop_repeats,
    hallucination_reason,
    loop_free,
    normalise,
    word_error_rate,
)


def transcript(text: str, prob: float = 0.9, audio_s: float = 2.0) -> Transcript:
    words = [Word(w, 0.3 * i, 0.3 * i + 0.25, prob) for i, w in enumerate(text.split())]
    return Transcript(text, words, audio_s)


def test_normalise() -> None:
    assert normalise("The child almost hurt the small dog.") == "the child almost hurt the small dog"
    assert normalise("Don't stop-believing, OK?!") == "dont stop believing ok"
    assert normalise("  ") == ""


@pytest.mark.parametrize(("ref", "hyp", "wer"), [
    ("the child almost hurt the small dog", "The child almost hurt the small dog.", 0.0),
    ("the child almost hurt the small dog", "The child almost hurt a small dog.", 1 / 7),  # one substitution
    ("the child almost hurt the small dog", "The child hurt the small dog.", 1 / 7),  # one deletion
    ("the child almost hurt the small dog", "The child almost hurt the very small dog.", 1 / 7),  # one insertion
    ("a b c d", "", 1.0),
    ("a b", "a b c d", 1.0),  # insertions can take it past the number of reference words
    ("", "", 0.0),
    ("", "hello", 1.0),
])
def test_word_error_rate(ref: str, hyp: str, wer: float) -> None:
    assert word_error_rate(ref, hyp) == pytest.approx(wer)


@pytest.mark.parametrize(("text", "kept"), [
    ("The child almost hurt the small dog. The child almost hurt the small dog.",
     "The child almost hurt the small dog."),
    ("The child almost hurt the small dog. The child almost", "The child almost hurt the small dog."),
    ("Sunday is the best. Sunday is the best. Sunday is", "Sunday is the best."),
    ("I went home. Then I slept well.", "I went home. Then I slept well."),
    ("I went home. Then I slept well. Then I slept well.", "I went home. Then I slept well."),
    ("Just one sentence", "Just one sentence"),
])
def test_drop_repeats(text: str, kept: str) -> None:
    assert drop_repeats(text) == kept


@pytest.mark.parametrize(("text", "kept"), [
    # heard live on JFK's speech, after a 1.1 s pause: the words before it were kept with this loop in them
    ("and so my fellow americans ask not ask not ask not ask not ask not ask Like your country",
     "and so my fellow americans ask not Like your country"),
    ("I I I think so.", "I think so."),
    ("It was very, very good.", "It was very, very good."),
    ("No, no, no, no. Fine.", "No, Fine."),
    ("We ask not what, ask not what you can do.", "We ask not what, ask not what you can do."),
])
def test_a_loop_inside_a_sentence_is_kept_once(text: str, kept: str) -> None:
    words = text.split()
    assert " ".join(words[i] for i in loop_free(words)) == kept


def test_real_speech_is_kept() -> None:
    assert hallucination_reason(transcript("I like the sea when it is cold."), [0.05]) == ""
    assert hallucination_reason(transcript("Thank you for the lovely evening."), [0.1]) == ""


@pytest.mark.parametrize(("t", "no_speech"), [
    (transcript(""), []),
    (transcript("..."), [0.2]),
    (transcript("Thank you.", prob=0.4), [0.3]),
    (transcript("you", prob=0.9, audio_s=0.3), [0.3]),
    (transcript("Thanks for watching!", prob=0.5), [0.4]),
    (transcript("I like the sea."), [0.9]),  # the model itself says there was no speech
    (transcript("Someone talking somewhere now", prob=0.1), [0.2]),  # nobody is sure of any word
])
def test_what_whisper_says_to_silence_is_dropped(t: Transcript, no_speech: list[float]) -> None:
    assert hallucination_reason(t, no_speech) != ""
