"""This machine's decode and prompt-reading rates for the loaded model and thread count, or a server's.

Measured once (a few seconds, with a progress line) and cached per model file + threads + CPU + llama.cpp
version (a served model: per URL + model id); `--recalibrate` measures again. Rates are per CPU-second
(process CPU time), so idle CPU-seconds from the pause ledger convert straight into tokens; a server's are
per wall second, timed through its API, since it works through the whole of every pause.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import platform
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from voiceos.interrupts import raise_if_interrupted
from voiceos.llm.engine import LocalLlm, in_passing_thread
from voiceos.llm.served import Completion, ServedLlm
from voiceos.measure.ledger import Rates

log = logging.getLogger(__name__)

READ_TOKENS = 192
DECODE_TOKENS = 48
_TEXT = (
    "It was a bright cold day in April, and the clocks were striking thirteen. The hallway smelt of boiled "
    "cabbage and old rag mats. At one end of it a coloured poster, too large for indoor display, had been "
    "tacked to the wall. It depicted simply an enormous face, more than a metre wide: the face of a man of "
    "about forty-five, with a heavy black moustache and ruggedly handsome features. Winston made for the "
    "stairs. It was no use trying the lift. Even at the best of times it was seldom working, and at present "
    "the electric current was cut off during daylight hours. It was part of the economy drive in preparation "
    "for Hate Week. The flat was seven flights up, and Winston, who was thirty-nine and had a varicose ulcer "
    "above his right ankle, went slowly, resting several times on the way. On each landing, opposite the "
    "lift-shaft, the poster with the enormous face gazed from the wall."
)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cache_key(model_path: Path, threads: int) -> str:
    import llama_cpp

    stat = model_path.stat()
    raw = f"{model_path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{threads}|{cpu_model()}|{llama_cpp.__version__}"
    return hashlib.sha256(raw.encode()).hexdigest()[:24]


def default_cache_path() -> Path:
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("voiceos")) / "calibration.json"


def measure(llm: LocalLlm, progress: Callable[[str], None] | None = None) -> Rates:
    """Time prompt reading and token decoding on this machine (leaves the KV cache empty)."""
    tokens = llm.tokenize(_TEXT)
    if len(tokens) < READ_TOKENS + DECODE_TOKENS:
        tokens = tokens * 2
    if progress:
        progress(f"calibrating {llm.model_name} with {llm.config.threads} threads: prompt reading…")
    llm.reset()
    llm.evaluate(tokens[:8])  # touch the weights first
    llm.reset()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for i in range(0, READ_TOKENS, 64):
        raise_if_interrupted()  # this runs on a passing thread, which Ctrl-C does not reach otherwise
        llm.evaluate(tokens[i : i + 64])
    read_wall, read_cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    if progress:
        progress(f"calibrating {llm.model_name}: decoding…")
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for i in range(DECODE_TOKENS):
        raise_if_interrupted()
        llm.evaluate([tokens[READ_TOKENS + i]])
    dec_wall, dec_cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    llm.reset()
    return Rates(
        decode_per_cpu_s=DECODE_TOKENS / max(dec_cpu, 1e-6),
        read_per_cpu_s=READ_TOKENS / max(read_cpu, 1e-6),
        decode_tps=DECODE_TOKENS / dec_wall,
        read_tps=READ_TOKENS / read_wall,
        threads=llm.config.threads,
        measured_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        model=llm.path.name,
        how=f"{READ_TOKENS} prompt tokens in batches of 64, then {DECODE_TOKENS} single-token steps; "
        "rates per CPU-second of this process",
    )


def served_cache_key(llm: ServedLlm) -> str:
    raw = f"served|{llm.url}|{llm.info.model}|{llm.info.kind}"
    return hashlib.sha256(raw.encode()).hexdigest()[:24]


def measure_served(llm: ServedLlm, progress: Callable[[str], None] | None = None) -> Rates:
    """Time prompt reading and decoding through the server: a prompt it cannot have cached (it opens with the
    time), read for one token; then the same prompt, cached, continued for `DECODE_TOKENS` tokens."""
    text = f"{dt.datetime.now(dt.timezone.utc).isoformat()}\n{_TEXT}"
    if progress:
        progress(f"calibrating {llm.model_name} at {llm.url}: prompt reading…")
    read, decode = Completion(), Completion()
    for _ in llm.complete(text, 1, read):
        raise_if_interrupted()
    if progress:
        progress(f"calibrating {llm.model_name}: decoding…")
    for _ in llm.complete(text, DECODE_TOKENS, decode):
        raise_if_interrupted()
    step_s = (decode.last_piece_s - decode.first_piece_s) / max(decode.pieces - 1, 1)
    decode_tps = 1.0 / step_s if decode.pieces > 1 and step_s > 0 else 0.0
    prompt_tokens = len(llm.tokenize(text))
    read_tps = prompt_tokens / max(read.first_piece_s - step_s, 1e-3)
    return Rates(
        decode_per_cpu_s=decode_tps, read_per_cpu_s=read_tps, decode_tps=decode_tps, read_tps=read_tps, threads=0,
        measured_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), model=llm.model_name,
        how=f"through the server's API: {prompt_tokens} new prompt tokens read for one token (less one decode "
        f"step), then {decode.pieces} tokens decoded on the cached prompt; rates per wall second",
        served_by=llm.url,
    )


def load_or_measure(llm: LocalLlm | ServedLlm, *, recalibrate: bool = False, cache_path: Path | None = None,
                    progress: Callable[[str], None] | None = None) -> tuple[Rates, bool]:
    """Cached rates for this model/threads/CPU (or server), or fresh ones. Returns (rates, measured_now)."""
    cache_path = cache_path or default_cache_path()
    key = served_cache_key(llm) if isinstance(llm, ServedLlm) else cache_key(llm.path, llm.config.threads)
    cache: dict[str, dict[str, Any]] = {}
    try:
        cache = json.loads(cache_path.read_text())
    except (OSError, ValueError):
        cache = {}
    if not recalibrate and key in cache:
        try:
            return Rates(**cache[key]), False
        except TypeError:
            pass
    if isinstance(llm, ServedLlm):
        rates = measure_served(llm, progress)
    else:
        local = llm
        rates = in_passing_thread(lambda: measure(local, progress))
    cache[key] = asdict(rates)
    cache_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(cache, indent=1))
    tmp.replace(cache_path)
    return rates, True
