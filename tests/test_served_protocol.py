"""`ServedLlm`'s protocol logic against a tiny fake OpenAI-compatible server (no model): what it sends, how it
accounts for the server's prompt cache, and how a cancelled, stalled, lost or absent server ends."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import run_voiceos

from voiceos.config import LlmConfig
from voiceos.errors import Cancelled, LlmServerError
from voiceos.llm import served
from voiceos.llm.model import GenerationStats
from voiceos.llm.served import ServedLlm
from voiceos.measure.ledger import Rates, thought_equivalents
from voiceos.testing import Lexicon, ScriptedLlm, run_conversation, silence
from voiceos.think.reply_writer import SERVER_LOST_APOLOGY


@dataclass
class Script:
    """What the fake server does with a completion request."""

    pieces: list[str] = field(default_factory=lambda: ["Hello", " there", ".", " Nice", " day", "."])
    piece_delay_s: float = 0.0
    die_after: int | None = None  # close the connection after this many pieces, without [DONE]
    stall: bool = False  # send the headers, then nothing
    bodies: list[dict[str, Any]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    disconnected: threading.Event = field(default_factory=threading.Event)


def _tokens(text: str) -> list[int]:
    return [ord(c) for c in text]  # one token per character: prefixes compare exactly


class _Handler(BaseHTTPRequestHandler):
    script: Script

    def log_message(self, *args: Any) -> None:
        pass

    def _json(self, value: Any) -> None:
        data = json.dumps(value).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self.script.paths.append(self.path)
        if self.path == "/v1/models":
            self._json({"object": "list", "data": [{"id": "fake-model", "object": "model"}]})
        else:
            self.send_error(404)

    def do_POST(self) -> None:
        self.script.paths.append(self.path)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path == "/extras/tokenize":
            self._json({"tokens": _tokens(body["input"])})
            return
        if self.path != "/v1/completions":
            self.send_error(404)
            return
        self.script.bodies.append(body)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        if self.script.stall:
            time.sleep(3)
            return
        pieces = self.script.pieces[: body["max_tokens"]]
        try:
            for i, piece in enumerate(pieces):
                if self.script.die_after is not None and i == self.script.die_after:
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                chunk = {"choices": [{"text": piece, "index": 0, "finish_reason": None}]}
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                self.wfile.flush()
                time.sleep(self.script.piece_delay_s)
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
        except OSError:
            self.script.disconnected.set()


@pytest.fixture
def fake() -> Iterator[tuple[str, Script]]:
    script = Script()
    handler = type("Handler", (_Handler,), {"script": script})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1", script
    server.shutdown()
    server.server_close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_reply_reads_only_what_the_server_has_not_read(fake: tuple[str, Script]) -> None:
    url, script = fake
    llm = ServedLlm(url, LlmConfig())
    assert (llm.info.model, llm.info.kind, llm.fmt.name) == ("fake-model", "llama-cpp-python", "chatml")
    before = llm.prefill("<|im_start|>system\nBe kind.<|im_end|>\n<|im_start|>user\nHello")
    assert before.reused == 0
    stats = GenerationStats()
    prompt = "<|im_start|>system\nBe kind.<|im_end|>\n<|im_start|>user\nHello there<|im_end|>\n<|im_start|>assistant\n"
    text = "".join(llm.stream(prompt, stats=stats))
    assert text == "Hello there. Nice day."
    new = len(" there<|im_end|>\n<|im_start|>assistant\n")
    assert (stats.prompt_tokens, stats.reused_tokens, stats.read_tokens) == (len(prompt), len(prompt) - new, new)
    assert stats.generated_tokens == 6 and stats.first_token_ms > 0
    warm, reply = script.bodies
    assert warm["max_tokens"] == 1 and warm["temperature"] == 0.0
    for body in (warm, reply):
        assert body["cache_prompt"] is True and body["id_slot"] == served.SLOT and body["stream"] is True
        assert body["stop"] == ["<|im_end|>", "<|im_start|>", "<|endoftext|>"]
    assert reply["prompt"] == prompt and reply["max_tokens"] == LlmConfig().max_reply_tokens
    assert set(script.paths) <= {"/v1/models", "/extras/tokenize", "/v1/completions"}


def test_a_cancelled_reply_drops_its_connection_and_the_next_one_works(fake: tuple[str, Script]) -> None:
    url, script = fake
    script.pieces = ["word "] * 40
    script.piece_delay_s = 0.05
    llm = ServedLlm(url, LlmConfig())
    got: list[str] = []
    for piece in llm.stream("Tell me a story", lambda: len(got) >= 3):
        got.append(piece)
    assert len(got) == 3
    assert script.disconnected.wait(2.0), "the server did not see the client go"
    script.piece_delay_s = 0.0
    assert "".join(llm.stream("Tell me a story", max_tokens=4)) == "word " * 4
    with pytest.raises(Cancelled):
        llm.prefill("Tell me another", lambda: True)


def test_a_server_lost_mid_reply_is_a_one_line_error(fake: tuple[str, Script]) -> None:
    url, script = fake
    script.die_after = 2
    llm = ServedLlm(url, LlmConfig())
    got: list[str] = []
    with pytest.raises(LlmServerError) as caught:
        for piece in llm.stream("Hi"):
            got.append(piece)
    assert got == ["Hello", " there"]
    assert url in str(caught.value) and "\n" not in str(caught.value)


def test_a_stalled_server_times_out(fake: tuple[str, Script], monkeypatch: pytest.MonkeyPatch) -> None:
    url, script = fake
    monkeypatch.setattr(served, "FIRST_PIECE_TIMEOUT_S", 0.5)
    llm = ServedLlm(url, LlmConfig())
    script.stall = True
    started = time.perf_counter()
    with pytest.raises(LlmServerError, match="no answer in time"):
        list(llm.stream("Hi"))
    assert time.perf_counter() - started < 1.5


def test_a_server_that_is_not_there_is_named() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(LlmServerError, match=f"cannot reach the LLM server at {url}: connection refused"):
        ServedLlm(url, LlmConfig())


def test_the_pauses_of_a_served_model_are_counted_in_wall_seconds() -> None:
    rates = Rates(decode_per_cpu_s=50.0, read_per_cpu_s=1000.0, decode_tps=50.0, read_tps=1000.0, threads=0,
                  measured_at="now", model="m", served_by="http://127.0.0.1:1/v1")
    assert thought_equivalents(0.2, 1.5, rates)["could_read_tokens"] == 1500.0


def test_the_cli_says_in_one_line_that_the_server_is_down() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    done = run_voiceos("demo", "--llm-url", url, "--fast", "--no-play", timeout=120)
    assert done.returncode == 6
    assert done.stderr.strip().splitlines()[-1] == (
        f"voiceos: error: cannot reach the LLM server at {url}: connection refused (is the server running?)")
    assert "Traceback" not in done.stderr


def test_a_bad_url_is_a_config_error() -> None:
    done = run_voiceos("demo", "--llm-url", "ftp://example/v1", "--fast", "--no-play", timeout=120)
    assert done.returncode == 2
    assert "--llm-url ftp://example/v1: must be an http:// or https:// URL" in done.stderr


def test_the_config_file_names_the_server_and_the_fallback(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    config = tmp_path / "served.toml"
    config.write_text(f'[llm]\nurl = "{url}"\nfallback = "none"\nprompt_format = "chatml"\n')
    done = run_voiceos("demo", "--config", str(config), "--fast", "--no-play", timeout=120)
    assert done.returncode == 6 and f"cannot reach the LLM server at {url}" in done.stderr
    config.write_text('[llm]\nfallback = "remote"\n')
    done = run_voiceos("demo", "--config", str(config), "--fast", "--no-play", timeout=120)
    assert done.returncode == 2 and 'fallback = "remote": must be one of "none", "local"' in done.stderr


@dataclass
class VanishingLlm(ScriptedLlm):
    """A scripted model whose server goes away after the first words of its first reply."""

    words_before_loss: int = 2
    lost: bool = False

    def stream(self, text: str, cancelled: Callable[[], bool] = lambda: False, **kwargs: Any) -> Iterator[str]:
        pieces = super().stream(text, cancelled, **kwargs)
        for i, piece in enumerate(pieces):
            if self.lost or i == self.words_before_loss:
                self.lost = True
                raise LlmServerError("the LLM server at http://127.0.0.1:1/v1 failed while writing the reply: gone")
            yield piece


def test_a_server_lost_mid_reply_costs_that_turn_an_apology_and_the_session_goes_on() -> None:
    lex = Lexicon()
    audio = np.concatenate([lex.speech("I like the sea."), silence(6.0), lex.speech("Do you?"), silence(6.0)])
    run = run_conversation(audio, lex, llm=VanishingLlm(reply_to=lambda _said: "Oh, that sounds lovely today."))
    first, second = run.turns
    # (the server went during a speculative draft at a pause between her words, or during the reply itself)
    assert first.reply.text.lower().endswith(SERVER_LOST_APOLOGY.lower())
    assert second.reply.text == SERVER_LOST_APOLOGY
    assert not first.reply.interrupted and not second.reply.interrupted
    errors = run.of_type("error")
    assert errors and all("http://127.0.0.1:1/v1" in e["message"] for e in errors)
    assert run.records[-1]["type"] == "session_end" and run.result.turns == 2
