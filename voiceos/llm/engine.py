"""The local LLM: llama-cpp-python on a GGUF file, with prompt-prefix reuse and cancellable streaming.

One `LocalLlm` is owned by one worker thread. `prefill(text)` evaluates a prompt (or the part of it not
already in the KV cache) in small batches that can be cancelled; `stream(text)` yields reply text as it is
decoded. llama.cpp keeps the longest matching prefix, so the persona and history stay evaluated across
turns and a partial transcript read while the user talks is not read again.

Only that thread may run llama.cpp for as long as it works: libgomp keeps a pool of OpenMP workers for
every thread that has run llama.cpp's OpenMP work, as long as that thread lives, and once it manages more
threads than there are cores it stops spinning at barriers. llama.cpp's two threads then sleep at every
step (about a hundred times in a short read, `tests/test_llm_reading.py`) and the kernel stacks them on
one core. One-off work from another thread (the session's first read, calibration) goes through
`in_passing_thread`, whose thread ends, pool and all, when the work is done.
"""

from __future__ import annotations

import codecs
import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import numpy as np

from voiceos.config import LlmConfig
from voiceos.errors import Cancelled, ConfigError, ModelError, VoiceosError
from voiceos.interrupts import interrupts_deferred, raise_if_interrupted
from voiceos.llm import llama_internals
from voiceos.llm.blockers import CopyBlocker, OpenerBlocker, PhraseBlocker
from voiceos.llm.model import BACKGROUND_BATCH, REPLY_BATCH, GenerationStats, PrefillResult
from voiceos.llm.prompt_format import FORMATS, PromptFormat, format_for
from voiceos.offline import enforce_offline

log = logging.getLogger(__name__)

N_BATCH = 128  # llama.cpp's largest batch: REPLY_BATCH fits in one
# llama-cpp-python's errors once the model file has loaded: the context (n_ctx tokens) could not be made
_CONTEXT_FAILURES = ("llama_context", "llama_batch")


T = TypeVar("T")


def in_passing_thread(work: Callable[[], T]) -> T:
    """Run `work` (llama.cpp work from a thread other than the LLM's owner) on a thread that ends with it,
    so that no second pool of OpenMP workers outlives it (see the module docstring)."""
    result: list[T] = []
    error: list[BaseException] = []

    def run() -> None:
        try:
            result.append(work())
        except BaseException as exc:  # re-raised in the caller's thread
            error.append(exc)

    thread = threading.Thread(target=run, name="llm-once")
    with interrupts_deferred():  # once started it must be waited for: a Ctrl-C here is raised after the join
        thread.start()
    try:
        thread.join()
    except KeyboardInterrupt:  # llama.cpp must not be torn down under a running thread: let the work end first
        with interrupts_deferred():
            thread.join()
        raise
    if error:
        raise error[0]
    raise_if_interrupted()  # a Ctrl-C that came while the thread started, and the work did not see
    return result[0]


class LocalLlm:
    """The embedded `LanguageModel`: llama-cpp-python on a GGUF file, owned by one worker thread."""

    probes_end = True  # `prefill` with a probe gives P(the turn ends there)

    def __init__(self, path: Path, config: LlmConfig) -> None:
        enforce_offline()
        self.config = config
        self.path = path
        try:
            self._llm = llama_internals.load_llama(
                path, n_ctx=config.n_ctx, n_threads=config.threads, n_threads_batch=config.threads,
                n_batch=N_BATCH, seed=config.seed, verbose=False,
            )
        except Exception as exc:
            raise _load_error(path, config, exc) from exc
        self.metadata: dict[str, str] = dict(self._llm.metadata or {})
        self.fmt: PromptFormat = (format_for(self.metadata) if config.prompt_format == "auto"
                                  else FORMATS[config.prompt_format])
        # llama.cpp may round the context up (to a multiple of 256), but llama-cpp-python sizes its token
        # buffer to the n_ctx asked for: that is all a prompt may fill
        self.n_ctx = min(config.n_ctx, self._llm.n_ctx())
        self._tokenized: dict[str, tuple[int, ...]] = {}
        self._live_logits_at = -1  # n_tokens when the last decode ended (its logits are the current ones)
        self._end_ids = self._single_tokens(("<|im_end|>", "<|endoftext|>", "<end_of_turn>", ".", "?", "!", "...",
                                             ".\n", "?\n", "!\n", "\n"))
        self._stop_ids = {self._llm.token_eos()}
        for stop in self.fmt.stops:
            ids = self._llm.tokenize(stop.encode(), add_bos=False, special=True)
            if len(ids) == 1:
                self._stop_ids.add(ids[0])
        log.info("LLM %s loaded (format %s, n_ctx %d)", path.name, self.fmt.name, self.n_ctx)

    def _single_tokens(self, texts: tuple[str, ...]) -> set[int]:
        ids = set()
        for text in texts:
            toks = self._llm.tokenize(text.encode(), add_bos=False, special=True)
            if len(toks) == 1:
                ids.add(toks[0])
        return ids

    def _end_probability(self, batch_index: int) -> float:
        """The model's probability that the text ends at this position of the last batch (a full stop, a
        question mark, the end of the turn): a small turn-end model for free, since the words are read
        anyway."""
        logits = llama_internals.batch_logits(self._llm, batch_index)
        probs = np.exp(logits - logits.max())
        probs /= probs.sum()
        return float(sum(probs[i] for i in self._end_ids))

    @property
    def model_name(self) -> str:
        return self.metadata.get("general.name", self.path.stem)

    def tokenize(self, text: str) -> list[int]:
        """The prompt `text` as tokens. A reply's prompt is tokenized to fit it and again to read it (a few
        ms each for a long history): the last few are kept."""
        tokens = self._tokenized.get(text)
        if tokens is None:
            tokens = tuple(self._llm.tokenize(text.encode("utf-8"), add_bos=True, special=True))
            self._tokenized[text] = tokens
            while len(self._tokenized) > 8:
                del self._tokenized[next(iter(self._tokenized))]
        return list(tokens)

    def count_tokens(self, text: str) -> int:
        return len(self.reply_tokens(text))

    def reply_tokens(self, text: str) -> list[int]:
        """`text` as the model would write it (no BOS, special tokens as plain text)."""
        return list(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def token_text(self, token: int) -> str:
        return str(self._llm.detokenize([token], special=False).decode("utf-8", errors="replace"))

    def evaluate(self, tokens: list[int]) -> None:
        """Evaluate `tokens` after what is in the cache, plainly (calibration times exactly this)."""
        self._llm.eval(tokens)
        self._live_logits_at = -1

    def _cached_prefix(self, tokens: list[int]) -> int:
        ids = llama_internals.cached_tokens(self._llm)
        n = 0
        for a, b in zip(ids, tokens):
            if a != b:
                break
            n += 1
        return n

    def prefill(self, text: str, cancelled: Callable[[], bool] = lambda: False, *,
                probe: str | None = None, batch: int = BACKGROUND_BATCH) -> PrefillResult:
        """Evaluate every token of `text` not yet in the KV cache, in cancellable batches.

        With `probe` (a prefix of `text`, e.g. the user's words before the reply template) the result also
        holds the LLM's P(the turn ends there), read from the same batch: asking it separately would cost
        another pass over the template tokens. Afterwards the last token's logits are live, so `stream(text)`
        samples its first token at once."""
        return self._read(self.tokenize(text), cancelled, probe=probe, batch=batch)

    def _read(self, tokens: list[int], cancelled: Callable[[], bool], *, probe: str | None = None,
              batch: int = BACKGROUND_BATCH) -> PrefillResult:
        if len(tokens) >= self.n_ctx:
            raise ModelError(f"prompt of {len(tokens)} tokens does not fit the context of {self.n_ctx}")
        probe_at = None
        if probe is not None:
            probe_tokens = self.tokenize(probe)
            if 0 < len(probe_tokens) <= len(tokens) and tokens[: len(probe_tokens)] == probe_tokens:
                probe_at = len(probe_tokens) - 1
        same = self._cached_prefix(tokens)
        if same == len(tokens) and self._live_logits_at != same:
            same -= 1  # all cached, but the logits are someone else's: read the last token again
        if probe_at is not None and probe_at < same:
            same = probe_at  # the probe position needs its logits: read from there
        self._llm.n_tokens = same  # forget whatever followed the common prefix
        result = PrefillResult(reused=same, read=len(tokens) - same)
        while self._llm.n_tokens < len(tokens):
            if cancelled():
                raise Cancelled()
            start = self._llm.n_tokens
            chunk = tokens[start : min(len(tokens), start + batch)]
            local_probe = probe_at - start if probe_at is not None and start <= probe_at < start + len(chunk) else None
            self._decode_batch(chunk, local_probe)
            if local_probe is not None:
                result.end_probability = self._end_probability(local_probe)
        return result

    def _decode_batch(self, chunk: list[int], extra_output: int | None) -> None:
        llama_internals.decode_batch(self._llm, chunk, extra_output)
        self._live_logits_at = self._llm.n_tokens

    def stream(
        self, text: str, cancelled: Callable[[], bool] = lambda: False, *, seed: int | None = None,
        temperature: float | None = None, max_tokens: int | None = None, stats: GenerationStats | None = None,
        read_before: PrefillResult | None = None, avoid: list[str] | None = None,
        banned: tuple[str, ...] = (), openings: list[str] | None = None,
    ) -> Iterator[str]:
        """Yield reply text pieces for prompt `text`; stop at the format's stop text or `max_tokens`.
        `read_before`: a `prefill` of this prompt just done by the caller, counted in `stats`.
        `avoid`: sentences the reply must not copy (see `CopyBlocker`); `banned`: phrases it must not write
        (see `PhraseBlocker`); `openings`: two-word openings it must not start with (see `OpenerBlocker`)."""
        cfg = self.config
        stats = stats if stats is not None else GenerationStats()
        started = time.perf_counter()
        tokens = self.tokenize(text)
        limit = max_tokens or cfg.max_reply_tokens
        if len(tokens) + limit >= self.n_ctx:
            raise ModelError(f"prompt of {len(tokens)} tokens + reply does not fit the context of {self.n_ctx}")
        stats.prompt_tokens = len(tokens)
        read = self._read(tokens, cancelled, batch=REPLY_BATCH)
        if read_before is not None:
            read = PrefillResult(reused=read_before.reused, read=read_before.read + read.read)
        stats.reused_tokens, stats.read_tokens = read.reused, read.read
        self._llm.set_seed(seed if seed is not None else cfg.seed)
        try:
            yield from self._decode(tokens, cancelled, stats, limit, temperature, started, avoid or [], banned,
                                    openings or [])
        finally:
            if stats.first_token_ms:
                stats.decode_s = time.perf_counter() - started - stats.first_token_ms / 1000.0

    def _decode(self, tokens: list[int], cancelled: Callable[[], bool], stats: GenerationStats, limit: int,
                temperature: float | None, started: float, avoid: list[str],
                banned: tuple[str, ...], openings: list[str]) -> Iterator[str]:
        from llama_cpp import LogitsProcessorList

        cfg = self.config
        blockers: list[CopyBlocker | PhraseBlocker | OpenerBlocker] = []
        if openings:
            blockers.append(OpenerBlocker(self, openings, len(tokens)))
        if avoid:
            blockers.append(CopyBlocker(self, avoid, len(tokens)))
        if banned:
            blockers.append(PhraseBlocker(self, banned, len(tokens)))
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        pending = ""
        self._live_logits_at = -1  # generating moves the logits on
        for token in self._llm.generate(
            tokens, top_k=cfg.top_k, top_p=cfg.top_p, temp=cfg.temperature if temperature is None else temperature,
            repeat_penalty=cfg.repeat_penalty, reset=True,
            logits_processor=LogitsProcessorList(blockers) if blockers else None,
        ):
            if stats.generated_tokens == 0:
                stats.first_token_ms = (time.perf_counter() - started) * 1000.0
            stats.generated_tokens += 1
            if token in self._stop_ids:
                break
            pending += decoder.decode(self._llm.detokenize([token], special=False))
            cut = _stop_position(pending, self.fmt.stops)
            if cut is not None:
                if pending[:cut]:
                    yield pending[:cut]
                break
            safe = _safe_prefix_len(pending, self.fmt.stops)
            if safe:
                yield pending[:safe]
                pending = pending[safe:]
            if stats.generated_tokens >= limit or cancelled():
                break
        else:
            pending += decoder.decode(b"", final=True)
        if pending and _stop_position(pending, self.fmt.stops) is None:
            yield pending

    def reset(self) -> None:
        self._llm.reset()
        self._live_logits_at = -1


def _load_error(path: Path, config: LlmConfig, exc: Exception) -> VoiceosError:
    """The user's error for a model that did not load: a context that could not be made is the config's n_ctx
    (too large for the memory, or nonsense), not a broken model file."""
    if isinstance(exc, MemoryError) or any(failure in str(exc) for failure in _CONTEXT_FAILURES):
        return ConfigError(f"[llm] n_ctx = {config.n_ctx}: llama.cpp cannot make a context of that many tokens "
                           f"for {path.name} ({str(exc) or 'out of memory'}); choose a smaller n_ctx")
    return ModelError(f"cannot load the GGUF model {path}: {exc}")


def _stop_position(text: str, stops: tuple[str, ...]) -> int | None:
    found = [text.find(s) for s in stops if s in text]
    return min(found) if found else None


def _safe_prefix_len(text: str, stops: tuple[str, ...]) -> int:
    """How much of `text` cannot be the start of a stop string (and so can be emitted)."""
    for k in range(min(len(text), max(len(s) for s in stops)), 0, -1):
        tail = text[-k:]
        if any(s.startswith(tail) for s in stops):
            return len(text) - k
    return len(text)
