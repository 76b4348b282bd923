"""What the bench measures: one `TurnMetrics` per answered turn (read from its `TurnRecord`), summarised per
mode as p50/p90/max, with the rule that tells a regression from run-to-run noise."""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from voiceos.commands.bench.corpus import BenchItem
from voiceos.commands.bench.options import MODES, Step
from voiceos.config import Mode
from voiceos.listen.transcript import SpeechRecognizer, word_error_rate
from voiceos.loop.record import TurnRecord
from voiceos.measure.stats import percentile


@dataclass(frozen=True)
class MetricSpec:
    """One measured number: its TurnMetrics field, how it reads, and what counts as worse."""

    key: str
    label: str
    unit: str
    digits: int
    higher_is_better: bool
    floor: float  # the smallest change that can count as a regression (run-to-run noise below it)



METRICS = (
    MetricSpec("endpoint_ms", "end-of-turn delay", "ms", 0, False, 20.0),
    MetricSpec("stt_ms", "STT time", "ms", 0, False, 20.0),
    MetricSpec("stt_rtf", "STT real-time factor", "×", 3, False, 0.02),
    MetricSpec("llm_first_token_ms", "LLM first token", "ms", 0, False, 20.0),
    MetricSpec("first_clause_ms", "first clause ready", "ms", 0, False, 20.0),
    MetricSpec("tts_first_audio_ms", "TTS first audio", "ms", 0, False, 20.0),
    MetricSpec("voice_to_voice_ms", "voice-to-voice", "ms", 0, False, 20.0),
    MetricSpec("decode_tps", "LLM decode", "tok/s", 1, True, 1.0),
    MetricSpec("wer", "word error rate", "", 3, False, 0.05),
    MetricSpec("wer_offline", "WER, full-window pass", "", 3, False, 0.05),
    MetricSpec("used_fraction", "pause CPU used", "", 3, True, 0.05),
    MetricSpec("cpu_s", "CPU per turn", "s", 2, False, 0.1),
    MetricSpec("peak_rss_mb", "peak RSS", "MB", 0, False, 20.0),
)

METRIC_BY_KEY = {m.key: m for m in METRICS}

NOISE_RULE = ("a regression is flagged when the new p50 is worse than the old p50 by more than "
              "max(10% of the old p50, 2 × (old p90 − old p50), a floor: 20 ms for times, 0.02 for the real-time "
              "factor, 1 tok/s, 0.05 for WER and pause use, 0.1 CPU-s, 20 MB)")



@dataclass
class TurnMetrics:
    """What one answered turn (or one unanswered utterance) measured. Times in ms from the end of speech."""

    run: int
    mode: str
    utterance: str
    order: int
    answered: bool
    part: int = 0  # >0 when the loop heard one utterance as several turns
    heard: str = ""
    reference: str | None = None
    reply: str = ""
    interrupted: bool = False
    endpoint_ms: float | None = None
    stt_ms: float | None = None
    stt_rtf: float | None = None
    llm_first_token_ms: float | None = None
    first_clause_ms: float | None = None
    tts_first_audio_ms: float | None = None
    voice_to_voice_ms: float | None = None
    decode_tps: float | None = None
    wer: float | None = None  # of the whole utterance, on its first part
    wer_offline: float | None = None  # of a full-window pass of the same Whisper over the same audio
    used_fraction: float | None = None
    cpu_s: float | None = None  # process CPU-seconds of the converse call, shared among its turns
    peak_rss_mb: float | None = None
    trace_ms: dict[str, float | None] = field(default_factory=dict)

    def value(self, key: str) -> float | None:
        v = getattr(self, key)
        return float(v) if isinstance(v, int | float) and math.isfinite(v) else None



@dataclass
class Aggregate:
    """One metric over the turns of one mode."""

    n: int
    p50: float | None
    p90: float | None
    max: float | None
    mean: float | None


def step_metrics(step: Step, records: list[TurnRecord], starts: list[float], cpu_s: float,
                 rss_mb: float | None) -> list[TurnMetrics]:
    """Turn records → TurnMetrics, each assigned to the utterance being fed when its speech began."""
    by_item: list[list[TurnRecord]] = [[] for _ in step.items]
    for record in records:
        k = bisect_right(starts, record.user.speech_start + 0.05) - 1
        by_item[min(max(k, 0), len(step.items) - 1)].append(record)
    turns: list[TurnMetrics] = []
    for item, recs in zip(step.items, by_item):
        if not recs:
            turns.append(TurnMetrics(step.run, step.mode.value, item.name, step.order, answered=False,
                                     reference=item.reference))
            continue
        wer = None
        if item.reference is not None:
            wer = round(word_error_rate(item.reference, " ".join(r.user.text for r in recs)), 4)
        for part, record in enumerate(recs):
            turns.append(turn_metrics(step, item, record, part=part, wer=wer if part == 0 else None))
    for turn in turns:
        turn.cpu_s = round(cpu_s / len(turns), 3)
        turn.peak_rss_mb = rss_mb
    return turns


def offline_wers(stt: SpeechRecognizer, items: Sequence[BenchItem]) -> dict[str, float]:
    """Each utterance's word error rate from one full-window pass (30 s, as Whisper was trained) of the same
    model over its whole audio: the accuracy the live transcript should reach."""
    return {item.name: round(word_error_rate(item.reference,
                                             stt.transcribe(item.samples, word_timestamps=False,
                                                            full_window=True).text), 4)
            for item in items if item.reference is not None}


def add_offline_wers(turns: Sequence[TurnMetrics], offline: dict[str, float]) -> None:
    for turn in turns:
        if turn.wer is not None:
            turn.wer_offline = offline.get(turn.utterance)


def turn_metrics(step: Step, item: BenchItem, record: TurnRecord, *, part: int, wer: float | None) -> TurnMetrics:
    tm = record.timings_ms
    return TurnMetrics(
        step.run, step.mode.value, item.name, step.order, answered=True, part=part,
        heard=record.user.text, reference=item.reference, reply=record.reply.text,
        interrupted=record.reply.interrupted,
        endpoint_ms=tm.endpoint, stt_ms=tm.stt, stt_rtf=tm.stt_rtf, llm_first_token_ms=tm.llm_first_token,
        first_clause_ms=tm.first_clause, tts_first_audio_ms=tm.tts_first_audio, voice_to_voice_ms=tm.voice_to_voice,
        decode_tps=positive(record.llm.decode_tps), wer=wer, used_fraction=record.pauses.used_fraction,
        trace_ms=record.trace_ms.as_dict(),
    )


def positive(value: Any) -> float | None:
    """A rate of 0 means "not measured" (e.g. a reply of one token), not "infinitely slow"."""
    return float(value) if isinstance(value, int | float) and value > 0 else None


def aggregate(values: Sequence[float]) -> Aggregate:
    def r(v: float | None) -> float | None:
        return round(v, 4) if v is not None else None

    return Aggregate(len(values), r(percentile(values, 50)), r(percentile(values, 90)),
                     r(max(values)) if values else None, r(sum(values) / len(values)) if values else None)


def aggregates(turns: Sequence[TurnMetrics]) -> dict[str, dict[str, Aggregate]]:
    """Per mode, per metric (answered turns only)."""
    out: dict[str, dict[str, Aggregate]] = {}
    for mode in dict.fromkeys(t.mode for t in turns):
        mine = [t for t in turns if t.mode == mode and t.answered]
        out[mode] = {m.key: aggregate([v for t in mine if (v := t.value(m.key)) is not None]) for m in METRICS}
    return out


def ratios(aggs: dict[str, dict[str, Aggregate]]) -> dict[str, float | None]:
    """naive p50 / streaming p50 for each metric (None when either is missing or streaming's is 0)."""
    if not all(mode.value in aggs for mode in MODES):
        return {}
    out: dict[str, float | None] = {}
    for m in METRICS:
        s, n = aggs[Mode.STREAMING.value][m.key].p50, aggs[Mode.NAIVE.value][m.key].p50
        out[m.key] = round(n / s, 3) if s and n is not None else None
    return out
