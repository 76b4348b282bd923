"""The few llama-cpp-python internals voiceos touches, in one place.

llama-cpp-python's `Llama` evaluates whole prompts and samples; voiceos needs a little more: logits kept at
one extra position of a batch (the end-of-turn probability, read on the way), the logits of a batch row, the
tokens now in the KV cache, and a way to keep llama.cpp off a CPU backend that crashes. Everything here
reaches past the public API, so a new llama-cpp-python release is checked against this file first.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


def cpu_has_amx() -> bool:
    """True on CPUs with Intel AMX (Sapphire Rapids and later)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    flags = next((line for line in text.splitlines() if line.startswith("flags")), "")
    return "amx_int8" in flags.split()


@contextlib.contextmanager
def without_extra_buffers() -> Iterator[None]:
    """Load a model with llama.cpp's extra weight buffers (repacking) switched off.

    On CPUs with AMX, a llama.cpp built for the machine repacks Q4_K weights into its AMX buffer, and the
    first batch of two or more tokens then crashes the process in `ggml_backend_amx_mul_mat` (llama.cpp
    issue 20824; seen here with both embedded models). Single-token decoding works, so the crash waits for
    the first prompt read. Plain CPU buffers read and decode correctly at full speed on such a machine."""
    import llama_cpp.llama_cpp as low_level  # `Llama.__init__` takes its defaults from here

    default = low_level.llama_model_default_params

    def params() -> Any:
        p = default()
        p.use_extra_bufts = False
        return p

    low_level.llama_model_default_params = params
    try:
        yield
    finally:
        low_level.llama_model_default_params = default


def load_llama(path: Path, **kwargs: Any) -> Any:
    """`llama_cpp.Llama(model_path=path, **kwargs)`, kept off the AMX buffers where they exist."""
    from llama_cpp import Llama

    guard = without_extra_buffers() if cpu_has_amx() else contextlib.nullcontext()
    with guard:
        return Llama(model_path=str(path), **kwargs)


def cached_tokens(llm: Any) -> list[int]:
    """The tokens now in the KV cache (`input_ids` beyond `n_tokens` is stale)."""
    return [int(t) for t in llm.input_ids[: llm.n_tokens]]


def decode_batch(llm: Any, chunk: list[int], extra_output: int | None) -> None:
    """`Llama.eval` for one batch of at most `n_batch` tokens, with logits also kept at `extra_output` (an index
    into the batch), so one position besides the last can be asked for its next-token probabilities."""
    n_past = llm.n_tokens
    llm._ctx.kv_cache_seq_rm(-1, n_past, -1)
    llm._batch.set_batch(batch=chunk, n_past=n_past, logits_all=False)
    if extra_output is not None:
        llm._batch.batch.logits[extra_output] = True
    llm._ctx.decode(llm._batch)
    llm.input_ids[n_past : n_past + len(chunk)] = chunk
    llm.n_tokens = n_past + len(chunk)
    llm._requires_eval = False


def batch_logits(llm: Any, batch_index: int) -> np.ndarray:
    """The logits of one output row of the last batch, as float64."""
    import llama_cpp

    ptr = llama_cpp.llama_get_logits_ith(llm._ctx.ctx, batch_index)
    return np.ctypeslib.as_array(ptr, shape=(llm.n_vocab(),)).astype(np.float64)
