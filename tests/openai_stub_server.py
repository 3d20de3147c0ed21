"""A real HTTP server on 127.0.0.1 that speaks the OpenAI chat-completions shape and follows a script.

Fault handling must be observed, not assumed: each request takes the next scripted action (answer,
HTTP error with optional Retry-After, hang, drop the connection) and is recorded with its arrival time.

    with StubOpenAIServer([Status(429, retry_after=0.2), Status(500), Reply("hi")]) as stub:
        client = LLMClient(base_url=stub.base_url, model="stub")
        ...
        stub.requests  # what arrived, when, with which body and which action answered it
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


@dataclass(frozen=True)
class Reply:
    """Answer 200 with a chat completion whose content is `text` (model echoes the request unless set)."""

    text: str = "ok"
    finish_reason: str = "stop"
    prompt_tokens: int = 7
    completion_tokens: int = 3
    model: str | None = None
    delay: float = 0.0  # think this long before answering (to observe concurrency)


@dataclass(frozen=True)
class Status:
    """Answer with an HTTP error status (and Retry-After if given), OpenAI-style error body."""

    code: int
    retry_after: float | str | None = None
    message: str = "scripted failure"


@dataclass(frozen=True)
class Hang:
    """Read the request, then say nothing for `seconds` (past the client's timeout), then close."""

    seconds: float = 30.0


@dataclass(frozen=True)
class Drop:
    """Read the request, then close the TCP connection without any response."""


@dataclass(frozen=True)
class Raw:
    """Answer 200 with this exact body (e.g. malformed JSON)."""

    body: str


Action = Reply | Status | Hang | Drop | Raw


@dataclass
class RecordedRequest:
    """One request as the server saw it."""

    arrived: float  # time.monotonic() on arrival
    path: str
    body: dict[str, Any]
    action: Action

    @property
    def model(self) -> str | None:
        return self.body.get("model")


@dataclass
class _State:
    script: list[Action]
    by_model: dict[str, list[Action]]
    default: Action
    requests: list[RecordedRequest] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stopping: threading.Event = field(default_factory=threading.Event)
    in_flight: int = 0
    max_in_flight: int = 0

    def next_action(self, model: str | None) -> Action:
        with self.lock:
            queue = self.by_model.get(model or "") if model in self.by_model else self.script
            return queue.pop(0) if queue else self.default


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        if self.path.rstrip("/").endswith("/models"):
            self._send_json(200, {"object": "list", "data": [{"id": "stub", "object": "model"}]})
        elif self.path.rstrip("/").endswith("/health"):
            self._send_json(200, {"status": "ok"})
        else:
            self._send_json(404, {"error": {"message": f"no route {self.path}"}})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            body = {"_unparsed": raw.decode("utf-8", "replace")}
        state = self.server.state
        action = state.next_action(body.get("model"))
        with state.lock:
            state.requests.append(RecordedRequest(time.monotonic(), self.path, body, action))
            state.in_flight += 1
            state.max_in_flight = max(state.max_in_flight, state.in_flight)
        try:
            self._act(action, body)
        finally:
            with state.lock:
                state.in_flight -= 1

    def _act(self, action: Action, body: dict[str, Any]) -> None:
        state = self.server.state
        if isinstance(action, Reply):
            if action.delay:
                state.stopping.wait(action.delay)
            self._send_json(200, _completion(action, body))
        elif isinstance(action, Status):
            headers = {} if action.retry_after is None else {"Retry-After": str(action.retry_after)}
            error = {"error": {"message": action.message, "type": "stub_error", "code": action.code}}
            self._send_json(action.code, error, headers)
        elif isinstance(action, Raw):
            self._send_bytes(200, action.body.encode(), "application/json", {})
        elif isinstance(action, Hang):
            state.stopping.wait(action.seconds)
            self.close_connection = True
        elif isinstance(action, Drop):
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _send_json(self, code: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        self._send_bytes(code, json.dumps(payload).encode(), "application/json", headers or {})

    def _send_bytes(self, code: int, data: bytes, ctype: str, headers: dict[str, str]) -> None:
        try:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up first (its timeout)
            pass


def _completion(action: Reply, request: dict[str, Any]) -> dict[str, Any]:
    n = int(request.get("n") or 1)
    return {
        "id": "chatcmpl-stub",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": action.model or request.get("model") or "stub",
        "choices": [
            {
                "index": i,
                "message": {"role": "assistant", "content": action.text},
                "finish_reason": action.finish_reason,
            }
            for i in range(n)
        ],
        "usage": {
            "prompt_tokens": action.prompt_tokens,
            "completion_tokens": action.completion_tokens,
            "total_tokens": action.prompt_tokens + action.completion_tokens,
        },
    }


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: _State


class StubOpenAIServer:
    """Scripted OpenAI-compatible server on a free loopback port; use as a context manager.

    `script` is consumed one action per chat request; `by_model` gives per-model scripts (for
    model-switching tests); when a script runs out, `default` answers.
    """

    def __init__(
        self,
        script: Iterable[Action] = (),
        *,
        by_model: dict[str, Iterable[Action]] | None = None,
        default: Action = Reply(),
    ) -> None:
        self.state = _State(
            script=list(script),
            by_model={k: list(v) for k, v in (by_model or {}).items()},
            default=default,
        )
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._httpd is not None, "StubOpenAIServer is not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    @property
    def max_in_flight(self) -> int:
        """Most requests the server was handling at the same moment."""
        with self.state.lock:
            return self.state.max_in_flight

    @property
    def requests(self) -> list[RecordedRequest]:
        with self.state.lock:
            return list(self.state.requests)

    def start(self) -> StubOpenAIServer:
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.state = self.state
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, name="openai-stub", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.state.stopping.set()  # release hanging handlers
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
