"""A scripted OpenAI-compatible chat server on 127.0.0.1: the ONLY place a canned model is allowed.

Requests travel over real HTTP through the real `openai` client inside `LLMClient`, exactly like requests to
the local model. Two ways to script it:

- by content, for concurrent generators: `script(request) -> Action`, chosen by what a request says;
- in arrival order, for fault handling: a list of actions consumed one per request (`by_model` gives a model
  its own list; `default` answers when a list runs out).

Actions: `Reply` (a completion; `Answer` is the same class), `Status` (an HTTP error, optional Retry-After),
`Hang` (say nothing past the client's timeout), `Drop` (close the connection), `Raw` (a malformed body).

    with ScriptedServer([Status(429, retry_after=0.2), Reply("hi")]) as server:
        client = LLMClient(base_url=server.base_url, model="scripted")
        ...
        server.requests  # what arrived, when, with which body and which action answered it

Run as a program (`python tests/scripted_openai_server.py --port 0 --scenario NAME`) it serves one of
SCENARIOS and prints its base URL, for subprocess tests that kill the client.
"""

from __future__ import annotations

import argparse
import json
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


@dataclass(frozen=True)
class Reply:
    """Answer 200 with a chat completion whose content is `text` (after `delay_s`, to observe concurrency)."""

    text: str = "ok"
    finish_reason: str = "stop"
    prompt_tokens: int = 20
    completion_tokens: int = 10
    model: str | None = None  # the model the completion names (default: the one requested)
    delay_s: float = 0.0
    choices: tuple[str, ...] = ()  # the texts of an n>1 reply, one choice each (`text` is then ignored)
    tool_calls: tuple[dict[str, Any], ...] = ()  # OpenAI-style tool calls of every choice (see `tool_call`)


Answer = Reply


def tool_call(
    code: str, *, id: str = "call_1", name: str = "python", arguments: str | None = None
) -> dict[str, Any]:
    """An OpenAI-style tool call of the `python` tool (`arguments` overrides the JSON, e.g. to malform it)."""
    args = arguments if arguments is not None else json.dumps({"code": code})
    return {"id": id, "type": "function", "function": {"name": name, "arguments": args}}


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
class Request:
    """One received chat request, with helpers to tell a generation request from a solve request."""

    body: dict[str, Any]
    path: str = "/v1/chat/completions"
    arrived: float = field(default_factory=time.monotonic)
    action: Action | None = None

    @property
    def model(self) -> str | None:
        return self.body.get("model")

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.body.get("messages", []))

    @property
    def system(self) -> str:
        return next((str(m.get("content", "")) for m in self.messages if m.get("role") == "system"), "")

    @property
    def user(self) -> str:
        users = [str(m.get("content", "")) for m in self.messages if m.get("role") == "user"]
        return users[-1] if users else ""

    @property
    def is_solve(self) -> bool:
        """A chain-of-thought solve (asks for \\boxed{}, no JSON) rather than a question+code request."""
        return "\\boxed{}" in self.user and "response_format" not in self.body

    @property
    def is_repair(self) -> bool:
        """A follow-up asking the writer to fix code that failed in the sandbox."""
        return "Fix the code" in self.user and not self.is_solve

    @property
    def repair_failure(self) -> str:
        """What a repair request says went wrong (traceback tail or 'printed nothing')."""
        return self.user.split("It failed:\n", 1)[1].split("\n\nFix the code", 1)[0] if self.is_repair else ""

    @property
    def solve_question(self) -> str:
        """The question a solve request carries (the user message before the instruction line)."""
        return self.user.split("\n\nSolve step by step")[0]


Script = Callable[[Request], Action]


def _completion(reply: Reply, body: dict[str, Any], number: int) -> dict[str, Any]:
    texts = reply.choices or (reply.text,) * int(body.get("n") or 1)
    message: dict[str, Any] = {"role": "assistant"}
    if reply.tool_calls:
        message["tool_calls"] = list(reply.tool_calls)
    return {
        "id": f"chatcmpl-{number}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": reply.model or body.get("model") or "scripted",
        "choices": [
            {"index": i, "message": {**message, "content": text}, "finish_reason": reply.finish_reason}
            for i, text in enumerate(texts)
        ],
        "usage": {
            "prompt_tokens": reply.prompt_tokens,
            "completion_tokens": reply.completion_tokens,
            "total_tokens": reply.prompt_tokens + reply.completion_tokens,
        },
    }


class ScriptedServer:
    """ThreadingHTTPServer on a free loopback port answering /v1/chat/completions from a script."""

    def __init__(
        self,
        script: Script | Iterable[Action] = (),
        *,
        by_model: dict[str, Iterable[Action]] | None = None,
        default: Action = Reply(),
        port: int = 0,
    ) -> None:
        self._script = script if callable(script) else None
        self._queue: list[Action] = [] if callable(script) else list(script)
        self._by_model = {k: list(v) for k, v in (by_model or {}).items()}
        self._default = default
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._in_flight = self._max_in_flight = 0
        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), _handler(self))
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    def next_action(self, request: Request) -> Action:
        """The scripted answer to this request (a broken script is a 500 the test will see)."""
        if self._script is not None:
            try:
                return self._script(request)
            except Exception as exc:  # noqa: BLE001
                return Status(500, message=f"script error: {exc!r}")
        with self._lock:
            queue = self._by_model.get(request.model, self._queue)
            return queue.pop(0) if queue else self._default

    def _enter(self, request: Request) -> int:
        with self._lock:
            self.requests.append(request)
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
            return len(self.requests)

    def _leave(self) -> None:
        with self._lock:
            self._in_flight -= 1

    @property
    def max_in_flight(self) -> int:
        """Most requests the server was handling at the same moment."""
        with self._lock:
            return self._max_in_flight

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    def start(self) -> Self:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.02},
            name="scripted-openai",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # release hanging handlers
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def solve_requests(self) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.is_solve]


def _handler(server: ScriptedServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # keep test output clean
            pass

        def do_GET(self) -> None:  # /v1/models and /health, for clients that probe
            self._send(200, {"object": "list", "data": [{"id": "scripted", "object": "model"}]})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw or b"{}")
            except json.JSONDecodeError:
                body = {"_unparsed": raw.decode("utf-8", "replace")}
            request = Request(body=body, path=self.path)
            request.action = server.next_action(request)
            number = server._enter(request)
            try:
                self._act(request.action, body, number)
            finally:
                server._leave()

        def _act(self, action: Action, body: dict[str, Any], number: int) -> None:
            if isinstance(action, Reply):
                if action.delay_s:
                    server._stopping.wait(action.delay_s)
                self._send(200, _completion(action, body, number))
            elif isinstance(action, Status):
                headers = {} if action.retry_after is None else {"Retry-After": str(action.retry_after)}
                error = {"error": {"message": action.message, "type": "scripted_error", "code": action.code}}
                self._send(action.code, error, headers)
            elif isinstance(action, Raw):
                self._send_bytes(200, action.body.encode(), {})
            elif isinstance(action, Hang):
                server._stopping.wait(action.seconds)
                self.close_connection = True
            elif isinstance(action, Drop):
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

        def _send(self, code: int, payload: Any, headers: dict[str, str] | None = None) -> None:
            self._send_bytes(code, json.dumps(payload).encode(), headers or {})

        def _send_bytes(self, code: int, data: bytes, headers: dict[str, str]) -> None:
            try:
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up first (its timeout)
                pass

    return Handler


# -- reusable scripts -------------------------------------------------------------------------------


def candidate_json(question: str, code: str) -> str:
    return json.dumps({"question": question, "code": code})


def numbered_problems(delay_s: float = 0.0) -> Script:
    """Every generation request yields a distinct, correct problem; every solve agrees.

    The k-th generation request gets problem k ("... 1000+k apples ..."), so all are novel to each other
    only in the number: the scenario used with a low novelty bar in the kill -9 test.
    """
    counter = {"n": 0}
    lock = threading.Lock()
    words = ["apples", "pears", "plums", "figs", "limes", "kiwis", "dates", "grapes", "melons", "berries"]

    def script(req: Request) -> Answer:
        if req.is_solve:
            q = req.solve_question
            a, b = (int(x) for x in q.split("has ")[1].split(" ")[0:3:2])
            return Answer(f"Add them: {a} + {b} = {a + b}. \\boxed{{{a + b}}}", delay_s=delay_s)
        with lock:
            counter["n"] += 1
            k = counter["n"]
        a, b = 1000 + k, 7 * k
        word = words[k % len(words)]
        q = f"A basket {k} has {a} and {b} {word} in two rows; how many {word} are there in basket {k} in total?"
        return Answer(candidate_json(q, f"print({a} + {b})"), delay_s=delay_s)

    return script


SCENARIOS: dict[str, Callable[[], Script]] = {
    "numbered": lambda: numbered_problems(delay_s=0.15),
}


def _main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), default="numbered")
    args = parser.parse_args()
    server = ScriptedServer(SCENARIOS[args.scenario](), port=args.port).start()
    print(server.base_url, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    _main()
