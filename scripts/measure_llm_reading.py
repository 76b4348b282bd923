#!/usr/bin/env python3
"""What reading a prompt costs the default LLM on this machine: the numbers behind voiceos's batch sizes.

1. Cost of reading 32 prompt tokens in batches of 1, 2, 4, 8, 16 and 32 tokens (best of 3).
2. Cost of reading the last words of a turn plus the reply template (one batch, the way a reply starts),
   on its own and right after a Whisper pass over the same sentence (median of 4 each).

    .venv/bin/python scripts/measure_llm_reading.py
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from voiceos import registry  # noqa: E402
from voiceos.audio.wav import read_wav  # noqa: E402
from voiceos.config import Config  # noqa: E402
from voiceos.listen.transcriber import Transcriber  # noqa: E402
from voiceos.llm.engine import LocalLlm  # noqa: E402
from voiceos.llm.model import REPLY_BATCH  # noqa: E402
from voiceos.offline import enforce_offline  # noqa: E402
from voiceos.think.conversation import Conversation  # noqa: E402
from voiceos.think.persona import load_persona  # noqa: E402

SENTENCE = "The child almost hurt the small dog."
SPEECH = ROOT.parent / "shared" / "speech" / "spk1_snt1.wav"


def batch_costs(llm: LocalLlm) -> None:
    text = "The quick brown fox jumps over the lazy dog and then runs away into the forest, said the old man."
    tokens = llm.tokenize(text * 2)[:32]
    for size in (1, 2, 4, 8, 16, 32):
        best = float("inf")
        for _ in range(3):
            llm.reset()
            started = time.perf_counter()
            llm._read(tokens, lambda: False, batch=size)
            best = min(best, time.perf_counter() - started)
        print(f"  batches of {size:2d}: {best * 1000:5.0f} ms for 32 tokens ({32 / best:4.0f} tokens/s)")


def reply_read(llm: LocalLlm, stt: Transcriber | None) -> None:
    conv = Conversation(load_persona(), llm.fmt, llm.count_tokens, 1100)
    audio = read_wav(SPEECH)[0] if stt is not None else None
    prompt, words = conv.prompt(SENTENCE), conv.prompt(SENTENCE.rstrip("."), final=False)
    partial = conv.prompt(" ".join(SENTENCE.split()[:-2]), final=False)  # read while the user talked
    costs, read = [], 0
    for _ in range(4):
        llm.prefill(partial)
        if stt is not None and audio is not None:
            stt.transcribe(audio, word_timestamps=False)
        started = time.perf_counter()
        read = llm.prefill(prompt, probe=words, batch=REPLY_BATCH).read
        costs.append(time.perf_counter() - started)
    where = "right after a Whisper pass" if stt is not None else "on its own"
    print(f"  {read} tokens (last words + template) {where}: {statistics.median(costs) * 1000:.0f} ms")


def main() -> int:
    enforce_offline()
    config = Config()
    llm = LocalLlm(registry.resolve(None, "llm").path, config.llm)
    print(f"{llm.model_name}, {config.llm.threads} threads")
    print("1. reading 32 tokens")
    batch_costs(llm)
    print("2. the read that starts a reply")
    reply_read(llm, None)
    reply_read(llm, Transcriber(registry.resolve(None, "stt").path, config.stt) if SPEECH.is_file() else None)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
