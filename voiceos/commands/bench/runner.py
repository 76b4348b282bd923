"""`voiceos bench`: the latency benchmark, stage by stage, over a corpus of WAV files.

Each utterance is fed in real time through the very pipeline `chat` uses (`Session.converse` on a `WavSource`,
replies to a real-time null sink or the speaker), after one warm-up turn per mode that is not counted. Every
`TurnRecord` the loop writes becomes a `TurnMetrics`; the turns of each mode are summarised as p50/p90/max.
`--mode both` interleaves the streaming and the naive cascade utterance by utterance, so slow drifts of the
machine (heat, other load) hit both alike. Results go to stdout, progress to stderr.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from voiceos.audio.speaker import Speaker, VirtualSpeaker
from voiceos.audio.wav_source import WavSource, WavTurn
from voiceos.commands.bench.compare import REGRESSION_EXIT_CODE, compare, load_baseline, print_compare
from voiceos.commands.bench.corpus import BenchItem, corpus_files, load_items
from voiceos.commands.bench.metrics import (
    Aggregate,
    TurnMetrics,
    add_offline_wers,
    aggregates,
    offline_wers,
    ratios,
    step_metrics,
)
from voiceos.commands.bench.options import BenchOptions, Step, modes_for, plan
from voiceos.commands.bench.output import aggregates_table, bench_document, turns_table, write_csv, write_json
from voiceos.commands.bench.plot import plot_waterfall
from voiceos.commands.bench.progress import progress_bar
from voiceos.commands.console import results_console, session_closed, status
from voiceos.config import Config
from voiceos.errors import ConfigError
from voiceos.loop.session import Engines, Session, load_engines, load_local_llm
from voiceos.loop.voice_loop import LoopOptions
from voiceos.measure.calibration import load_or_measure
from voiceos.think.prompt_fitting import check_context


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
        result = session.converse(source, speaker, LoopOptions(step.mode))
    finally:
        speaker.close()
    cpu_s = time.process_time() - cpu0
    return step_metrics(step, result.records, source.turn_started_at, cpu_s, peak_rss_mb())


SERVED = " served"  # after a mode's name, for the turns answered by the LLM on the server (--llm-url)


def run_steps(sessions: dict[str, Session], steps: Sequence[Step], warmups: Sequence[Step],
              play: bool) -> list[TurnMetrics]:
    """Every step through each session (`sessions`: by the suffix of its turns' mode: "" for the embedded LLM,
    `SERVED` for the served one), the two one after the other on each utterance."""
    turns: list[TurnMetrics] = []
    runs = max((s.run for s in steps), default=0)
    with progress_bar(len(sessions) * (len(warmups) + len(steps))) as update:
        for step in warmups:
            for suffix, session in sessions.items():
                update(f"warm-up ({step.mode.value}{suffix})", False)
                run_step(session, step, play)
                update(f"warm-up ({step.mode.value}{suffix})", True)
        for step in steps:
            what = step.items[0].name if len(step.items) == 1 else f"{len(step.items)} utterances"
            for suffix, session in sessions.items():
                update(f"run {step.run}/{runs} {step.mode.value}{suffix}: {what}", False)
                measured = run_step(session, step, play)
                for turn in measured:
                    turn.mode += suffix
                turns += measured
                update(f"run {step.run}/{runs} {step.mode.value}{suffix}: {what}", True)
    return turns


def with_local_llm(engines: Engines, config: Config) -> Engines:
    """`engines` with the embedded LLM in place of the served one: the bench compares the two in one run."""
    llm, entry = load_local_llm(config, status)
    check_context(llm, engines.persona)
    rates, measured_now = load_or_measure(llm, recalibrate=config.session.recalibrate, progress=status)
    return dataclasses.replace(engines, llm=llm, models=engines.models | {"llm": entry, "llm_format": llm.fmt.name},
                               rates=rates, rates_measured_now=measured_now)


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
    status(f"bench: {len(items)} utterance(s) × {options.runs} run(s), mode {' + '.join(m.value for m in modes)}"
           f"{', one conversation per run' if options.conversation else ''}; one warm-up turn per mode first")
    engines = load_engines(config, progress=status)
    config.session.memory = False  # the corpus is not the user: nothing of theirs is read, nothing kept
    session = Session(config, engines, log_dir=config.session.log_dir, kind="bench")
    sessions = {"": session}
    with session_closed(session), contextlib.ExitStack() as served:
        if config.llm.url:  # the served LLM, and the embedded one beside it on the same utterances
            local = Session(config, with_local_llm(engines, config), log_dir=config.session.log_dir, kind="bench")
            served.enter_context(session_closed(local))
            sessions = {"": local, SERVED: session}
        turns = run_steps(sessions, steps, warmups, options.play)
        status("bench: a full-window pass over every utterance, for the offline word error rate")
        add_offline_wers(turns, offline_wers(engines.transcriber, items))
        aggs = aggregates(turns)
        rat = ratios(aggs)
        session.log.write("bench_summary", aggregates={m: {k: dataclasses.asdict(a) for k, a in ma.items()}
                                                       for m, ma in aggs.items()}, ratios=rat)
    if SERVED in sessions:  # the JSON names both LLMs
        local_engines = sessions[""].engines
        engines = dataclasses.replace(engines, models=engines.models | {"llm_embedded": local_engines.models["llm"]})
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
