"""`voiceos bench --turn-taking DIR`: both sides of turn-taking, on a corpus made by
scripts/make_turn_taking_corpus.py.

Each utterance is one user turn fed in real time through `Session.converse` (streaming mode) in a
conversation of its own. A **false cut-off** is a turn ended before the user's last word: the loop wrote more
than one turn for the utterance, or it decided the turn was over and had to reopen or merge it when the user
went on (whether or not she was already audible: both are counted, and the audible ones shown apart), or her
reply began before the utterance's voice ended (`answered_before_end`: she answered in the pause, and what
the user said over her was not taken as theirs). The **latency at true ends** is the end-of-turn delay and
voice-to-voice time of the turn that ends after the last word. The live transcript is scored against the
reference, beside a full-window pass of the same Whisper over the same audio (`wer_offline`).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from voiceos.audio.speaker import VirtualSpeaker
from voiceos.audio.wav import read_wav
from voiceos.audio.wav_source import WavSource, WavTurn
from voiceos.commands.bench.progress import progress_bar
from voiceos.commands.console import results_console, session_closed, status
from voiceos.config import Config, Mode
from voiceos.errors import AudioInputError
from voiceos.listen.transcript import SpeechRecognizer, word_error_rate
from voiceos.listen.word_timing import HOP_S, frame_energy_db, silence_mask
from voiceos.loop.record import TurnRecord
from voiceos.loop.session import Session, load_engines
from voiceos.loop.voice_loop import LoopOptions
from voiceos.measure.stats import fmt, percentile

MANIFEST = "turn_taking.tsv"
FIELDS = ("file", "kind", "split", "pause_s", "pause_at_s", "text")
BUDGET_PAUSE_S = 1.0  # the pauses a listener must wait out: false cut-offs at these are what counts
# her first sound this long before the file's last voiced block counts as answering before the end: Whisper's
# word ends and the loudness blocks disagree by a few tens of ms, and a reply never starts sooner than the
# shortest end-of-turn silence after a word
EARLY_MARGIN_S = 0.1


@dataclass(frozen=True)
class TurnTakingItem:
    file: str
    kind: str  # cut | slow | complete
    split: str  # tune | held-out
    pause_s: float  # the pause put in after an unfinished phrase (cut items)
    pause_at_s: float  # where that pause starts, seconds into the file
    text: str  # what is said


def write_manifest(path: Path, items: Sequence[TurnTakingItem]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, delimiter="\t")
        writer.writerow(FIELDS)
        for item in items:
            writer.writerow([item.file, item.kind, item.split, item.pause_s, item.pause_at_s, item.text])


def read_manifest(folder: Path) -> list[TurnTakingItem]:
    path = folder / MANIFEST
    if not path.is_file():
        raise AudioInputError(f"{folder}: no {MANIFEST} (make one with scripts/make_turn_taking_corpus.py)")
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    try:
        return [TurnTakingItem(r["file"], r["kind"], r["split"], float(r["pause_s"]), float(r["pause_at_s"]),
                               r["text"]) for r in rows]
    except (KeyError, ValueError) as exc:
        raise AudioInputError(f"{path}: not a turn-taking manifest ({exc})") from exc


@dataclass
class TurnTakingResult:
    """What one utterance did."""

    file: str
    kind: str
    split: str
    pause_s: float
    turns: int  # turn records written for it
    reopened: int  # turns taken back before she was heard
    merged: int  # turns taken back after her first words (she was talked over)
    cut_off: bool
    answered_early: bool  # her reply began before the utterance's voice ended
    heard: str
    reply: str
    endpoint_ms: float | None
    voice_to_voice_ms: float | None
    wer: float
    wer_offline: float


def voice_end_s(samples: np.ndarray) -> float:
    """Where the voice in `samples` ends, in seconds: the end of its last block above the silence threshold."""
    voiced = np.flatnonzero(~silence_mask(frame_energy_db(samples)))
    return float((voiced[-1] + 1) * HOP_S) if voiced.size else 0.0


def answered_before_end(records: Sequence[TurnRecord], voice_end_t: float) -> bool:
    """Her first sound in any of these turns came before `voice_end_t` (session clock): she answered while
    the user was still to say more."""
    for record in records:
        out_ms = record.trace_ms.first_sample_out
        if out_ms is not None and record.user.speech_end + out_ms / 1000.0 < voice_end_t - EARLY_MARGIN_S:
            return True
    return False


def judge(item: TurnTakingItem, samples: np.ndarray, session: Session, stt: SpeechRecognizer) -> TurnTakingResult:
    source = WavSource(session.clock, [WavTurn(item.file, samples)], realtime=True)
    speaker = VirtualSpeaker(session.clock).start()
    try:
        result = session.converse(source, speaker, LoopOptions(Mode.STREAMING))
    finally:
        speaker.close()
    records = result.records
    last = records[-1] if records else None
    early = bool(source.turn_started_at) and answered_before_end(records, source.turn_started_at[0]
                                                                 + voice_end_s(samples))
    heard = " ".join(r.user.text for r in records)
    offline = stt.transcribe(samples, word_timestamps=False, full_window=True).text
    return TurnTakingResult(
        item.file, item.kind, item.split, item.pause_s, len(records), result.reopened, result.merged,
        cut_off=len(records) > 1 or result.reopened > 0 or result.merged > 0 or early, answered_early=early,
        heard=heard, reply=last.reply.text if last else "",
        endpoint_ms=last.timings_ms.endpoint if last else None,
        voice_to_voice_ms=last.timings_ms.voice_to_voice if last else None,
        wer=round(word_error_rate(item.text, heard), 4), wer_offline=round(word_error_rate(item.text, offline), 4))


@dataclass
class CutOffRow:
    pause_s: float
    split: str
    n: int
    cut_off: int
    audible: int  # of which she was already heard

    @property
    def rate(self) -> float:
        return self.cut_off / self.n if self.n else 0.0


def cut_off_rows(results: Sequence[TurnTakingResult]) -> list[CutOffRow]:
    rows = []
    cuts = [r for r in results if r.kind == "cut"]
    for pause in sorted({r.pause_s for r in cuts}):
        for split in ("tune", "held-out", "all"):
            mine = [r for r in cuts if r.pause_s == pause and split in ("all", r.split)]
            if mine:
                rows.append(CutOffRow(pause, split, len(mine), sum(r.cut_off for r in mine),
                                      sum(r.merged > 0 or r.turns > 1 or r.answered_early for r in mine)))
    return rows


@dataclass
class WerRow:
    """The complete sentences of one split: the mean word error rate of what was heard live and of a
    full-window pass over the same audio."""

    split: str
    n: int
    live: float
    offline: float


def wer_rows(complete: Sequence[TurnTakingResult]) -> list[WerRow]:
    rows = []
    for split in ("tune", "held-out"):
        mine = [r for r in complete if r.split == split]
        if mine:
            rows.append(WerRow(split, len(mine), round(float(np.mean([r.wer for r in mine])), 4),
                               round(float(np.mean([r.wer_offline for r in mine])), 4)))
    return rows


@dataclass
class TurnTakingSummary:
    false_cut_off_rate: float | None  # at pauses up to BUDGET_PAUSE_S after an unfinished phrase
    false_cut_offs: int
    cut_items: int
    slow_cut_offs: int  # slow speakers (espeak word by word) whose turn was taken before the last word
    slow_items: int
    voice_to_voice_p50_ms: float | None  # at true ends
    voice_to_voice_p90_ms: float | None
    endpoint_p50_ms: float | None
    endpoint_p90_ms: float | None
    complete_wer: float | None  # the live transcripts of the complete sentences...
    complete_wer_offline: float | None  # ...and a full-window pass over the same audio
    complete_wer_by_split: list[WerRow]  # the same two, for the tune and held-out sentences apart


def summary(results: Sequence[TurnTakingResult]) -> TurnTakingSummary:
    within = [r for r in results if r.kind == "cut" and r.pause_s <= BUDGET_PAUSE_S]
    slow = [r for r in results if r.kind == "slow"]
    ends = [r for r in results if not r.cut_off]
    complete = [r for r in results if r.kind == "complete"]
    v2v = [r.voice_to_voice_ms for r in ends if r.voice_to_voice_ms is not None]
    endpoint = [r.endpoint_ms for r in ends if r.endpoint_ms is not None]

    def mean(values: list[float]) -> float | None:
        return round(float(np.mean(values)), 4) if values else None

    return TurnTakingSummary(
        round(sum(r.cut_off for r in within) / len(within), 4) if within else None,
        sum(r.cut_off for r in within), len(within), sum(r.cut_off for r in slow), len(slow),
        percentile(v2v, 50), percentile(v2v, 90), percentile(endpoint, 50), percentile(endpoint, 90),
        mean([r.wer for r in complete]), mean([r.wer_offline for r in complete]), wer_rows(complete))


def print_report(results: Sequence[TurnTakingResult], summ: TurnTakingSummary) -> None:
    from rich.table import Table

    console = results_console()
    table = Table(title="false cut-offs after an unfinished phrase, by pause length")
    for col in ("pause", "split", "utterances", "cut off", "rate", "of which she spoke"):
        table.add_column(col, justify="right")
    for row in cut_off_rows(results):
        table.add_row(f"{row.pause_s:.1f} s", row.split, str(row.n), str(row.cut_off), f"{row.rate:.0%}",
                      str(row.audible))
    console.print(table)
    turns = Table(title="every utterance")
    for col in ("utterance", "kind", "split", "turns", "reopened", "merged", "end ms", "v2v ms", "WER", "offline",
                "heard"):
        turns.add_column(col)
    for r in results:
        turns.add_row(r.file, r.kind, r.split, str(r.turns), str(r.reopened), str(r.merged), fmt(r.endpoint_ms),
                      fmt(r.voice_to_voice_ms), f"{r.wer:.2f}", f"{r.wer_offline:.2f}", r.heard)
    console.print(turns)
    console.print(f"false cut-offs at pauses ≤ {BUDGET_PAUSE_S:.1f} s: {summ.false_cut_offs} of {summ.cut_items}; "
                  f"slow speakers cut off: {summ.slow_cut_offs} of {summ.slow_items}")
    console.print(f"at true ends: voice-to-voice p50 {fmt(summ.voice_to_voice_p50_ms)} ms, p90 "
                  f"{fmt(summ.voice_to_voice_p90_ms)} ms; end of turn p50 {fmt(summ.endpoint_p50_ms)} ms, "
                  f"p90 {fmt(summ.endpoint_p90_ms)} ms")
    console.print(f"complete sentences: live WER {fmt(summ.complete_wer, 3)}, "
                  f"full-window pass {fmt(summ.complete_wer_offline, 3)}")
    for wer in summ.complete_wer_by_split:
        console.print(f"  {wer.split} ({wer.n}): live WER {wer.live:.3f}, full-window pass {wer.offline:.3f}")


def plot(path: Path, results: Sequence[TurnTakingResult]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in cut_off_rows(results) if r.split == "all"]
    ends = [r.voice_to_voice_ms for r in results if r.voice_to_voice_ms is not None and not r.cut_off]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.bar([f"{r.pause_s:.1f} s" for r in rows], [100 * r.rate for r in rows], color="#c0504d")
    left.axhline(5, color="grey", linestyle="--", linewidth=1)
    left.set_ylabel("false cut-offs (%)")
    left.set_xlabel("pause after an unfinished phrase")
    left.set_ylim(0, 100)
    right.hist(ends, bins=20, color="#4f81bd")
    right.set_xlabel("voice-to-voice at true ends (ms)")
    right.set_ylabel("utterances")
    fig.suptitle("voiceos turn-taking")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run_turn_taking(config: Config, folder: Path, json_path: Path | None, plot_path: Path | None) -> int:
    items = read_manifest(folder)
    # bad files fail here, before the models load
    audio = {item.file: read_wav(folder / item.file, warn=status)[0] for item in items}
    status(f"turn-taking bench: {len(items)} utterances from {folder}")
    engines = load_engines(config, progress=status)
    config.session.memory = False  # the corpus is not the user: nothing of theirs is read, nothing kept
    session = Session(config, engines, log_dir=config.session.log_dir, kind="bench")
    results: list[TurnTakingResult] = []
    with session_closed(session):
        warm = min(items, key=lambda i: len(audio[i.file]))
        judge(warm, audio[warm.file], session, engines.transcriber)  # one warm-up turn, not counted
        with progress_bar(len(items)) as update:
            for item in items:
                update(item.file, False)
                results.append(judge(item, audio[item.file], session, engines.transcriber))
                update(item.file, True)
        summ = summary(results)
        session.log.write("turn_taking_summary", **asdict(summ))
    print_report(results, summ)
    if json_path:
        document = {"summary": asdict(summ), "utterances": [asdict(r) for r in results]}
        json_path.write_text(json.dumps(document, indent=1))
        status(f"JSON: {json_path}")
    if plot_path:
        plot(plot_path, results)
        status(f"plot: {plot_path}")
    return 0
