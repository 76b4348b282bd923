"""`voiceos eval`: load the model and the conversations, run them, print the scorecard, write JSON, compare."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from voiceos.commands.console import results_console, status
from voiceos.commands.eval.output import (
    compare_table,
    load_baseline,
    misses_table,
    recall_table,
    scorecard_table,
    to_json,
    write_json,
)
from voiceos.commands.eval.runner import run_scripts
from voiceos.commands.eval.scoring import score
from voiceos.commands.eval.script import Script, default_conversations, load_scripts
from voiceos.config import Config
from voiceos.errors import ConfigError
from voiceos.interrupts import raise_if_interrupted
from voiceos.loop.session import connect_llm, keep_blas_to_one_thread, load_local_llm, machine, versions
from voiceos.offline import enforce_offline
from voiceos.think.persona import load_persona
from voiceos.think.prompt_fitting import check_context

REGRESSION_EXIT_CODE = 1
SPLITS = ("all", "tuned", "held-out")


@dataclass
class EvalOptions:
    conversations: Path | None = None  # None: the shipped conversations
    only: list[str] = field(default_factory=list)  # conversation ids (all when empty)
    split: str = "all"  # all | tuned | held-out
    memory: bool = True  # False: no memory across sessions (a restart forgets the person)
    json_path: Path | None = None
    compare: Path | None = None


def chosen(scripts: list[Script], options: EvalOptions) -> list[Script]:
    unknown = sorted(set(options.only) - {s.id for s in scripts})
    if unknown:
        where = options.conversations or default_conversations()
        raise ConfigError(f"no conversation named {', '.join(unknown)} (see {where})")
    picked = [s for s in scripts if (not options.only or s.id in options.only)
              and (options.split == "all" or s.held_out == (options.split == "held-out"))]
    if not picked:
        raise ConfigError("no conversation left to run")
    return picked


def run_eval(config: Config, options: EvalOptions) -> int:
    enforce_offline()
    keep_blas_to_one_thread()
    baseline = load_baseline(options.compare) if options.compare else None  # a bad file fails before the model loads
    scripts = chosen(load_scripts(options.conversations), options)
    persona = load_persona(config.session.persona)
    llm, model = connect_llm(config, status) or load_local_llm(config, status)  # --llm-url scores a served model
    raise_if_interrupted()
    check_context(llm, persona)
    status(f"{len(scripts)} conversation(s), {sum(len(s.turns) for s in scripts)} replies")
    started = time.perf_counter()
    replies = run_scripts(llm, persona, config, scripts, memory=options.memory, progress=status)
    card = score(scripts, replies)
    console = results_console()
    console.print(scorecard_table(card))
    console.print(recall_table(card))
    console.print(misses_table(card))
    doc = to_json(card, {
        "model": model["name"], "model_path": model.get("path") or model["url"], "prompt_format": llm.fmt.name,
        "persona": str(config.session.persona or "samantha (shipped)"), "persona_name": persona.name,
        "conversations": str(options.conversations or default_conversations()), "split": options.split,
        "memory": options.memory, "sampling": {"temperature": config.llm.temperature, "top_p": config.llm.top_p,
                                               "top_k": config.llm.top_k, "seed": config.llm.seed,
                                               "repeat_penalty": config.llm.repeat_penalty},
        "seconds": round(time.perf_counter() - started, 1), "machine": machine(), "versions": versions(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    })
    if options.json_path:
        write_json(options.json_path, doc)
        status(f"wrote {options.json_path}")
    if baseline is not None:
        table, worse = compare_table(baseline, doc)
        console.print(table)
        if worse:
            status("the scorecard got worse than the baseline")
            return REGRESSION_EXIT_CODE
    return 0
