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
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from voiceos.config import LlmConfig
from voiceos.errors import Cancelled, ModelError
from voiceos.offline import enforce_offline
from voiceos.prompt_format import PromptFormat, format_for

log = logging.getLogger(__name__)

# Tokens per prefill step. Reading is far cheaper per token in big batches (2 cores, the 0.5B default: about
# 33 ms for 1 token, 110 ms for 8, 170 ms for 16, 290 ms for 32; scripts/measure_llm_reading.py), but a step
# cannot be cancelled halfway: background reading (partial transcripts, warming) uses small steps so a
# reply never waits long behind it.
BACKGROUND_BATCH = 16
REPLY_BATCH = 64


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
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]


@dataclass
class PrefillResult:
    reused: int  # tokens found already evaluated
    read: int  # tokens evaluated now
    end_probability: float | None = None  # P(turn ends) at the probe position, when one was asked for


@dataclass
class GenerationStats:
    prompt_tokens: int = 0
    reused_tokens: int = 0  # prompt tokens found already evaluated
    read_tokens: int = 0  # prompt tokens evaluated now
    generated_tokens: int = 0
    first_token_ms: float = 0.0
    decode_s: float = 0.0

    @property
    def decode_tps(self) -> float:
        return (self.generated_tokens - 1) / self.decode_s if self.decode_s > 0 and self.generated_tokens > 1 else 0.0


class LocalLlm:
    def __init__(self, path: Path, config: LlmConfig) -> None:
        enforce_offline()
        self.config = config
        self.path = path
        try:
            from llama_cpp import Llama

            self._llm = Llama(
                model_path=str(path), n_ctx=config.n_ctx, n_threads=config.threads,
                n_threads_batch=config.threads, n_batch=128, seed=config.seed, verbose=False,
            )
        except Exception as exc:
            raise ModelError(f"cannot load the GGUF model {path}: {exc}") from exc
        self.metadata: dict[str, str] = dict(self._llm.metadata or {})
        self.fmt: PromptFormat = format_for(self.metadata)
        self.n_ctx = self._llm.n_ctx()
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
        import llama_cpp

        ptr = llama_cpp.llama_get_logits_ith(self._llm._ctx.ctx, batch_index)
        logits = np.ctypeslib.as_array(ptr, shape=(self._llm.n_vocab(),)).astype(np.float64)
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
        return self._llm.detokenize([token], special=False).decode("utf-8", errors="replace")

    def _cached_prefix(self, tokens: list[int]) -> int:
        ids = self._llm.input_ids[: self._llm.n_tokens]  # the tokens now in the KV cache (the rest is stale)
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
        """`Llama.eval` for one batch, with logits also kept at `extra_output` (a batch index)."""
        llm = self._llm
        n_past = llm.n_tokens
        llm._ctx.kv_cache_seq_rm(-1, n_past, -1)
        llm._batch.set_batch(batch=chunk, n_past=n_past, logits_all=False)
        if extra_output is not None:
            llm._batch.batch.logits[extra_output] = True
        llm._ctx.decode(llm._batch)
        llm.input_ids[n_past : n_past + len(chunk)] = chunk
        llm.n_tokens = n_past + len(chunk)
        llm._requires_eval = False
        self._live_logits_at = llm.n_tokens

    def stream(
        self, text: str, cancelled: Callable[[], bool] = lambda: False, *, seed: int | None = None,
        temperature: float | None = None, max_tokens: int | None = None, stats: GenerationStats | None = None,
        read_before: PrefillResult | None = None, avoid: list[str] | None = None,
        banned: tuple[str, ...] = (),
    ) -> Iterator[str]:
        """Yield reply text pieces for prompt `text`; stop at the format's stop text or `max_tokens`.
        `read_before`: a `prefill` of this prompt just done by the caller, counted in `stats`.
        `avoid`: sentences the reply must not copy (see `CopyBlocker`); `banned`: phrases it must not write
        (see `PhraseBlocker`)."""
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
            yield from self._decode(tokens, cancelled, stats, limit, temperature, started, avoid or [], banned)
        finally:
            if stats.first_token_ms:
                stats.decode_s = time.perf_counter() - started - stats.first_token_ms / 1000.0

    def _decode(self, tokens: list[int], cancelled: Callable[[], bool], stats: GenerationStats, limit: int,
                temperature: float | None, started: float, avoid: list[str],
                banned: tuple[str, ...]) -> Iterator[str]:
        from llama_cpp import LogitsProcessorList

        cfg = self.config
        blockers: list[CopyBlocker | PhraseBlocker] = []
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


class CopyBlocker:
    """A sampling step that keeps a reply from copying an earlier sentence word for word.

    Small models copy their own earlier replies from the history ("I'm glad you're enjoying this." turn after
    turn). The reply guard catches a copy once it is written and has the reply written again, which costs the
    time of both. This step stops it while it is written: once the sentence being written has followed one of
    the `avoid` sentences for `MIN_SHARED` tokens, that sentence's next token is not allowed, so the model says
    it another way ("I'm glad you" → "I'm glad to…")."""

    MIN_SHARED = 3

    def __init__(self, llm: LocalLlm, avoid: list[str], prompt_len: int) -> None:
        self._llm = llm
        self._prompt_len = prompt_len
        self._avoid = [ids for sentence in avoid for ids in _written_forms(llm, sentence)
                       if len(ids) > self.MIN_SHARED]
        self._seen = 0  # generated tokens looked at so far
        self._sentence_start = 0  # where the sentence being written starts (index into generated tokens)

    def __call__(self, input_ids: Any, logits: Any) -> Any:
        generated = _generated(input_ids, self._prompt_len)
        for i in range(self._seen, len(generated)):
            if any(c in self._llm.token_text(generated[i]) for c in ".!?\n"):
                self._sentence_start = i + 1
        self._seen = len(generated)
        current = generated[self._sentence_start :]
        k = len(current)
        if k >= self.MIN_SHARED:
            for ids in self._avoid:
                if len(ids) > k and ids[:k] == current:
                    logits[ids[k]] = -np.inf
        return logits


class PhraseBlocker:
    """A sampling step that keeps a reply from writing a banned phrase ("I'm sorry, but I", "how can I assist").

    Once the last tokens are a banned phrase but for its last token, that token is not allowed. It is the
    last resort of the reply guard, not its first: the model then routes around the phrase, sometimes into
    an odd near-miss, where writing the reply anew usually gives a better one. But three attempts that all
    open with a refusal would leave the user with no answer at all."""

    def __init__(self, llm: LocalLlm, banned: tuple[str, ...], prompt_len: int) -> None:
        self._prompt_len = prompt_len
        found: set[tuple[int, ...]] = set()
        for phrase in banned:
            natural = re.sub(r"\bai\b", "AI", re.sub(r"\bi\b", "I", phrase))  # the guard's list is lower-case
            for spelling in {phrase, natural, natural[:1].upper() + natural[1:]}:
                found.update(tuple(ids) for ids in _written_forms(llm, spelling) if ids)
        self._sequences = [list(ids) for ids in found]

    def __call__(self, input_ids: Any, logits: Any) -> Any:
        generated = _generated(input_ids, self._prompt_len)
        for ids in self._sequences:
            k = len(ids) - 1
            if k <= len(generated) and (k == 0 or generated[-k:] == ids[:-1]):
                logits[ids[-1]] = -np.inf
        return logits


def _written_forms(llm: LocalLlm, text: str) -> list[list[int]]:
    """The tokens of `text` as a reply may write it: opening the reply, or after earlier words."""
    return [llm.reply_tokens(text), llm.reply_tokens(" " + text)]


def _generated(input_ids: Any, prompt_len: int) -> list[int]:
    """The tokens written so far by this reply (llama-cpp-python hands a sampling step the whole context)."""
    return [int(t) for t in input_ids[prompt_len:]]


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
