#!/usr/bin/env python3
"""The LLM's time to first token on one conversation's prompt, with and without the sampling step that bars
stock openers (`llm/blockers.py` OpenerBlocker), in alternating runs: what that step costs a reply.

    .venv/bin/python scripts/measure_first_token.py [--runs 12]
"""

from __future__ import annotations

import argparse
import statistics
import time

from voiceos import registry
from voiceos.config import Config
from voiceos.llm.engine import LocalLlm
from voiceos.think.conversation import Conversation
from voiceos.think.persona import load_persona


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=12)
    args = parser.parse_args()
    llm = LocalLlm(registry.resolve(None, "llm").path, Config().llm)
    conversation = Conversation(load_persona(), llm.fmt, llm.count_tokens, 1100)
    for day in range(5):
        conversation.add(f"Tell me something about day number {day}.",
                         f"Day {day} was bright and a little windy, and I loved it.")
    prompt = conversation.prompt("And what about the sea today?")
    openings = [f"Day {day}" for day in range(5)] + ["Oh, that's", "Mm, I", "Yes, I"]
    times: dict[str, list[float]] = {"without": [], "with": []}
    for _ in range(args.runs):
        for kind in times:
            llm.prefill(conversation.prefix())  # the history read, as a warm session has it
            started = time.perf_counter()
            list(llm.stream(prompt, openings=openings if kind == "with" else None, max_tokens=1))
            times[kind].append((time.perf_counter() - started) * 1000)
    for kind, values in times.items():
        print(f"first token {kind} the opener step: median {statistics.median(values):.1f} ms "
              f"({', '.join(f'{v:.0f}' for v in values)})")


if __name__ == "__main__":
    main()
