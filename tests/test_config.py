"""Config and flags are checked when they are loaded: a value of the wrong type, out of its range or against
another value is one line naming the section, the key and the value (exit code 2), never a traceback later.

Model-free and fast, except one test that loads the default LLM to size its context against the persona."""

from __future__ import annotations

import json
import math
from dataclasses import fields
from pathlib import Path
from typing import Any, get_args, get_type_hints

import pytest
from conftest import run_voiceos

from voiceos.commands.cli import build_parser, make_config
from voiceos.config import ANYTHING, Allowed, Config, cpu_cores, load_config, validate
from voiceos.errors import ConfigError, ModelError
from voiceos.llm import llama_internals
from voiceos.llm.engine import LocalLlm
from voiceos.testing import ScriptedLlm
from voiceos.think.conversation import Conversation
from voiceos.think.persona import load_persona
from voiceos.think.prompt_fitting import PromptFitter, check_context, context_needed


def _all_fields() -> list[tuple[str, str, Any, Allowed]]:
    """(section, key, annotation, allowed values) of every field of every section: fields added later are
    covered without touching this file."""
    config = Config()
    out = []
    for section in fields(config):
        cls = type(getattr(config, section.name))
        hints = get_type_hints(cls)
        out += [(section.name, f.name, hints[f.name], f.metadata.get("allowed", ANYTHING)) for f in fields(cls)]
    return out


FIELDS = _all_fields()


def kinds(hint: Any) -> set[Any]:
    return set(get_args(hint)) or {hint}


def toml(value: Any) -> str:
    """`value` written as TOML."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return json.dumps(value)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def load_error(tmp_path: Path, text: str) -> str:
    """The message of the ConfigError that loading this TOML raises, checked to be one line."""
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(str(path)), message
    return message


def wrong_type(hint: Any) -> Any:
    """A TOML value no type of this annotation takes."""
    if kinds(hint) == {bool}:
        return "yes"
    if kinds(hint) & {str, Path}:
        return True  # neither a string nor a number
    return "abc"


def bad_values(hint: Any, spec: Allowed) -> list[Any]:
    values = [wrong_type(hint), -5, 10**12, [1, 2]]
    if int in kinds(hint):
        values += [1.5, True]
    if float in kinds(hint):
        values += [math.nan, math.inf, -1e300]
    if spec.choices:
        values.append("not-a-choice")
    return values


CASES = [pytest.param(section, key, value, id=f"{section}.{key}={toml(value)}")
         for section, key, hint, spec in FIELDS for value in bad_values(hint, spec)]


@pytest.mark.parametrize(("section", "key", "value"), CASES)
def test_a_bad_value_of_any_field_is_one_line_naming_it(tmp_path: Path, section: str, key: str, value: Any) -> None:
    message = load_error(tmp_path, f"[{section}]\n{key} = {toml(value)}\n")
    assert f"[{section}] {key} = {toml(value)}" in message, message
    assert "must be" in message, message


def test_every_number_is_bounded_and_every_plain_string_has_choices() -> None:
    for section, key, hint, spec in FIELDS:
        if kinds(hint) & {int, float}:
            assert spec.lo is not None and spec.hi is not None, f"[{section}] {key} has no bounds"
        if hint is str:
            assert spec.choices, f"[{section}] {key} takes any string"


def test_the_defaults_are_valid(tmp_path: Path) -> None:
    validate(Config())
    assert load_config(None) == Config()
    assert load_config(write(tmp_path, "")) == Config()


def test_values_at_the_edges_load(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, f"""
[audio]
input_device = 0
output_device = "pulse"
output_latency = "high"
on_device_loss = "stop"
[vad]
neg_threshold = 0.01
threshold = 0.98
echo_threshold = 0.98
min_speech_ms = 0
[endpoint]
complete_silence_ms = 10000
incomplete_silence_ms = 10000
max_silence_ms = 10000
max_turn_s = 30
[stt]
threads = {cpu_cores()}
compute_type = "float32"
language = "de"
min_window_s = 0.5
[llm]
threads = 1
n_ctx = 256
max_reply_tokens = 255
history_budget_tokens = 0
temperature = 0
top_p = 1
top_k = 0
seed = 0
[tts]
volume = 0
rate_wpm = 450
[session]
persona = "~/samantha.toml"
echo_tail_ms = 0
speculate = false
"""))
    assert config.llm.temperature == 0.0 and isinstance(config.llm.temperature, float)  # an integer is a number
    assert isinstance(config.endpoint.max_turn_s, float)
    assert config.session.persona == Path("~/samantha.toml").expanduser()
    assert config.audio.input_device == 0 and config.stt.threads == cpu_cores()


@pytest.mark.parametrize(("text", "blamed"), [
    ("[vad]\nneg_threshold = 0.5\n", "[vad] neg_threshold = 0.5: must be below [vad] threshold = 0.5"),
    ("[vad]\nthreshold = 0.9\n", "[vad] threshold = 0.9: must be at most [vad] echo_threshold = 0.85"),
    ("[endpoint]\ncomplete_silence_ms = 2000\n",
     "[endpoint] complete_silence_ms = 2000: must be at most [endpoint] incomplete_silence_ms = 1500"),
    ("[endpoint]\nmax_silence_ms = 1000\n",
     "[endpoint] incomplete_silence_ms = 1500: must be at most [endpoint] max_silence_ms = 1000"),
    ("[llm]\nmax_reply_tokens = 2048\n", "[llm] max_reply_tokens = 2048: must be below [llm] n_ctx = 2048"),
])
def test_values_that_contradict_each_other(tmp_path: Path, text: str, blamed: str) -> None:
    assert load_error(tmp_path, text).endswith(blamed)


def test_a_smaller_context_alone_is_fine(tmp_path: Path) -> None:
    """The history budget is a ceiling the prompt fitter also keeps under the context: n_ctx alone may shrink."""
    path = tmp_path / "c.toml"
    path.write_text("[llm]\nn_ctx = 1024\n")
    assert load_config(path).llm.n_ctx == 1024


def test_unknown_sections_keys_and_non_tables(tmp_path: Path) -> None:
    assert "unknown section [lm]" in load_error(tmp_path, "[lm]\nn_ctx = 512\n")
    assert "unknown key 'nctx'" in load_error(tmp_path, "[llm]\nnctx = 512\n")
    assert "llm = 5: must be a table" in load_error(tmp_path, "llm = 5\n")


@pytest.mark.parametrize(("flags", "message"), [
    (["demo", "--threads", "0"], "--threads 0: must be an integer from 1 to"),
    (["demo", "--threads", "999"], "--threads 999: must be an integer from 1 to"),
    (["bench", "--runs", "0"], "--runs 0: must be an integer of at least 1"),
])
def test_bad_numbers_in_flags(flags: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make_config(build_parser().parse_args(flags))


def test_flags_are_applied_and_checked() -> None:
    config = make_config(build_parser().parse_args(["chat", "--threads", "1", "--input-device", "2"]))
    assert config.stt.threads == config.llm.threads == 1 and config.audio.input_device == "2"


# --- the command line: one `voiceos: error:` line and exit code 2, before any model loads --------------------


@pytest.mark.parametrize(("toml_text", "flags", "expected"), [
    ('[endpoint]\ncomplete_silence_ms = "abc"\n', [],
     '[endpoint] complete_silence_ms = "abc": must be an integer from 1 to 10000 (ms)'),
    ("[endpoint]\ncomplete_silence_ms = -5\n", [],
     "[endpoint] complete_silence_ms = -5: must be an integer from 1 to 10000 (ms)"),
    ("[llm]\nn_ctx = -1\n", [], "[llm] n_ctx = -1: must be an integer from 256 to 131072 (tokens)"),
    ("", ["--threads", "999"], f"--threads 999: must be an integer from 1 to {cpu_cores()} (CPU cores)"),
    ("", ["--threads", "0"], f"--threads 0: must be an integer from 1 to {cpu_cores()} (CPU cores)"),
])
def test_the_cli_says_what_is_wrong_in_one_line(tmp_path: Path, toml_text: str, flags: list[str],
                                                  expected: str) -> None:
    bad = write(tmp_path, toml_text)
    proc = run_voiceos("demo", "--config", str(bad), "--no-play", "--fast", "--out", str(tmp_path / "out"),
                       *flags, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("voiceos: error: "), proc.stderr
    assert lines[0].endswith(expected), lines[0]


def test_bench_runs_at_least_once() -> None:
    proc = run_voiceos("bench", "--runs", "0", timeout=120)
    assert proc.returncode == 2 and proc.stderr.strip() == "voiceos: error: --runs 0: must be an integer of at least 1"


# --- the LLM's context ---------------------------------------------------------------------------------------


def test_a_context_llama_cannot_make_is_the_configs_n_ctx(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_context(path: Path, **_: Any) -> None:
        raise ValueError("Failed to create llama_context")

    monkeypatch.setattr(llama_internals, "load_llama", no_context)
    config = Config().llm
    config.n_ctx = 131_072
    with pytest.raises(ConfigError, match=r"^\[llm\] n_ctx = 131072: llama.cpp cannot make a context"):
        LocalLlm(Path("model.gguf"), config)


def test_a_model_that_does_not_load_is_still_a_model_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(path: Path, **_: Any) -> None:
        raise ValueError(f"Failed to load model from file: {path}")

    monkeypatch.setattr(llama_internals, "load_llama", broken)
    with pytest.raises(ModelError, match="cannot load the GGUF model"):
        LocalLlm(Path("model.gguf"), Config().llm)


def test_the_context_must_hold_the_persona_and_a_reply() -> None:
    persona = load_persona()
    llm = ScriptedLlm()
    needed = context_needed(llm, persona)
    assert needed > llm.config.max_reply_tokens
    llm.n_ctx = llm.config.n_ctx = needed - 1
    conversation = Conversation(persona, llm.fmt, llm.count_tokens, history_budget=100)
    with pytest.raises(ConfigError) as caught:
        PromptFitter(llm, conversation)
    assert str(caught.value).startswith(f"[llm] n_ctx = {needed - 1}: too small")
    assert f"needs at least {needed} tokens" in str(caught.value)
    llm.n_ctx = needed
    PromptFitter(llm, conversation)


@pytest.mark.models
def test_the_default_persona_does_not_fit_the_smallest_context() -> None:
    """With the real tokenizer: 256 tokens is a context llama.cpp makes, but too small for Samantha's prompt and a
    reply, which is a config error naming n_ctx rather than a broken model or a failure mid-conversation."""
    from voiceos import registry

    config = Config().llm
    config.n_ctx = 256
    llm = LocalLlm(registry.resolve(None, "llm").path, config)
    with pytest.raises(ConfigError, match=r"^\[llm\] n_ctx = 256: too small .* needs at least \d+ tokens$"):
        check_context(llm, load_persona())
