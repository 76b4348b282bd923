"""The pause ledger with KNOWN pauses: espeak-ng words joined by exact silences, transcribed by the real
Whisper model, boundaries refined on the audio — every inserted pause must be found (±60 ms) and none
invented (>150 ms). Then the ledger's arithmetic on a synthetic turn."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from conftest import espeak_words

from voiceos.audio.wav import read_wav
from voiceos.listen.transcript import Word, normalise
from voiceos.listen.word_timing import refine_words
from voiceos.measure.cpu_meter import CpuSpan
from voiceos.measure.ledger import (
    SAMANTHA_BOOK_S,
    TOKENS_PER_BOOK,
    TOKENS_PER_PAGE,
    Rates,
    WorkLog,
    build_ledger,
    summary_line,
)

EDGE_S = 0.060  # an inserted pause must be reported with both edges within this
INVENTED_S = 0.150  # where no pause was inserted, no reported gap may be longer than this

# Sentences of single espeak-ng words with pauses of 0.25, 0.5 and 1.0 s, and words that touch (0.0).
KNOWN_PAUSES = [
    (["Sunday", "is", "the", "best", "part", "of", "the", "week"], [0.25, 0.5, 1.0, 0.25, 0.5, 1.0, 0.25]),
    (["drop", "the", "box", "when", "you", "reach", "the", "door"], [0.25, 0.0, 1.0, 0.0, 0.5, 0.0, 0.25]),
    (["yesterday", "morning", "I", "walked", "along", "the", "beach"], [0.25, 0.0, 1.0, 0.0, 0.5, 0.0]),
    (["please", "open", "the", "window", "tonight"], [1.0, 0.25, 0.5, 0.25]),
    (["I", "would", "like", "a", "cup", "of", "coffee"], [0.0, 0.25, 0.0, 1.0, 0.0, 0.5]),
]
TRIES = 3  # espeak-ng's output varies by a few samples from run to run, and Whisper tiny.en now and then
# drops a word of such clipped speech; the pauses can only be checked word by word when every word was heard.


def gaps(words: list[Word]) -> list[tuple[float, float]]:
    return [(a.end, b.start) for a, b in zip(words, words[1:])]


@pytest.fixture(scope="module")
def made(engines: Any) -> list[tuple[list[str], list[float], list[float], list[Word], np.ndarray]]:
    out = []
    for words, pauses in KNOWN_PAUSES:
        heard_texts = []
        for _ in range(TRIES):
            audio, starts = espeak_words(words, pauses)
            transcript = engines.transcriber.transcribe(audio, word_timestamps=True)
            heard_texts.append(transcript.text)
            if [normalise(w.word) for w in transcript.words] == [normalise(w) for w in words]:
                break
        else:
            pytest.fail(f"Whisper never heard the {len(words)} words of {' '.join(words)!r}: {heard_texts}")
        out.append((words, pauses, starts, transcript.words, audio))
    return out


@pytest.mark.models
@pytest.mark.parametrize("case", range(len(KNOWN_PAUSES)), ids=[" ".join(w) for w, _ in KNOWN_PAUSES])
def test_inserted_pauses_are_measured_and_none_invented(case: int, made: list[Any]) -> None:
    words, pauses, starts, heard, audio = made[case]
    refined = refine_words(heard, audio)
    assert [w.word for w in refined] == [w.word for w in heard]
    for w in refined:
        assert 0.0 <= w.start <= w.end <= len(audio) / 16000 + 1e-6
    assert all(a.end <= b.start + 1e-9 for a, b in zip(refined, refined[1:])), "words overlap or go backwards"
    reported = gaps(refined)
    for k, (pause, start) in enumerate(zip(pauses, starts)):
        end_of_word, start_of_next = reported[k]
        where = f"between {words[k]!r} and {words[k + 1]!r} (heard {heard[k].word!r} {heard[k + 1].word!r})"
        if pause > 0:
            assert end_of_word == pytest.approx(start, abs=EDGE_S), f"pause {where} starts at {start:.3f}"
            assert start_of_next == pytest.approx(start + pause, abs=EDGE_S), \
                f"pause {where} ends at {start + pause:.3f}"
        else:
            assert start_of_next - end_of_word <= INVENTED_S, f"invented a pause {where}: {reported[k]}"


@pytest.mark.models
def test_the_ledger_reports_the_inserted_pauses(made: list[Any]) -> None:
    """The same words on the session clock (as the voice loop lays them out) give the ledger's gaps_ms."""
    words, pauses, _starts, heard, audio = made[0]
    offset = 12.5  # where the utterance sits on the session clock
    refined = refine_words(heard, audio)
    timed = [Word(w.word, offset + w.start, offset + w.end, w.prob) for w in refined]
    record = build_ledger(timed, offset + 0.25, timed[-1].end + 0.4, None, None, None).to_record()
    assert len(record.gaps_ms) == len(words) - 1
    for measured, inserted in zip(record.gaps_ms, pauses):
        assert measured == pytest.approx(inserted * 1000, abs=2 * EDGE_S * 1000)
    assert record.pause_s == pytest.approx(sum(pauses), abs=0.15)
    assert record.tail_ms == pytest.approx(400, abs=1)


@pytest.mark.models
def test_a_real_recording_gets_its_one_pause_and_no_invented_ones(engines: Any, speech_dir: Any) -> None:
    """spk1_snt1.wav ("the child almost hurt the small dog") has one real pause, ~0.2 s around 1.6 s."""
    samples, _ = read_wav(speech_dir / "spk1_snt1.wav")
    transcript = engines.transcriber.transcribe(samples, word_timestamps=True)
    assert normalise(transcript.text) == "the child almost hurt the small dog"
    refined = refine_words(transcript.words, samples)
    long_gaps = [(a.end, b.start) for a, b in gaps_with_words(refined) if b.start - a.end > INVENTED_S]
    assert len(long_gaps) == 1, f"expected the one real pause, got {long_gaps}"
    start, end = long_gaps[0]
    assert 1.4 <= start <= 1.8 and 0.15 < end - start < 0.35


def gaps_with_words(words: list[Word]) -> list[tuple[Word, Word]]:
    return list(zip(words, words[1:]))


# --- refine_words on synthetic audio with deliberately wrong Whisper times (no models) -------------------------


def tone_words(layout: list[tuple[float, float]], total_s: float, rate: int = 16000) -> np.ndarray:
    """Noise bursts ("words") at the given (start, end) seconds over a faint noise floor."""
    rng = np.random.default_rng(0)
    audio = 0.001 * rng.standard_normal(int(total_s * rate)).astype(np.float32)
    for a, b in layout:
        n = int(b * rate) - int(a * rate)
        t = np.arange(n) / rate
        audio[int(a * rate) : int(b * rate)] += (0.3 * np.sin(2 * np.pi * 220 * t) *
                                                 (1 + 0.5 * rng.standard_normal(n))).astype(np.float32)
    return audio


def test_refine_finds_pauses_whisper_smeared_over() -> None:
    truth = [(0.5, 0.9), (1.4, 1.8), (1.8, 2.2), (3.2, 3.6), (3.85, 4.1)]  # pauses 0.5, none, 1.0, 0.25 s
    audio = tone_words(truth, 5.0)
    # Whisper-like: words touch, each stretched over the silence after it or starting late, off by up to 0.4 s
    heard = [Word("one", 0.3, 1.3, 0.9), Word("two", 1.3, 1.9, 0.9), Word("three", 1.9, 2.9, 0.9),
             Word("four", 2.9, 3.7, 0.9), Word("five", 3.7, 4.3, 0.9)]
    refined = refine_words(heard, audio)
    assert [w.word for w in refined] == ["one", "two", "three", "four", "five"]
    assert refined[0].start == pytest.approx(0.5, abs=0.03) and refined[-1].end == pytest.approx(4.1, abs=0.03)
    expected_pauses = [(0.9, 1.4), None, (2.2, 3.2), (3.6, 3.85)]
    for (a, b), pause in zip(gaps(refined), expected_pauses):
        if pause is None:  # the words touch: no pause, and the boundary stays inside the sound
            assert a == b and 1.4 < a < 2.2
        else:
            assert a == pytest.approx(pause[0], abs=0.03) and b == pytest.approx(pause[1], abs=0.03), (a, b, pause)


def test_refine_puts_a_pause_on_the_right_boundary_when_whisper_is_late() -> None:
    """Whisper's boundaries often come late: the pause between 'the' and 'figures' (3.90–4.15 s) lies nearer
    Whisper's 'add'|'the' boundary (3.82) than its 'the'|'figures' one (4.24), yet belongs to the latter."""
    truth = [(2.9, 3.41), (3.41, 3.65), (3.65, 3.90), (4.15, 4.6)]  # "you" "add" "the" "figures"
    audio = tone_words(truth, 5.0)
    heard = [Word("you", 2.7, 3.42, 0.9), Word("add", 3.42, 3.82, 0.9), Word("the", 3.82, 4.24, 0.9),
             Word("figures", 4.24, 4.54, 0.9)]
    reported = gaps(refine_words(heard, audio))
    assert reported[2] == (pytest.approx(3.90, abs=0.03), pytest.approx(4.15, abs=0.03))
    assert reported[1][1] - reported[1][0] == 0.0


def test_refine_invents_no_pause_in_continuous_sound() -> None:
    audio = tone_words([(0.4, 2.4)], 3.0)
    heard = [Word(w, 0.4 + 0.5 * i, 0.9 + 0.5 * i, 0.9) for i, w in enumerate(["a", "b", "c", "d"])]
    refined = refine_words(heard, audio)
    assert all(b.start - a.end <= 1e-9 for a, b in zip(refined, refined[1:]))
    assert refined[0].start == pytest.approx(0.4, abs=0.03) and refined[-1].end == pytest.approx(2.4, abs=0.03)


def test_refine_edge_cases() -> None:
    audio = tone_words([(0.5, 1.0)], 2.0)
    assert refine_words([], audio) == []
    (one,) = refine_words([Word("hi", 0.3, 1.4, 0.9)], audio)
    assert one.start == pytest.approx(0.5, abs=0.03) and one.end == pytest.approx(1.0, abs=0.03)
    # words Whisper put past the end of the audio still come back ordered and inside it
    out = refine_words([Word("a", 0.4, 1.2, 0.9), Word("b", 1.9, 2.6, 0.9), Word("c", 2.6, 3.0, 0.9)], audio)
    assert [w.word for w in out] == ["a", "b", "c"]
    assert all(w.start <= w.end <= 2.0 + 1e-6 for w in out)
    assert all(a.end <= b.start for a, b in zip(out, out[1:]))


# --- the ledger's arithmetic ----------------------------------------------------------------------------------


class SteadyMeter:
    """A stand-in CpuMeter for a machine whose 2 cores are 75% idle, of which voiceos uses a fifth of a core."""

    def span(self, t0: float, t1: float) -> CpuSpan:
        d = max(0.0, t1 - t0)
        return CpuSpan(idle_s=1.5 * d, busy_s=0.5 * d, ours_s=0.2 * d)


RATES = Rates(decode_per_cpu_s=10.0, read_per_cpu_s=40.0, decode_tps=20.0, read_tps=80.0, threads=2,
              measured_at="2026-01-01T00:00:00+00:00", model="test.gguf")


def synthetic_words() -> list[Word]:
    # words on the session clock; gaps 0.3 s, 0 s (touching), 0.7 s
    return [Word("I", 10.2, 10.4, 0.9), Word("like", 10.7, 11.0, 0.9),
            Word("the", 11.0, 11.2, 0.9), Word("sea", 11.9, 12.3, 0.9)]


def test_ledger_record_from_a_synthetic_turn() -> None:
    work = WorkLog()
    work.add(10.45, 10.65, "speculative stt")  # inside the 0.3 s gap
    work.add(12.4, 12.6, "prefill")  # inside the tail
    work.add(5.0, 6.0, "an earlier turn")  # outside every pause of this turn
    ledger = build_ledger(synthetic_words(), speech_start=10.0, turn_decided=12.8, meter=SteadyMeter(),  # type: ignore[arg-type]
                          rates=RATES, work=work)
    r = ledger.to_record()
    assert r.gaps_ms == [300.0, 0.0, 700.0]
    assert r.lead_ms == 200.0 and r.tail_ms == 500.0
    assert r.pause_s == pytest.approx(1.0)
    assert r.all_pauses_s == pytest.approx(1.7)
    assert r.speech_s == pytest.approx(2.3)
    assert r.cpu_idle_s == pytest.approx(1.5 * 1.7)
    assert r.cpu_busy_s == pytest.approx(0.5 * 1.7)
    assert r.cpu_used_by_us_s == pytest.approx(0.2 * 1.7)
    assert r.useful_cpu_s == pytest.approx(0.2 * 0.4)
    assert r.used_fraction == pytest.approx(0.2 * 0.4 / (2.0 * 1.7), abs=1e-3)
    assert r.could_decode_tokens == pytest.approx(1.5 * 1.7 * 10.0)
    assert r.could_read_tokens == pytest.approx(1.5 * 1.7 * 40.0)
    assert r.could_read_pages == pytest.approx(1.5 * 1.7 * 40.0 / TOKENS_PER_PAGE, abs=1e-3)
    assert r.could_read_books == pytest.approx(1.5 * 1.7 * 40.0 / TOKENS_PER_BOOK, abs=1e-6)
    assert r.samantha_ratio == pytest.approx(TOKENS_PER_BOOK / 80.0 / SAMANTHA_BOOK_S, rel=1e-3)
    assert r.rates_measured_at == RATES.measured_at
    kinds = [d.kind for d in r.detail]
    assert kinds == ["lead", "gap", "gap", "gap", "tail"]
    assert "1.7 s of pauses" in summary_line(r) and "2.5 CPU-s idle" in summary_line(r)


def test_ledger_without_rates_or_meter_still_counts_the_pauses() -> None:
    r = build_ledger(synthetic_words(), 10.0, 12.8, None, None, None).to_record()
    assert r.gaps_ms == [300.0, 0.0, 700.0]
    assert r.cpu_idle_s == 0.0 and r.used_fraction == 0.0
    assert r.could_read_tokens is None and r.samantha_ratio is None
    assert "pauses" in summary_line(r)


def test_ledger_of_a_turn_without_words() -> None:
    r = build_ledger([], 3.0, 4.2, SteadyMeter(), RATES, WorkLog()).to_record()  # type: ignore[arg-type]
    assert r.gaps_ms == [] and r.pause_s == 0.0 and r.speech_s == 0.0
    assert r.tail_ms == pytest.approx(1200.0)
