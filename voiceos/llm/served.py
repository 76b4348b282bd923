"""The LLM on a server: an OpenAI-compatible `/v1/completions` endpoint behind the `LanguageModel` interface.

llama.cpp's `llama-server`, llama-cpp-python's server, vLLM and Ollama all take a raw prompt on
`/v1/completions` with `stream: true`. voiceos sends its own prompt text (`PromptFormat`), so the persona and
history stay a byte-stable prefix and the server's prefix cache keeps them read: `cache_prompt` and one
stable slot (`id_slot`) on llama.cpp servers, automatic prefix caching on vLLM. `prefill` is a request for
one token on the prompt so far: the server reads it into its cache while the user is still talking, and the
reply's request reads only the last words.

What a server cannot do, and what stands in for it:
- sampling steps (`llm/blockers.py` runs inside llama.cpp's sampler) do not cross HTTP: copies, stock
  openers and banned phrases are caught by the reply guard after the fact, and the reply written again;
- the end-of-turn probability (read from the prompt pass) is not asked for (`probes_end` is False): the turn
  detector decides on the words and Smart Turn alone.

How many prompt tokens the server found cached comes from the server where it says so (llama-server's
`timings.prompt_n`, vLLM's `usage.prompt_tokens_details.cached_tokens`), else from our own account of what
it last read (its cache holds the last prompt sent to the slot). Nothing is sent anywhere but the URL given,
and only prompt text: no file, no command.

One `ServedLlm` is used by one thread at a time (the thinking worker); each request's response is read by a
short-lived reader thread, so that a cancelled or stalled request is dropped at once by closing its socket.
"""

from __future__ import annotations

import http.client
import json
import logging
import queue
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from voiceos.config import LlmConfig
from voiceos.errors import Cancelled, ConfigError, LlmServerError, ModelError
from voiceos.llm.model import BACKGROUND_BATCH, GenerationStats, PrefillResult
from voiceos.llm.prompt_format import CHATML, FORMATS, PromptFormat, format_for

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 3.0  # a server that does not accept a connection this soon is down
FIRST_PIECE_TIMEOUT_S = 30.0  # request sent → first piece (the server reads the new part of the prompt)
NEXT_PIECE_TIMEOUT_S = 10.0  # between two pieces of a reply
POLL_S = 0.02  # how often a waiting request checks whether it was called off
SLOT = 0  # the llama.cpp server slot whose cache holds our prefix
TOKENIZE_CACHE = 512  # texts whose token counts are kept (the conversation's exchanges are counted often)
APPROX_CHARS_PER_TOKEN = 4  # without a tokenize endpoint (Ollama): a token per this many characters


@dataclass(frozen=True)
class ServerInfo:
    """What the server told about itself at the start."""

    url: str  # as the user gave it (the OpenAI base, e.g. http://127.0.0.1:8080/v1)
    model: str  # the model id it serves
    kind: str  # "llama.cpp" (llama-server), "llama-cpp-python", or "openai" (vLLM, Ollama, others)
    tokenizer: str  # the endpoint that counts tokens ("" = estimated from characters)


@dataclass
class Completion:
    """What one request returned."""

    pieces: int = 0
    prompt_read: int | None = None  # prompt tokens the server evaluated for it, when it says
    first_piece_s: float = 0.0  # request sent → first piece (wall s)
    last_piece_s: float = 0.0


@dataclass
class _Endpoint:
    scheme: str
    host: str
    port: int
    base_path: str  # "/v1"

    @property
    def root(self) -> str:
        """The server's root path, where llama.cpp servers keep /props, /tokenize, /extras/…"""
        return self.base_path.removesuffix("/v1")


def parse_url(url: str) -> _Endpoint:
    """The server's address from an OpenAI base URL; a bad one is a one-line error."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"--llm-url {url}: must be an http:// or https:// URL such as http://127.0.0.1:8080/v1")
    if parts.query or parts.fragment or parts.username:
        raise ConfigError(f"--llm-url {url}: only scheme, host, port and path are allowed")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise ConfigError(f"--llm-url {url}: {exc}") from exc
    path = parts.path.rstrip("/")
    return _Endpoint(parts.scheme, parts.hostname, port, path if path.endswith("/v1") else path + "/v1")


class _Request:
    """One HTTP request whose response is read on a thread of its own, into a queue of lines."""

    def __init__(self, endpoint: _Endpoint, method: str, path: str, body: dict[str, Any] | None) -> None:
        cls = http.client.HTTPSConnection if endpoint.scheme == "https" else http.client.HTTPConnection
        self._conn = cls(endpoint.host, endpoint.port, timeout=CONNECT_TIMEOUT_S)
        self.lines: queue.Queue[bytes | BaseException | None] = queue.Queue()
        self._closed = threading.Event()
        self._sock: socket.socket | None = None
        self._thread = threading.Thread(target=self._read, args=(method, path, body), name="llm-http", daemon=True)
        self._thread.start()

    def _read(self, method: str, path: str, body: dict[str, Any] | None) -> None:
        try:
            data = json.dumps(body).encode() if body is not None else None
            headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
            self._conn.request(method, path, body=data, headers=headers)
            self._sock = self._conn.sock  # kept: the connection lets go of it once a streamed response begins
            assert self._sock is not None
            self._sock.settimeout(None)  # waits are bounded by the consumer, which closes the socket
            if self._closed.is_set():
                raise ConnectionAbortedError()
            response = self._conn.getresponse()
            if response.status != 200:
                text = response.read(500).decode("utf-8", "replace").strip().replace("\n", " ")
                raise _HttpStatus(response.status, text)
            while (line := response.readline()) != b"":
                self.lines.put(line)
            self.lines.put(None)
        except BaseException as exc:  # handed to the consumer (a closed socket after a cancel is expected)
            self.lines.put(exc if not self._closed.is_set() else None)

    def next_line(self, deadline_s: float, cancelled: Callable[[], bool]) -> bytes | None:
        """The next line of the response, None at its end; raises `Cancelled`, or the reader's error, or
        `TimeoutError` past `deadline_s` (a perf_counter time)."""
        while True:
            if cancelled():
                self.close()
                raise Cancelled()
            try:
                item = self.lines.get(timeout=min(POLL_S, max(0.0, deadline_s - time.perf_counter())))
            except queue.Empty:
                if time.perf_counter() >= deadline_s:
                    self.close()
                    raise TimeoutError() from None
                continue
            if isinstance(item, BaseException):
                raise item
            return item

    def close(self) -> None:
        """Drop the connection: the server sees the client go and stops the request."""
        self._closed.set()
        sock = self._sock or self._conn.sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._conn.close()


class _HttpStatus(Exception):
    def __init__(self, status: int, text: str) -> None:
        super().__init__(f"HTTP {status}: {text}")
        self.status = status


class ServedLlm:
    """The `LanguageModel` on an OpenAI-compatible server (see the module docstring)."""

    probes_end = False  # no end-of-turn probability from the prompt pass

    def __init__(self, url: str, config: LlmConfig, fmt: PromptFormat | None = None) -> None:
        self.config = config
        self.url = url
        self._endpoint = parse_url(url)
        self.n_ctx = config.n_ctx  # the server's context is its own; ours bounds what we send
        self._counts: dict[str, list[int]] = {}
        self._cached: list[int] = []  # our account of the prompt tokens the server's slot holds
        self.info = self._introduce()
        self.fmt: PromptFormat = fmt or self._format()
        log.info("LLM served at %s: %s (%s, format %s)", url, self.info.model, self.info.kind, self.fmt.name)

    # --- what the server is ------------------------------------------------------------------------

    def _introduce(self) -> ServerInfo:
        try:
            models = self._json("GET", self._endpoint.base_path + "/models", None)
        except (OSError, TimeoutError, _HttpStatus, ValueError) as exc:
            raise LlmServerError(f"cannot reach the LLM server at {self.url}: {_reason(exc)}") from exc
        data = models.get("data") if isinstance(models, dict) else None
        model = str(data[0].get("id", "")) if isinstance(data, list) and data and isinstance(data[0], dict) else ""
        root = self._endpoint.root
        for kind, path, body in (("llama-cpp-python", root + "/extras/tokenize", {"input": "Hi"}),
                                 ("llama.cpp", root + "/tokenize", {"content": "Hi"}),
                                 ("openai", root + "/tokenize", {"model": model, "prompt": "Hi"})):
            try:
                reply = self._json("POST", path, body)
            except (OSError, TimeoutError, _HttpStatus, ValueError):
                continue
            if isinstance(reply, dict) and isinstance(reply.get("tokens"), list):
                return ServerInfo(self.url, model, kind, path)
        return ServerInfo(self.url, model, "openai", "")

    def _format(self) -> PromptFormat:
        """The prompt format: `[llm] prompt_format`, else the chat template a llama.cpp server reports, else
        ChatML (the template of most instruction models)."""
        if self.config.prompt_format != "auto":
            return FORMATS[self.config.prompt_format]
        if self.info.kind == "llama.cpp":
            try:
                props = self._json("GET", self._endpoint.root + "/props", None)
                template = props.get("chat_template", "") if isinstance(props, dict) else ""
                if template:
                    return format_for({"tokenizer.chat_template": template, "general.name": self.info.model})
            except (OSError, TimeoutError, _HttpStatus, ValueError):
                pass
        return CHATML

    def _json(self, method: str, path: str, body: dict[str, Any] | None) -> Any:
        request = _Request(self._endpoint, method, path, body)
        deadline = time.perf_counter() + FIRST_PIECE_TIMEOUT_S
        try:
            raw = b""
            while (line := request.next_line(deadline, lambda: False)) is not None:
                raw += line
        finally:
            request.close()
        return json.loads(raw)

    @property
    def model_name(self) -> str:
        """The served model's id; a file path (llama-cpp-python's server names a model by its path) by its name."""
        return self.info.model.rsplit("/", 1)[-1] if self.info.model.startswith("/") else self.info.model or self.url

    # --- tokens ----------------------------------------------------------------------------------------

    def tokenize(self, text: str) -> list[int]:
        """The prompt `text` as the server's tokens (asked once per text, kept), or as stand-ins of about a
        token each where the server cannot tell (they serve to count and to compare prefixes)."""
        tokens = self._counts.get(text)
        if tokens is None:
            tokens = self._ask_tokens(text) if self.info.tokenizer else _approximate_tokens(text)
            if tokens is None:  # the server is gone: estimated (not kept); its next request says so
                return _approximate_tokens(text)
            self._counts[text] = tokens
            while len(self._counts) > TOKENIZE_CACHE:
                del self._counts[next(iter(self._counts))]
        return tokens

    def _ask_tokens(self, text: str) -> list[int] | None:
        """The server's tokens for `text`; None when it cannot be asked. Counting runs on the loop's thread too
        (the conversation's history budget), which must not fail with the server: only its requests do."""
        body: dict[str, Any] = {"input": text} if self.info.kind == "llama-cpp-python" else (
            {"content": text, "add_special": True} if self.info.kind == "llama.cpp"
            else {"model": self.info.model, "prompt": text})
        try:
            reply = self._json("POST", self.info.tokenizer, body)
        except (OSError, TimeoutError, _HttpStatus, ValueError) as exc:
            log.debug("%s; tokens estimated", self._lost("counting tokens", exc))
            return None
        return [int(t) for t in reply.get("tokens", [])]

    def count_tokens(self, text: str) -> int:
        """How many tokens `text` takes: the server's count when it is known, else an estimate, without asking
        (the conversation is counted on the voice loop's thread, which must never wait on the server)."""
        known = self._counts.get(text)
        return len(known if known is not None else _approximate_tokens(text))

    # --- reading and writing ------------------------------------------------------------------------

    def prefill(self, text: str, cancelled: Callable[[], bool] = lambda: False, *, probe: str | None = None,
                batch: int = BACKGROUND_BATCH) -> PrefillResult:
        """Have the server read `text` into its prompt cache (a request for one token, thrown away). `probe`
        and `batch` are the embedded engine's: a server reads a prompt in one go and gives no P(end)."""
        tokens = self.tokenize(text)
        self._check_fits(tokens, 1)
        expected = self._account(tokens)
        done = Completion()
        for _ in self._complete(text, 1, cancelled, done, temperature=0.0, seed=self.config.seed,
                                doing="reading ahead"):
            pass
        return self._read_result(tokens, expected, done)

    def stream(
        self, text: str, cancelled: Callable[[], bool] = lambda: False, *, seed: int | None = None,
        temperature: float | None = None, max_tokens: int | None = None, stats: GenerationStats | None = None,
        read_before: PrefillResult | None = None, avoid: list[str] | None = None,
        banned: tuple[str, ...] = (), openings: list[str] | None = None,
    ) -> Iterator[str]:
        """Reply text pieces for prompt `text` as the server streams them. `avoid`, `banned` and `openings`
        are sampling steps a server cannot run: the reply guard catches what they would have barred."""
        cfg = self.config
        stats = stats if stats is not None else GenerationStats()
        started = time.perf_counter()
        tokens = self.tokenize(text)
        limit = max_tokens or cfg.max_reply_tokens
        self._check_fits(tokens, limit)
        stats.prompt_tokens = len(tokens)
        expected = self._account(tokens)
        done = Completion()
        try:
            for piece in self._complete(text, limit, cancelled, done, seed=seed if seed is not None else cfg.seed,
                                        temperature=cfg.temperature if temperature is None else temperature,
                                        doing="writing the reply"):
                if stats.generated_tokens == 0:
                    stats.first_token_ms = (time.perf_counter() - started) * 1000.0
                stats.generated_tokens += 1
                yield piece
        except Cancelled:
            return  # called off: the reply ends here, as the embedded engine's does
        finally:
            read = self._read_result(tokens, expected, done)
            if read_before is not None:
                read = PrefillResult(reused=read_before.reused, read=read_before.read + read.read)
            stats.reused_tokens, stats.read_tokens = read.reused, read.read
            if stats.first_token_ms:
                stats.decode_s = time.perf_counter() - started - stats.first_token_ms / 1000.0

    def _check_fits(self, tokens: list[int], reply_tokens: int) -> None:
        if len(tokens) + reply_tokens >= self.n_ctx:
            raise ModelError(f"prompt of {len(tokens)} tokens + reply does not fit the context of {self.n_ctx}")

    def _account(self, tokens: list[int]) -> PrefillResult:
        """What the server's slot should find cached of `tokens` (what it read last: see the module
        docstring); the slot now holds `tokens`. A whole prompt found cached has its last token read again."""
        same = 0
        for a, b in zip(self._cached, tokens):
            if a != b:
                break
            same += 1
        same = min(same, len(tokens) - 1)
        self._cached = list(tokens)
        return PrefillResult(reused=max(same, 0), read=len(tokens) - max(same, 0))

    def _read_result(self, tokens: list[int], expected: PrefillResult, done: Completion) -> PrefillResult:
        if done.prompt_read is None:
            return expected
        read = min(done.prompt_read, len(tokens))
        return PrefillResult(reused=len(tokens) - read, read=read)

    def complete(self, text: str, max_tokens: int, done: Completion | None = None) -> Iterator[str]:
        """Plain greedy text after `text` (calibration), at most `max_tokens` pieces."""
        self._cached = []  # the prompt replaces what the slot held
        return self._complete(text, max_tokens, lambda: False, done or Completion(), temperature=0.0,
                              seed=self.config.seed, doing="measuring its rates")

    def _complete(self, text: str, max_tokens: int, cancelled: Callable[[], bool], done: Completion, *,
                  temperature: float, seed: int, doing: str) -> Iterator[str]:
        """Stream the completion of `text`; `doing` says what for, in the error when the server fails."""
        cfg = self.config
        body = {
            "model": self.info.model, "prompt": text, "max_tokens": max_tokens, "stream": True,
            "temperature": temperature, "top_p": cfg.top_p, "top_k": cfg.top_k, "repeat_penalty": cfg.repeat_penalty,
            "seed": seed, "stop": list(self.fmt.stops),
            "cache_prompt": True, "id_slot": SLOT,  # llama.cpp servers; others ignore what they do not know
            "stream_options": {"include_usage": True},  # vLLM: the usage chunk, with the cached tokens
        }
        sent = time.perf_counter()
        request = _Request(self._endpoint, "POST", self._endpoint.base_path + "/completions", body)
        deadline = sent + FIRST_PIECE_TIMEOUT_S
        finished = False
        try:
            while (line := request.next_line(deadline, cancelled)) is not None:
                event = _event(line)
                if event is None:
                    continue
                if event == "[DONE]":
                    finished = True
                    break
                _note_usage(event, done)
                piece = _piece_text(event)
                if piece:
                    now = time.perf_counter()
                    if done.pieces == 0:
                        done.first_piece_s = now - sent
                    done.last_piece_s = now - sent
                    done.pieces += 1
                    deadline = now + NEXT_PIECE_TIMEOUT_S
                    yield piece
                if _finish_reason(event) and self.info.kind == "llama.cpp":
                    finished = True  # llama-server sends its timings with the last piece; [DONE] may not follow
            if not finished:
                raise ConnectionError("the stream ended before the reply did")
        except Cancelled:
            raise
        except (TimeoutError, OSError, _HttpStatus, ValueError, http.client.HTTPException) as exc:
            raise self._lost(doing, exc) from exc
        finally:
            request.close()

    def _lost(self, doing: str, exc: BaseException) -> LlmServerError:
        self._cached = []  # whatever the server holds now, we no longer know it
        return LlmServerError(f"the LLM server at {self.url} failed while {doing}: {_reason(exc)}")


def _event(line: bytes) -> dict[str, Any] | str | None:
    """One server-sent event's data: a JSON object, "[DONE]", or None for anything else."""
    text = line.decode("utf-8", "replace").strip()
    if not text.startswith("data:"):
        return None
    data = text[5:].strip()
    if data == "[DONE]":
        return data
    if not data:
        return None
    value = json.loads(data)
    if isinstance(value, dict) and "error" in value:
        raise _HttpStatus(500, str(value["error"])[:300])
    return value if isinstance(value, dict) else None


def _piece_text(event: dict[str, Any] | str) -> str:
    if not isinstance(event, dict):
        return ""
    choices = event.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        return str(choices[0].get("text") or "")
    return str(event.get("content") or "")  # llama-server's own format


def _finish_reason(event: dict[str, Any] | str) -> bool:
    if not isinstance(event, dict):
        return False
    choices = event.get("choices")
    return bool(isinstance(choices, list) and choices and isinstance(choices[0], dict)
                and choices[0].get("finish_reason"))


def _note_usage(event: dict[str, Any] | str, done: Completion) -> None:
    """Prompt tokens the server evaluated, where it reports them."""
    if not isinstance(event, dict):
        return
    timings = event.get("timings")
    if isinstance(timings, dict) and isinstance(timings.get("prompt_n"), int):
        done.prompt_read = timings["prompt_n"]  # llama-server
        return
    usage = event.get("usage")
    details = usage.get("prompt_tokens_details") if isinstance(usage, dict) else None
    if isinstance(details, dict) and isinstance(details.get("cached_tokens"), int) and isinstance(usage, dict):
        done.prompt_read = int(usage.get("prompt_tokens", 0)) - details["cached_tokens"]  # vLLM


def _approximate_tokens(text: str) -> list[int]:
    """Stand-in tokens for a server that cannot count: one per `APPROX_CHARS_PER_TOKEN` characters."""
    step = APPROX_CHARS_PER_TOKEN
    return [hash(text[i : i + step]) for i in range(0, len(text), step)]


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError) and not str(exc):
        return "no answer in time"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is the server running?)"
    return str(exc) or type(exc).__name__

