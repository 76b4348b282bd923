"""The LLM on a server, for real: llama-cpp-python's own server with the embedded model on 127.0.0.1, the demo
answered through it with the words read during speech found in its cache, a speculation called off mid-reply,
the server killed mid-turn, and the embedded model as the fallback."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ROOT, VOICEOS, records, run_voiceos, wait_until

from voiceos.config import LlmConfig
from voiceos.llm.served import ServedLlm
from voiceos.think.reply_writer import SERVER_LOST_APOLOGY

pytestmark = [pytest.mark.models, pytest.mark.slow]

UTTERANCES = ("spk1_snt1.wav", "spk1_snt2.wav")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LlamaServer:
    """`python -m llama_cpp.server` on the embedded GGUF, on a free port of 127.0.0.1, one thread (its prompt
    reading takes all cores unless told: `--n_threads_batch`)."""

    def __init__(self, log_path: Path) -> None:
        from voiceos import registry

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        gguf = registry.resolve(None, "llm").path
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--host", "127.0.0.1",
             "--port", str(self.port), "--n_threads", "1", "--n_threads_batch", "1", "--n_ctx", str(LlmConfig().n_ctx)],
            stdout=subprocess.DEVNULL, stderr=log_path.open("w"))
        wait_until(self.ready, 120, "llama_cpp.server to listen")

    def ready(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"llama_cpp.server exited with {self.proc.returncode}")
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", self.port)) == 0

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    running = LlamaServer(tmp_path_factory.mktemp("server") / "server.log")
    yield running
    running.kill()


def demo(url: str, speech_dir: Path, tmp: Path, *extra: str, inputs: tuple[str, ...] = UTTERANCES,
         ) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*VOICEOS, "demo", "--llm-url", url, "--fast", "--no-play", "--no-memory", "--log-dir", str(tmp / "logs"),
         "--out", str(tmp / "out"), "--input", *[str(speech_dir / name) for name in inputs], *extra],
        stdout=subprocess.PIPE, stderr=(tmp / "demo.err").open("w"), text=True, cwd=ROOT)


def test_the_demo_is_answered_through_the_server_with_the_words_read_ahead(server: LlamaServer, speech_dir: Path,
                                                                         tmp_path: Path) -> None:
    proc = demo(server.url, speech_dir, tmp_path)
    assert proc.wait(timeout=600) == 0, (tmp_path / "demo.err").read_text()
    log = records(tmp_path / "logs")
    start = log[0]
    assert start["models"]["llm"]["url"] == server.url
    assert start["models"]["llm"]["server"] == "llama-cpp-python"
    assert start["rates"]["served_by"] == server.url
    turns = [r for r in log if r["type"] == "turn"]
    assert len(turns) == len(UTTERANCES)
    for turn in turns:
        assert turn["reply"]["text"] and SERVER_LOST_APOLOGY not in turn["reply"]["text"]
        llm = turn["llm"]
        # the persona, history and the words read while the user spoke were in the server's cache
        assert llm["reused_tokens"] + llm["read_tokens"] == llm["prompt_tokens"]
        assert llm["read_tokens"] * 4 < llm["prompt_tokens"], llm
        assert turn["pauses"]["could_read_tokens"] is not None
    assert log[-1]["type"] == "session_end" and log[-1]["reason"] == "done"
    assert not [r for r in log if r["type"] == "error"]


def test_a_speculation_called_off_mid_reply_leaves_the_server_working(server: LlamaServer) -> None:
    llm = ServedLlm(server.url, LlmConfig())
    prompt = llm.fmt.render("You are Samantha.", [], "Tell me a long story about the sea.", close_user=True)
    got: list[str] = []
    for piece in llm.stream(prompt, lambda: len(got) >= 3, max_tokens=80):
        got.append(piece)
    assert len(got) == 3
    assert server.proc.poll() is None
    again = "".join(llm.stream(prompt, max_tokens=8))
    assert again.strip()
    assert server.proc.poll() is None


def test_the_server_killed_mid_turn_gets_an_apology_and_the_session_goes_on(speech_dir: Path,
                                                                             tmp_path: Path) -> None:
    doomed = LlamaServer(tmp_path / "server.log")
    try:
        proc = demo(doomed.url, speech_dir, tmp_path)
        logs = tmp_path / "logs"
        deadline = time.monotonic() + 300
        while not any(r["type"] == "reply_start" for r in records(logs)):  # her first words: the reply streams on
            assert time.monotonic() < deadline and proc.poll() is None, "no reply started"
            time.sleep(0.02)
        doomed.kill()
        assert proc.wait(timeout=300) == 0, (tmp_path / "demo.err").read_text()
    finally:
        doomed.kill()
    log = records(tmp_path / "logs")
    turns = [r for r in log if r["type"] == "turn"]
    assert len(turns) == len(UTTERANCES)
    # the first reply was cut where the server went (unless it was quick enough to end first), the next one is
    # the apology alone
    assert turns[-1]["reply"]["text"] == SERVER_LOST_APOLOGY
    errors = [r for r in log if r["type"] == "error"]
    assert errors and all(doomed.url in e["message"] for e in errors)
    assert log[-1]["type"] == "session_end" and log[-1]["reason"] == "done" and log[-1]["turns"] == len(UTTERANCES)
    assert "Traceback" not in (tmp_path / "demo.err").read_text()


def test_the_embedded_model_stands_in_for_a_server_that_is_not_there(speech_dir: Path, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    done = run_voiceos("demo", "--llm-url", url, "--llm-fallback", "local", "--fast", "--no-play", "--no-memory",
                       "--log-dir", str(tmp_path / "logs"), "--out", str(tmp_path / "out"),
                       "--input", str(speech_dir / UTTERANCES[0]))
    assert done.returncode == 0, done.stderr
    assert f"cannot reach the LLM server at {url}" in done.stderr and "--llm-fallback local" in done.stderr
    log = records(tmp_path / "logs")
    assert "path" in log[0]["models"]["llm"] and not log[0]["rates"]["served_by"]
    assert sum(r["type"] == "turn" for r in log) == 1


def test_the_bench_puts_the_served_first_token_beside_the_local_one(server: LlamaServer, speech_dir: Path,
                                                                    tmp_path: Path) -> None:
    started = time.monotonic()
    done = run_voiceos("bench", "--llm-url", server.url, str(speech_dir / UTTERANCES[0]),
                       "--json", str(tmp_path / "bench.json"), "--log-dir", str(tmp_path / "logs"))
    assert done.returncode == 0, done.stderr
    import json

    document = json.loads((tmp_path / "bench.json").read_text())
    assert document["models"]["llm"]["url"] == server.url and "path" in document["models"]["llm_embedded"]
    aggs = document["aggregates"]
    assert set(aggs) == {"streaming", "streaming served"}
    for mode in aggs.values():
        assert mode["llm_first_token_ms"]["n"] == 1 and mode["llm_first_token_ms"]["p50"] is not None
    assert time.monotonic() - started < 600
