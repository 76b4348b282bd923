"""The machine's LLM rates are measured once per model file and thread count, then read from a cache."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from voiceos import registry
from voiceos.config import LlmConfig
from voiceos.llm.engine import LocalLlm
from voiceos.measure.calibration import load_or_measure
from voiceos.measure.ledger import Rates

pytestmark = pytest.mark.models


@pytest.fixture(scope="module")
def gemma_path() -> Path:
    return registry.resolve("gemma-3-270m", "llm").path


@pytest.fixture(scope="module")
def gemma2(gemma_path: Path) -> Iterator[LocalLlm]:
    yield LocalLlm(gemma_path, LlmConfig(model=str(gemma_path), threads=2))


@pytest.fixture(scope="module")
def gemma1(gemma_path: Path) -> Iterator[LocalLlm]:
    yield LocalLlm(gemma_path, LlmConfig(model=str(gemma_path), threads=1))


def assert_sane(rates: Rates, llm: LocalLlm) -> None:
    assert rates.threads == llm.config.threads
    assert rates.model == llm.path.name
    for value in (rates.decode_per_cpu_s, rates.read_per_cpu_s, rates.decode_tps, rates.read_tps):
        assert value > 0
    assert rates.read_tps > rates.decode_tps  # reading a prompt in batches beats decoding token by token
    assert rates.measured_at


def test_second_call_reuses_the_cached_rates(gemma2: LocalLlm, tmp_path: Path) -> None:
    cache = tmp_path / "calibration.json"
    first, measured = load_or_measure(gemma2, cache_path=cache)
    assert measured is True
    assert_sane(first, gemma2)
    assert cache.is_file() and len(json.loads(cache.read_text())) == 1
    again, measured = load_or_measure(gemma2, cache_path=cache)
    assert measured is False
    assert again == first  # the very same numbers and timestamp, not a new measurement


def test_recalibrate_measures_again(gemma2: LocalLlm, tmp_path: Path) -> None:
    cache = tmp_path / "calibration.json"
    load_or_measure(gemma2, cache_path=cache)
    fresh, measured = load_or_measure(gemma2, cache_path=cache, recalibrate=True)
    assert measured is True
    assert_sane(fresh, gemma2)
    assert load_or_measure(gemma2, cache_path=cache) == (fresh, False)  # the new numbers replace the old


def test_a_different_thread_count_is_measured_separately(gemma1: LocalLlm, gemma2: LocalLlm, tmp_path: Path) -> None:
    cache = tmp_path / "calibration.json"
    two, _ = load_or_measure(gemma2, cache_path=cache)
    one, measured = load_or_measure(gemma1, cache_path=cache)
    assert measured is True
    assert one.threads == 1 and two.threads == 2
    assert len(json.loads(cache.read_text())) == 2
    # and both stay cached side by side
    assert load_or_measure(gemma1, cache_path=cache) == (one, False)
    assert load_or_measure(gemma2, cache_path=cache) == (two, False)


def test_a_different_model_is_measured_separately(gemma2: LocalLlm, engines: Any, tmp_path: Path) -> None:
    cache = tmp_path / "calibration.json"
    small, _ = load_or_measure(gemma2, cache_path=cache)
    default, measured = load_or_measure(engines.llm, cache_path=cache)  # the default model (Qwen 0.5B)
    assert measured is True
    assert default.model != small.model
    assert_sane(default, engines.llm)
    # the smaller model reads a prompt faster than the bigger one on the same machine and threads
    assert small.read_per_cpu_s > default.read_per_cpu_s
    assert load_or_measure(gemma2, cache_path=cache) == (small, False)


def test_a_broken_cache_file_is_measured_over(gemma2: LocalLlm, tmp_path: Path) -> None:
    cache = tmp_path / "calibration.json"
    cache.write_text("{ not json")
    rates, measured = load_or_measure(gemma2, cache_path=cache)
    assert measured is True
    assert_sane(rates, gemma2)
    assert load_or_measure(gemma2, cache_path=cache) == (rates, False)
