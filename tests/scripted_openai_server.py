"""A scripted OpenAI-compatible chat server on 127.0.0.1: the ONLY place a canned model is allowed.

Generators send many requests concurrently, so answers are chosen by what a request says, not by arrival
order: `script(request) -> Answer`. Requests travel over real HTTP through the real `openai` client inside
`LLMClient`, exactly like requests to the local model.

    def script(req: Request) -> Answer:
        if req.is_solve:
            return Answer("... so the answer is \\boxed{12}")
        return Answer(json.dumps({"question": "...", "code": "print(12)"}))

    with ScriptedServer(script) as server:
        client = LLMClient(base_url=server.base_url, model="scripted")

Run as a program (`python tests/scripted_openai_server.py --port 0 --scenario NAME`) it serves one of
SCENARIOS and prints its base URL, for subprocess tests that kill the client.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


@dataclass(frozen=True)
class Answer:
    """What to send back: completion text, finish reason, token counts, optional delay or HTTP error."""

    text: str = ""
    finish_reason: str = "stop"
    prompt_tokens: int = 20
    completion_tokens: int = 10
    delay_s: float = 0.0
    status: int = 200
    choices: tuple[str, ...] = ()  # several choices (an n>1 reply); `text` is ignored when set
    headers: tuple[tuple[str, str], ...] = ()  # extra response headers (e.g. Retry-After)


@dataclass
class Request:
    """One received chat request, with helpers to tell a generation request from a solve request."""

    body: dict[str, Any]
    received_at: float = field(default_factory=time.monotonic)

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.body.get("messages", []))

    @property
    def system(self) -> str:
        return next((str(m.get("content", "")) for m in self.messages if m.get("role") == "system"), "")

    @property
    def user(self) -> str:
        return next(
            (str(m.get("content", "")) for m in reversed(self.messages) if m.get("role") == "user"), ""
        )

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


Script = Callable[[Request], Answer]


class ScriptedServer:
    """ThreadingHTTPServer on a free loopback port answering /v1/chat/completions from `script`."""

    def __init__(self, script: Script, *, port: int = 0) -> None:
        self.script = script
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def _send(
                self, status: int, payload: dict[str, Any], headers: tuple[tuple[str, str], ...] = ()
            ) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                try:
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (cancelled): fine
                    pass

            def do_GET(self) -> None:  # /v1/models and /health, for clients that probe
                self._send(200, {"object": "list", "data": [{"id": "scripted", "object": "model"}]})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                request = Request(body=body)
                with server._lock:
                    server.requests.append(request)
                try:
                    answer = server.script(request)
                except Exception as exc:  # noqa: BLE001 - a broken script is a 500 the test will see, not a hung client
                    answer = Answer(text=f"script error: {exc!r}", status=500)
                if answer.delay_s:
                    time.sleep(answer.delay_s)
                if answer.status != 200:
                    error = {"error": {"message": answer.text or "scripted error", "type": "x"}}
                    self._send(answer.status, error, answer.headers)
                    return
                texts = answer.choices or (answer.text,)
                self._send(200, {
                    "id": f"chatcmpl-{len(server.requests)}",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": body.get("model", "scripted"),
                    "choices": [{"index": i, "message": {"role": "assistant", "content": text},
                                 "finish_reason": answer.finish_reason} for i, text in enumerate(texts)],
                    "usage": {"prompt_tokens": answer.prompt_tokens, "completion_tokens": answer.completion_tokens,
                              "total_tokens": answer.prompt_tokens + answer.completion_tokens},
                })  # fmt: skip

        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> Self:
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="scripted-openai", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def solve_requests(self) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.is_solve]


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
