"""What the thinking worker needs from a language model, and what a read or a reply reports back.

`LanguageModel` is the one interface: `LocalLlm` (llama-cpp-python on a GGUF file) is the embedded engine;
`ServedLlm` the same on an OpenAI-compatible server (`llm/served.py`);
`voiceos.testing.ScriptedLlm` stands in where the logic around it is under test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

from voiceos.config import LlmConfig
from voiceos.llm.prompt_format import PromptFormat

# Tokens per prefill step. Reading is far cheaper per token in big batches (2 cores, the 0.5B default: about
# 33 ms for 1 token, 110 ms for 8, 170 ms for 16, 290 ms for 32; scripts/measure_llm_reading.py), but a step
# cannot be cancelled halfway: background reading (partial transcripts, warming) uses small steps so a
# reply never waits long behind it.
BACKGROUND_BATCH = 16
REPLY_BATCH = 64


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


class LanguageModel(Protocol):
    config: LlmConfig
    fmt: PromptFormat  # how a conversation becomes a prompt for this model
    n_ctx: int  # context size in tokens
    probes_end: bool  # `prefill(…, probe=…)` gives P(the turn ends); False on a server (no logits there)

    @property
    def model_name(self) -> str: ...

    def tokenize(self, text: str) -> list[int]:
        """The prompt `text` as tokens."""
        ...

    def count_tokens(self, text: str) -> int:
        """How many tokens `text` takes inside a prompt (no BOS)."""
        ...

    def prefill(self, text: str, cancelled: Callable[[], bool] = ..., *, probe: str | None = None,
                batch: int = BACKGROUND_BATCH) -> PrefillResult:
        """Read every token of `text` not yet in the cache; with `probe` (a prefix of `text`), also P(the
        turn ends there). Raises `Cancelled` when `cancelled()` turns true between batches."""
        ...

    def stream(self, text: str, cancelled: Callable[[], bool] = ..., *, seed: int | None = None,
               temperature: float | None = None, max_tokens: int | None = None,
               stats: GenerationStats | None = None, read_before: PrefillResult | None = None,
               avoid: list[str] | None = None, banned: tuple[str, ...] = (),
               openings: list[str] | None = None) -> Iterator[str]:
        """Reply text pieces for prompt `text`, as they are decoded."""
        ...
