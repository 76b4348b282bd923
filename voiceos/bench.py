"""`voiceos bench`: the latency benchmark, stage by stage, over a corpus of WAV files.

Each utterance is fed in real time through the very pipeline `chat` uses (`Session.converse` on a `WavSource`,
replies to a real-time null sink or the speaker), after one warm-up turn per mode that is not counted. Every
`turn` record the loop writes becomes a `TurnMetrics`; the turns of each mode are summarised as p50/p90/max
(`Aggregate`). `--mode both` interleaves the streaming and the naive cascade utterance by utterance, so slow
drifts of the machine (heat, other load) hit both alike. Results go to stdout, progress to stderr.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import math
import shutil
import sys
import tempfile
import time
from bisect import bisect_right
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from voiceos.audio import read_wav, write_wav
from voiceos.audio_in import WavSource, WavTurn
from voiceos.audio_out import Speaker, VirtualSpeaker
from voiceos.config import SAMPLE_RATE, Config
from voiceos.errors import AudioInputError, ConfigError, VoiceosError
from voiceos.session import Engines, Session, load_engines, machine, model_info, versions
from voiceos.stt import word_error_rate
from voiceos.tts import SpeechSynthesizer

log = logging.getLogger(__name__)

MODES = ("streaming", "naive")
SCHEMA = "voiceos-bench/1"
REGRESSION_EXIT_CODE = 1
TRANSCRIPTS = "transcripts.tsv"
CORPUS_PAD_S = 0.3  # silence around each phrase of the default corpus
DEFAULT_PHRASES = (  # the built-in corpus: short things a person might say, each heard exactly by tiny.en
    ("01-hello.wav", "Hi Samantha, I just got back from a long walk."),
    ("02-morning.wav", "How are you feeling this morning?"),
    ("03-sister.wav", "My sister is moving to a new city next month."),
    ("04-music.wav", "What kind of music do you like?"),
    ("05-beach.wav", "I think I will go to the beach this weekend."),
)
# The waterfall: (label, key of the turn record's trace_ms), every time measured from the end of speech.
STAGES = (
    ("end of turn", "turn_decided"),
    ("STT done", "stt_done"),
    ("first token", "first_token"),
    ("first clause", "first_clause"),
    ("first audio", "first_audio_ready"),
    ("voice-to-voice", "first_sample_out"),
)
STAGE_COLOURS = ("#9e9e9e", "#3b6ea8", "#6aa84f", "#e6a23c", "#a64d79", "#c0392b")


@dataclass
class BenchOptions:
    """What `voiceos bench` was asked to do (filled by the CLI)."""

    wavs: list[Path] = field(default_factory=list)
    corpus: Path | None = None  # a folder of WAV files, with transcripts.tsv (optional)
    runs: int = 1  # how many times the corpus is repeated
    mode: str = "streaming"  # streaming | naive | both
    conversation: bool = False  # one conversation per run and mode, instead of one per utterance
    play: bool = False  # replies on the default output device instead of a silent real-time sink
    json_path: Path | None = None
    csv_path: Path | None = None
    plot_path: Path | None = None
    compare: Path | None = None  # an earlier --json result


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
    MetricSpec("used_fraction", "pause CPU used", "", 3, True, 0.05),
    MetricSpec("cpu_s", "CPU per turn", "s", 2, False, 0.1),
    MetricSpec("peak_rss_mb", "peak RSS", "MB", 0, False, 20.0),
)
METRIC_BY_KEY = {m.key: m for m in METRICS}
NOISE_RULE = ("a regression is flagged when the new p50 is worse than the old p50 by more than "
              "max(10% of the old p50, 2 × (old p90 − old p50), a floor: 20 ms for times, 0.02 for the real-time "
              "factor, 1 tok/s, 0.05 for WER and pause use, 0.1 CPU-s, 20 MB)")


@dataclass(frozen=True)
class BenchItem:
    """One utterance of the corpus: 16 kHz mono audio and, when known, what is said in it."""

    name: str
    path: Path
    samples: np.ndarray
    reference: str | None = None

    @property
    def seconds(self) -> float:
        return len(self.samples) / SAMPLE_RATE


@dataclass(frozen=True)
class Step:
    """One `converse` call: utterances of one run in one mode (one, or all with --conversation)."""

    run: int
    mode: str
    items: tuple[BenchItem, ...]
    order: int  # 0 when this mode went first on these utterances, 1 when second


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


# --- the corpus -----------------------------------------------------------------------------------------


def read_transcripts(folder: Path) -> dict[str, str]:
    """`file<TAB>text` lines of folder/transcripts.tsv, keyed by file name (empty when there is none)."""
    path = folder / TRANSCRIPTS
    if not path.is_file():
        return {}
    out: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if "\t" in line and not line.startswith("#"):
            name, text = line.split("\t", 1)
            out[Path(name.strip()).name] = text.strip()
    return out


def default_corpus_dir() -> Path:
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("voiceos")) / "bench-corpus"


def ensure_default_corpus(config: Config, folder: Path | None = None) -> Path:
    """The built-in corpus, spoken by espeak-ng once and reused; remade when its phrases change."""
    folder = folder or default_corpus_dir()
    wanted = dict(DEFAULT_PHRASES)
    if read_transcripts(folder) == wanted and all((folder / name).is_file() for name in wanted):
        return folder
    print(f"voiceos: making the built-in benchmark corpus in {folder}", file=sys.stderr)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".bench-corpus-", dir=folder.parent))
    synth = SpeechSynthesizer(config.tts)
    try:
        pad = np.zeros(int(CORPUS_PAD_S * SAMPLE_RATE), np.float32)
        for name, text in DEFAULT_PHRASES:
            write_wav(tmp / name, np.concatenate([pad, speak(synth, text), pad]))
        (tmp / TRANSCRIPTS).write_text("".join(f"{n}\t{t}\n" for n, t in DEFAULT_PHRASES), encoding="utf-8")
        if folder.exists():
            shutil.rmtree(folder)
        tmp.replace(folder)
    finally:
        synth.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def speak(synth: SpeechSynthesizer, text: str, attempts: int = 3) -> np.ndarray:
    """espeak-ng through pyttsx3 now and then hands back an empty file: try again rather than keep silence."""
    for _ in range(attempts):
        samples = synth.synthesize(text).samples
        if len(samples) >= 0.5 * SAMPLE_RATE:
            return samples
        log.warning("espeak-ng returned %.2f s of audio for %r; trying again", len(samples) / SAMPLE_RATE, text)
    raise VoiceosError(f"espeak-ng gave no audio for {text!r} ({attempts} attempts); see `voiceos doctor`")


def corpus_files(options: BenchOptions, config: Config) -> list[Path]:
    if options.wavs:
        return list(options.wavs)
    folder = options.corpus or ensure_default_corpus(config)
    if not folder.is_dir():
        raise AudioInputError(f"{folder}: no such corpus folder")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".wav" and p.is_file())
    if not files:
        raise AudioInputError(f"{folder}: no .wav files in the corpus folder")
    return files


def load_items(files: Sequence[Path]) -> list[BenchItem]:
    """Read every WAV (bad files fail here, before the models load) with its transcript if one is beside it."""
    transcripts: dict[Path, dict[str, str]] = {}
    items = []
    for path in files:
        samples, _ = read_wav(path)
        refs = transcripts.setdefault(path.parent, read_transcripts(path.parent))
        items.append(BenchItem(path.stem, path, samples, refs.get(path.name)))
    return items


# --- running --------------------------------------------------------------------------------------------


def modes_for(options: BenchOptions, config: Config) -> tuple[str, ...]:
    if options.mode == "both":
        return MODES
    if options.mode not in MODES:
        raise ConfigError(f"unknown bench mode {options.mode!r} (streaming, naive or both)")
    if options.mode == "streaming" and not config.session.speculate:
        return ("naive",)  # `--naive` asks for the plain cascade
    return (options.mode,)


def plan(items: Sequence[BenchItem], runs: int, modes: Sequence[str], conversation: bool) -> list[Step]:
    """Every converse call in order. With two modes, which goes first alternates per utterance and per run."""
    steps = []
    groups = [tuple(items)] if conversation else [(item,) for item in items]
    for run in range(1, runs + 1):
        for g, group in enumerate(groups):
            ordered = list(modes) if (run - 1 + g) % 2 == 0 else list(reversed(modes))
            steps += [Step(run, mode, group, order) for order, mode in enumerate(ordered)]
    return steps


def peak_rss_mb() -> float | None:
    try:
        import resource
    except ImportError:  # not on this platform (Windows)
        return None
    peak = float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    return round(peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0, 1)


def run_step(session: Session, step: Step, play: bool) -> list[TurnMetrics]:
    """Feed the step's utterances in real time through `Session.converse`; measure every turn."""
    source = WavSource(session.clock, [WavTurn(item.name, item.samples) for item in step.items], realtime=True)
    if play:
        speaker: Speaker | VirtualSpeaker = Speaker(session.clock, session.config.audio.output_device).start()
    else:
        speaker = VirtualSpeaker(session.clock).start()  # a fresh one per call: reply ids restart at 1
    cpu0 = time.process_time()
    try:
        result = session.converse(source, speaker, mode=step.mode)
    finally:
        speaker.close()
    cpu_s = time.process_time() - cpu0
    return step_metrics(step, result.records, source.turn_started_at, cpu_s, peak_rss_mb())


def step_metrics(step: Step, records: list[dict[str, Any]], starts: list[float], cpu_s: float,
                 rss_mb: float | None) -> list[TurnMetrics]:
    """Turn records → TurnMetrics, each assigned to the utterance being fed when its speech began."""
    by_item: list[list[dict[str, Any]]] = [[] for _ in step.items]
    for record in records:
        k = bisect_right(starts, record["user"]["speech_start"] + 0.05) - 1
        by_item[min(max(k, 0), len(step.items) - 1)].append(record)
    turns: list[TurnMetrics] = []
    for item, recs in zip(step.items, by_item):
        if not recs:
            turns.append(TurnMetrics(step.run, step.mode, item.name, step.order, answered=False,
                                     reference=item.reference))
            continue
        wer = None
        if item.reference is not None:
            wer = round(word_error_rate(item.reference, " ".join(r["user"]["text"] for r in recs)), 4)
        for part, record in enumerate(recs):
            turns.append(turn_metrics(step, item, record, part=part, wer=wer if part == 0 else None))
    for turn in turns:
        turn.cpu_s = round(cpu_s / len(turns), 3)
        turn.peak_rss_mb = rss_mb
    return turns


def turn_metrics(step: Step, item: BenchItem, record: dict[str, Any], *, part: int,
                 wer: float | None) -> TurnMetrics:
    tm = record.get("timings_ms", {})
    return TurnMetrics(
        step.run, step.mode, item.name, step.order, answered=True, part=part,
        heard=record["user"]["text"], reference=item.reference, reply=record["reply"]["text"],
        interrupted=bool(record["reply"]["interrupted"]),
        endpoint_ms=tm.get("endpoint"), stt_ms=tm.get("stt"), stt_rtf=tm.get("stt_rtf"),
        llm_first_token_ms=tm.get("llm_first_token"), first_clause_ms=tm.get("first_clause"),
        tts_first_audio_ms=tm.get("tts_first_audio"), voice_to_voice_ms=tm.get("voice_to_voice"),
        decode_tps=positive(record.get("llm", {}).get("decode_tps")), wer=wer,
        used_fraction=record.get("pauses", {}).get("used_fraction"),
        trace_ms=dict(record.get("trace_ms", {})),
    )


def positive(value: Any) -> float | None:
    """A rate of 0 means "not measured" (e.g. a reply of one token), not "infinitely slow"."""
    return float(value) if isinstance(value, int | float) and value > 0 else None


@contextmanager
def progress_bar(total: int) -> Iterator[Callable[[str, bool], None]]:
    """A rich progress bar on stderr; yields `update(description, advance)`."""
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        console=Console(stderr=True), redirect_stdout=False)
    task = progress.add_task("bench", total=total)

    def update(description: str, advance: bool) -> None:
        progress.update(task, description=description, advance=1 if advance else 0)

    with progress:
        yield update


def run_steps(session: Session, steps: Sequence[Step], warmups: Sequence[Step], play: bool) -> list[TurnMetrics]:
    turns: list[TurnMetrics] = []
    runs = max((s.run for s in steps), default=0)
    with progress_bar(len(warmups) + len(steps)) as update:
        for step in warmups:
            update(f"warm-up ({step.mode})", False)
            run_step(session, step, play)
            update(f"warm-up ({step.mode})", True)
        for step in steps:
            what = step.items[0].name if len(step.items) == 1 else f"{len(step.items)} utterances"
            update(f"run {step.run}/{runs} {step.mode}: {what}", False)
            turns += run_step(session, step, play)
            update(f"run {step.run}/{runs} {step.mode}: {what}", True)
    return turns


# --- statistics -----------------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default); None for no values."""
    ordered = sorted(values)
    if not ordered:
        return None
    k = (len(ordered) - 1) * q / 100.0
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


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
    if not all(mode in aggs for mode in MODES):
        return {}
    out: dict[str, float | None] = {}
    for m in METRICS:
        s, n = aggs["streaming"][m.key].p50, aggs["naive"][m.key].p50
        out[m.key] = round(n / s, 3) if s and n is not None else None
    return out


# --- output ---------------------------------------------------------------------------------------------


def fmt(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def results_console() -> Console:
    console = Console()
    if not console.is_terminal:  # piped into a file: do not fold the tables into 80 columns
        console = Console(width=160)
    return console


def turns_table(turns: Sequence[TurnMetrics]) -> Table:
    table = Table(title="turns (times in ms from the end of speech)")
    for col in ("run", "mode", "utterance", "heard", "end", "stt", "rtf", "1st tok", "clause", "audio", "v2v",
                "tok/s", "WER", "used", "CPU s"):
        table.add_column(col, overflow="fold", justify="left" if col in ("mode", "utterance", "heard") else "right")
    for t in turns:
        name = escape(t.utterance + (f" ({t.part + 1})" if t.part else "") + (" [cut]" if t.interrupted else ""))
        if not t.answered:
            table.add_row(str(t.run), t.mode, name, "[red]not answered[/]", *["-"] * 11)
            continue
        table.add_row(
            str(t.run), t.mode, name, escape(t.heard[:32]), fmt(t.endpoint_ms), fmt(t.stt_ms), fmt(t.stt_rtf, 3),
            fmt(t.llm_first_token_ms), fmt(t.first_clause_ms), fmt(t.tts_first_audio_ms), fmt(t.voice_to_voice_ms),
            fmt(t.decode_tps, 1), fmt(t.wer, 2), fmt(t.used_fraction, 2), fmt(t.cpu_s, 2),
        )
    return table


def aggregates_table(aggs: dict[str, dict[str, Aggregate]], rat: dict[str, float | None]) -> Table:
    counts = ", ".join(f"{mode}: {next(iter(a.values())).n if a else 0} turn(s)" for mode, a in aggs.items())
    table = Table(title=f"aggregates ({counts})")
    table.add_column("metric")
    for mode in aggs:
        for q in ("p50", "p90", "max"):
            table.add_column(f"{mode} {q}", justify="right")
    if rat:
        table.add_column("naive/streaming (p50)", justify="right")
    for m in METRICS:
        row = [f"{m.key} ({m.unit})" if m.unit else m.key]
        for mode_aggs in aggs.values():
            a = mode_aggs[m.key]
            row += [fmt(a.p50, m.digits), fmt(a.p90, m.digits), fmt(a.max, m.digits)]
        if rat:
            r = rat.get(m.key)
            row.append(f"{r:.2f}×" if r is not None else "-")
        table.add_row(*row)
    return table


def library_versions() -> dict[str, str]:
    out = versions()
    for dist in ("rich", "matplotlib", "psutil", "platformdirs"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def bench_document(options: BenchOptions, config: Config, engines: Engines, items: Sequence[BenchItem],
                   turns: Sequence[TurnMetrics], aggs: dict[str, dict[str, Aggregate]],
                   rat: dict[str, float | None], log_path: Path) -> dict[str, Any]:
    """Everything --json writes: options, corpus, machine, models, every turn, aggregates and ratios."""
    return {
        "schema": SCHEMA,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "options": {"mode": options.mode, "runs": options.runs, "conversation": options.conversation,
                    "play": options.play, "output": "speaker" if options.play else "virtual real-time sink"},
        "corpus": [{"name": i.name, "path": str(i.path), "seconds": round(i.seconds, 3), "reference": i.reference}
                   for i in items],
        "machine": machine() | {"threads": {"stt": config.stt.threads, "llm": config.llm.threads}},
        "versions": library_versions(),
        "models": model_info(engines),
        "rates": dataclasses.asdict(engines.rates) if engines.rates else None,
        "session_log": str(log_path),
        "metrics": {m.key: {"label": m.label, "unit": m.unit, "higher_is_better": m.higher_is_better}
                    for m in METRICS},
        "turns": [dataclasses.asdict(t) for t in turns],
        "aggregates": {mode: {k: dataclasses.asdict(a) for k, a in ma.items()} for mode, ma in aggs.items()},
        "ratios": rat,
    }


def write_json(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def write_csv(path: Path, turns: Sequence[TurnMetrics]) -> None:
    """One row per turn; the stage trace flattened into trace_<stage>_ms columns."""
    fields = [f.name for f in dataclasses.fields(TurnMetrics) if f.name != "trace_ms"]
    trace_keys = list(dict.fromkeys(k for t in turns for k in t.trace_ms))
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields + [f"trace_{k}_ms" for k in trace_keys])
        writer.writeheader()
        for t in turns:
            row = {k: v for k, v in dataclasses.asdict(t).items() if k != "trace_ms"}
            row.update({f"trace_{k}_ms": t.trace_ms.get(k) for k in trace_keys})
            writer.writerow(row)


def turn_label(turn: TurnMetrics) -> str:
    return f"run {turn.run} {turn.utterance}" + (f" ({turn.part + 1})" if turn.part else "")


def plot_waterfall(path: Path, turns: Sequence[TurnMetrics]) -> Path:
    """Per turn, one bar per stage from the end of speech to when the stage was reached; modes side by side.

    Rows are shared between the modes, so the same utterance of the same run sits at the same height."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    answered = [t for t in turns if t.answered]
    modes = list(dict.fromkeys(t.mode for t in answered)) or ["streaming"]
    rows = list(dict.fromkeys(turn_label(t) for t in answered)) or ["(no answered turn)"]
    ncol = len(STAGES) if len(modes) > 1 else 3
    legend_in = 0.3 * math.ceil(len(STAGES) / ncol)  # inches of legend above the plots
    fig, axes = plt.subplots(1, len(modes), figsize=(max(8.0, 6.5 * len(modes)), 1.6 + legend_in + 0.62 * len(rows)),
                             sharex=True, sharey=True, squeeze=False)
    for ax, mode in zip(axes[0], modes):
        draw_stages(ax, [t for t in answered if t.mode == mode], rows)
        ax.set_title(f"{mode}: stages from the end of speech", fontsize=10)
    axes[0][0].set_yticks(range(len(rows)))
    axes[0][0].set_yticklabels(rows, fontsize=8)
    axes[0][0].set_ylim(len(rows) - 0.5, -0.5)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=ncol, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 1 - (legend_in + 0.1) / fig.get_figheight()))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def draw_stages(ax: Any, turns: Sequence[TurnMetrics], rows: list[str]) -> None:
    """One panel of the waterfall: a group of thin bars per turn, on the row named like the turn."""
    height = 0.8 / len(STAGES)
    labelled: set[str] = set()
    for turn in turns:
        i = rows.index(turn_label(turn))
        for j, (label, key) in enumerate(STAGES):
            v = turn.trace_ms.get(key)
            if v is None:
                continue
            y = i - 0.4 + (j + 0.5) * height
            ax.barh(y, v, height=height * 0.9, color=STAGE_COLOURS[j], label=None if label in labelled else label)
            labelled.add(label)
        ends = [v for _, key in STAGES if (v := turn.trace_ms.get(key)) is not None]
        v2v = turn.trace_ms.get("first_sample_out")
        note = (f" {v2v:.0f} ms" if v2v is not None else "") + (" (talked over, cut)" if turn.interrupted else "")
        ax.text(max([*ends, 0.0]), i + 0.4 - 0.5 * height, note, va="center", fontsize=7,
                color="#c0392b" if turn.interrupted else "black")
    ax.axvline(0, color="black", lw=0.8)
    ax.margins(x=0.1)  # room for the voice-to-voice label
    ax.grid(axis="x", ls=":", alpha=0.6)
    ax.set_xlabel("ms after the end of the user's speech")


# --- comparison with an earlier run ---------------------------------------------------------------------


@dataclass
class Delta:
    mode: str
    key: str
    old_p50: float
    new_p50: float
    allowed: float  # how much worse the p50 may get before it counts (run-to-run noise)
    regression: bool

    @property
    def change(self) -> float:
        return self.new_p50 - self.old_p50


def load_baseline(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise VoiceosError(f"{path}: no such file to compare with") from exc
    except (OSError, ValueError) as exc:
        raise VoiceosError(f"{path}: not a voiceos bench JSON file ({exc})") from exc
    if not isinstance(document, dict) or not isinstance(document.get("aggregates"), dict):
        raise VoiceosError(f"{path}: not a voiceos bench JSON file (no aggregates)")
    return document


def noise_allowance(spec: MetricSpec, old: dict[str, Any]) -> float:
    p50, p90 = float(old["p50"]), old.get("p90")
    spread = abs(float(p90) - p50) if p90 is not None else 0.0
    return max(0.10 * abs(p50), 2.0 * spread, spec.floor)


def compare(old: dict[str, Any], new: dict[str, dict[str, Aggregate]]) -> list[Delta]:
    """Deltas of every p50 the two runs share, each flagged when it got worse by more than the noise."""
    deltas = []
    for mode, metrics in new.items():
        old_mode = old.get("aggregates", {}).get(mode)
        if not isinstance(old_mode, dict):
            continue
        for spec in METRICS:
            o, n = old_mode.get(spec.key), metrics.get(spec.key)
            if not isinstance(o, dict) or o.get("p50") is None or n is None or n.p50 is None:
                continue
            allowed = noise_allowance(spec, o)
            worse = (float(o["p50"]) - n.p50) if spec.higher_is_better else (n.p50 - float(o["p50"]))
            deltas.append(Delta(mode, spec.key, float(o["p50"]), n.p50, round(allowed, 4), worse > allowed))
    return deltas


def print_compare(console: Console, path: Path, old: dict[str, Any], deltas: Sequence[Delta],
                  corpus: Sequence[str]) -> None:
    table = Table(title=f"compared with {path.name} ({old.get('created', '?')})")
    for col in ("mode", "metric", "old p50", "new p50", "change", "change %", "noise allowance", "verdict"):
        table.add_column(col, justify="left" if col in ("mode", "metric", "verdict") else "right")
    for d in deltas:
        spec = METRIC_BY_KEY[d.key]
        pct = f"{d.change / d.old_p50 * 100:+.0f}%" if d.old_p50 else "-"
        verdict = "[bold red]REGRESSION[/]" if d.regression else "ok"
        table.add_row(d.mode, d.key, fmt(d.old_p50, spec.digits), fmt(d.new_p50, spec.digits),
                      f"{d.change:+.{spec.digits}f}", pct, fmt(d.allowed, spec.digits), verdict)
    console.print(table)
    console.print(f"rule: {NOISE_RULE}; for tok/s and pause use, lower is worse.", soft_wrap=True)
    old_corpus = [c.get("name") for c in old.get("corpus", []) if isinstance(c, dict)]
    if old_corpus and old_corpus != list(corpus):
        console.print("note: the two runs used different corpora; compare with care", soft_wrap=True)
    old_machine = old.get("machine", {}).get("cpu")
    if old_machine and old_machine != machine().get("cpu"):
        console.print(f"note: the old result is from another CPU ({old_machine})", soft_wrap=True)
    for d in deltas:
        if d.regression:
            spec = METRIC_BY_KEY[d.key]
            console.print(f"regression: {d.mode} {d.key} p50 {fmt(d.new_p50, spec.digits)} {spec.unit} vs "
                          f"{fmt(d.old_p50, spec.digits)} {spec.unit} before (allowed change "
                          f"{fmt(d.allowed, spec.digits)} {spec.unit})", soft_wrap=True, highlight=False)
    flagged = sum(d.regression for d in deltas)
    if not deltas:
        console.print("nothing to compare: no mode and metric in common", soft_wrap=True)
    else:
        console.print(f"{flagged} regression(s) beyond run-to-run noise" if flagged else
                      "no regression beyond run-to-run noise", soft_wrap=True)


# --- the command ----------------------------------------------------------------------------------------


def status(message: str) -> None:
    print(f"voiceos: {message}", file=sys.stderr, flush=True)


def run_bench(config: Config, options: BenchOptions) -> int:
    """`voiceos bench`: returns 0, or REGRESSION_EXIT_CODE when --compare finds a regression."""
    if options.runs < 1:
        raise ConfigError("--runs must be at least 1")
    modes = modes_for(options, config)
    baseline = load_baseline(options.compare) if options.compare else None
    items = load_items(corpus_files(options, config))  # bad files fail before the models load
    steps = plan(items, options.runs, modes, options.conversation)
    shortest = min(items, key=lambda item: item.seconds)
    warmups = [Step(0, mode, (shortest,), 0) for mode in modes]  # not counted
    status(f"bench: {len(items)} utterance(s) × {options.runs} run(s), mode {' + '.join(modes)}"
           f"{', one conversation per run' if options.conversation else ''}; one warm-up turn per mode first")
    engines = load_engines(config, progress=status)
    session = Session(config, engines, log_dir=config.session.log_dir, kind="bench")
    reason = "done"
    try:
        turns = run_steps(session, steps, warmups, options.play)
        aggs = aggregates(turns)
        rat = ratios(aggs)
        session.log.write("bench_summary", aggregates={m: {k: dataclasses.asdict(a) for k, a in ma.items()}
                                                       for m, ma in aggs.items()}, ratios=rat)
    except KeyboardInterrupt:
        reason = "interrupted"
        raise
    except BaseException:
        reason = "error"
        raise
    finally:
        session.close(reason)
        status(f"session log: {session.log.path}")
    return report(options, config, engines, items, turns, aggs, rat, session.log.path, baseline)


def report(options: BenchOptions, config: Config, engines: Engines, items: Sequence[BenchItem],
           turns: Sequence[TurnMetrics], aggs: dict[str, dict[str, Aggregate]], rat: dict[str, float | None],
           log_path: Path, baseline: dict[str, Any] | None) -> int:
    """Tables on stdout, then the files asked for, then the comparison; returns the exit code."""
    console = results_console()
    console.print(turns_table(turns))
    console.print(aggregates_table(aggs, rat))
    if options.json_path:
        write_json(options.json_path, bench_document(options, config, engines, items, turns, aggs, rat, log_path))
        status(f"JSON: {options.json_path}")
    if options.csv_path:
        write_csv(options.csv_path, turns)
        status(f"CSV: {options.csv_path}")
    if options.plot_path:
        plot_waterfall(options.plot_path, turns)
        status(f"plot: {options.plot_path}")
    if baseline is None or options.compare is None:
        return 0
    deltas = compare(baseline, aggs)
    print_compare(console, options.compare, baseline, deltas, [item.name for item in items])
    return REGRESSION_EXIT_CODE if any(d.regression for d in deltas) else 0
