"""`loong serve-reward`'s HTTP face: a FastAPI app over `RewardScorer`, run by uvicorn.

Endpoints (OpenAPI docs at /docs):
  POST /get_reward   OpenRLHF's remote reward protocol: {"query", "prompts", "labels"} -> {"rewards", ...}
  POST /v1/score     our typed API: ScoreRequest -> ScoreResponse
  GET  /health       liveness and load (the one route open without the API key)

With an API key (`api_key`) every route but /health answers 401 without it (see `reward_auth`); without
one the server listens on loopback only unless `insecure`. Overload never hangs: a body over
`max_body_bytes` is 413, a batch over `max_batch` 413, more items than the scorer admits 429, a request
past its deadline 503 (both with Retry-After), and uvicorn answers 503 past `limit_concurrency`
connections. An item naming requirements the operator did not prepare is 403. Every error is a JSON body
`{"detail": "<message>"}`, and no reply carries a host path (`redact`). SIGTERM stops taking new
connections, answers the batches in flight (within their deadline), then exits. Needs the `server` extra.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_serializer, model_validator

from loong_env.equivalence.pool import WORKERS_ENV, usable_cores
from loong_env.integrations.errors import (
    BatchTooLargeError,
    DeadlineError,
    OverloadedError,
    RequirementsNotAllowedError,
    UnauthorizedError,
)
from loong_env.integrations.redact import HostPaths
from loong_env.integrations.reward_auth import API_KEY_ENV, check_bind, require_api_key, warn_if_open
from loong_env.integrations.reward_conversation import (
    ConversationRequest,
    ConversationScore,
    score_conversation,
)
from loong_env.integrations.reward_models import (
    Health,
    OpenRLHFRequest,
    OpenRLHFResponse,
    ScoreRequest,
    ScoreResponse,
)
from loong_env.integrations.reward_scoring import RewardScorer, ScoringConfig

CONFIG_ENV = "LOONG_REWARD_SERVER_CONFIG"  # JSON ServerConfig handed to each uvicorn worker process
SHUTDOWN_GRACE_S = 10.0  # past the request deadline, how long SIGTERM waits for answers in flight
log = logging.getLogger(__name__)


class ServerConfig(BaseModel):
    """Where the reward server listens, who may call it, how much it takes in; `scoring` bounds the work."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    workers: int = Field(
        default=1, ge=1, description="uvicorn worker processes, each with its own verifiers."
    )
    max_body_bytes: int = Field(
        default=32 * 2**20, ge=1024, description="Larger request bodies are HTTP 413."
    )
    limit_concurrency: int = Field(
        default=256, ge=1, description="Open connections per worker; more get 503."
    )
    api_key: SecretStr | None = Field(
        default=None, description=f"Callers must send it (Bearer); see --api-key / ${API_KEY_ENV}."
    )
    insecure: bool = Field(
        default=False, description="Allow a non-loopback host without an API key (anyone may call)."
    )
    scoring: ScoringConfig = Field(default_factory=ScoringConfig)

    @field_serializer("api_key", when_used="json")
    def _key_travels(self, key: SecretStr | None) -> str | None:
        # JSON is how the config reaches uvicorn worker processes and Ray replicas; repr stays masked.
        return key.get_secret_value() if key is not None else None

    def key(self) -> str | None:
        """The API key in clear, for the check itself (never log it)."""
        return self.api_key.get_secret_value() if self.api_key is not None else None

    @model_validator(mode="after")
    def _loopback_unless_keyed(self) -> ServerConfig:
        check_bind(self.host, api_key=self.key(), insecure=self.insecure)
        return self


def _version() -> str:
    try:
        return version("loong-env")
    except PackageNotFoundError:
        return "unknown"


def create_app(config: ServerConfig | None = None, *, scorer: RewardScorer | None = None) -> Any:
    """The ASGI app: endpoints, auth, error mapping, path redaction and the body limit around one scorer."""
    from fastapi import Depends, FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, Response
    from starlette.exceptions import HTTPException as StarletteHTTPException

    cfg = config or ServerConfig()
    scorer = scorer or RewardScorer(cfg.scoring)
    key = cfg.key()

    @asynccontextmanager
    async def lifespan(_: Any) -> AsyncIterator[None]:
        await scorer.start()
        yield

    app = FastAPI(
        title="loong_env reward server",
        version=_version(),
        description="Scores LLM answers with loong_env's verifiers (boxed and code answers, plug-ins).",
        lifespan=lifespan,
        dependencies=[Depends(require_api_key(key))] if key is not None else None,
    )
    app.state.scorer = scorer

    def reply(status: int, headers: dict[str, str] | None = None) -> Callable[..., Awaitable[Response]]:
        async def handler(_: Request, exc: Exception) -> Response:
            return JSONResponse({"detail": str(exc)}, status_code=status, headers=headers)

        return handler

    async def invalid_request(_: Request, exc: Exception) -> Response:
        # pydantic's own list echoes the input, which may be megabytes: name the fields, not the values.
        errors = [
            {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", "")), "type": e.get("type")}
            for e in getattr(exc, "errors", list)()[:10]
        ]
        summary = "; ".join(f"{'.'.join(e['loc']) or 'body'}: {e['msg']}" for e in errors)
        return JSONResponse({"detail": f"invalid request: {summary}", "errors": errors}, status_code=422)

    async def http_error(request: Request, exc: Exception) -> Response:
        status, detail = getattr(exc, "status_code", 500), str(getattr(exc, "detail", ""))
        if status == 400 and detail == "There was an error parsing the body":  # FastAPI's words, too vague
            detail = "the body could not be read as JSON: send UTF-8 JSON nested at most a few hundred deep"
        headers = getattr(exc, "headers", None)
        return JSONResponse({"detail": detail}, status_code=status, headers=headers)

    async def internal(_: Request, exc: Exception) -> Response:
        log.error("reward server: unexpected %s", type(exc).__name__, exc_info=exc)
        return JSONResponse(
            {"detail": f"internal error ({type(exc).__name__}); the server's log has the details"},
            status_code=500,
        )

    app.add_exception_handler(OverloadedError, reply(429, {"Retry-After": "1"}))
    app.add_exception_handler(DeadlineError, reply(503, {"Retry-After": "1"}))
    app.add_exception_handler(BatchTooLargeError, reply(413))
    app.add_exception_handler(RequirementsNotAllowedError, reply(403))
    app.add_exception_handler(UnauthorizedError, reply(401, {"WWW-Authenticate": "Bearer"}))
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, internal)

    @app.get("/health", response_model=Health)
    async def health() -> Response:
        body = Health(
            version=_version(),
            pending_items=scorer.pending_items,
            max_pending_items=cfg.scoring.max_pending_items,
            max_batch=cfg.scoring.max_batch,
        )
        return Response(body.model_dump_json(), media_type="application/json")

    @app.post("/v1/score", response_model=ScoreResponse, responses=ERROR_RESPONSES)
    async def score(request: ScoreRequest) -> Response:
        """Score a batch; each item is judged alone, and a malformed item scores 0 with a reason."""
        result = await scorer.score(request)
        return Response(result.model_dump_json(), media_type="application/json")

    @app.post("/get_reward", response_model=OpenRLHFResponse, responses=ERROR_RESPONSES)
    async def get_reward(request: OpenRLHFRequest) -> Response:
        """OpenRLHF's remote reward protocol (`--reward.remote_url http://host:port/get_reward`)."""
        result = await scorer.score_openrlhf(request)
        return Response(result.model_dump_json(), media_type="application/json")

    @app.post("/v1/score_conversation", response_model=ConversationScore, responses=ERROR_RESPONSES)
    async def score_conversation_route(request: ConversationRequest) -> Response:
        """A finished tool conversation (ToolEnv's turn rule): its final answer judged, plus shaping."""
        result = await score_conversation(scorer, request)
        return Response(result.model_dump_json(), media_type="application/json")

    return BodyLimit(RedactHostPaths(app), cfg.max_body_bytes)


class ErrorBody(BaseModel):
    """Every error reply: a message saying what was wrong (422 adds the fields at fault)."""

    detail: str
    errors: list[dict[str, Any]] | None = None


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": what}
    for code, what in [
        (400, "The body is not JSON."),
        (401, "No API key, or a wrong one."),
        (403, "An item names requirements the operator did not prepare or allow."),
        (413, "The body or the batch is over the server's limit."),
        (422, "The request's envelope is malformed."),
        (429, "Busy: retry after Retry-After seconds."),
        (503, "Not scored within the deadline: retry after Retry-After seconds."),
    ]
}


def app_from_env() -> Any:
    """App factory for uvicorn worker processes: the config comes as JSON in $LOONG_REWARD_SERVER_CONFIG."""
    raw = os.environ.get(CONFIG_ENV)
    return create_app(ServerConfig.model_validate_json(raw) if raw else None)


def serve(config: ServerConfig | None = None) -> None:
    """Run the server in the foreground until SIGINT/SIGTERM, which answer the batches in flight first."""
    import uvicorn

    cfg = config or ServerConfig()
    warn_if_open(cfg.host, cfg.port, api_key=cfg.key())
    if threading.current_thread() is threading.main_thread():
        # uvicorn re-raises SIGTERM once its graceful shutdown is done; exit 0 then, with atexit cleanup run.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    common: dict[str, Any] = {
        "host": cfg.host,
        "port": cfg.port,
        "limit_concurrency": cfg.limit_concurrency,
        "timeout_keep_alive": 30,
        "timeout_graceful_shutdown": cfg.scoring.request_timeout_s + SHUTDOWN_GRACE_S,
        "log_level": "warning",
    }
    if cfg.workers == 1:
        uvicorn.run(create_app(cfg), **common)
    else:  # worker processes import the app by name, so the config travels in the environment
        os.environ[CONFIG_ENV] = cfg.model_dump_json()
        # the cores are shared out: each worker's sympy pool gets its part (unless the operator chose)
        os.environ.setdefault(WORKERS_ENV, str(max(1, usable_cores() // cfg.workers)))
        uvicorn.run(
            "loong_env.integrations.reward_server:app_from_env", factory=True, workers=cfg.workers, **common
        )


Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class BodyLimit:
    """ASGI middleware: a request body over `limit` bytes is answered 413 before it is parsed."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app, self.limit = app, limit

    def __getattr__(self, name: str) -> Any:  # app.state, app.openapi(), ... stay reachable
        return getattr(self.app, name)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or ()).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._reject(send, int(declared))
            return
        # No declared length (chunked): read the body here, bounded, and replay it to the app.
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.limit:
                await self._reject(send, size)
                return
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> MutableMapping[str, Any]:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": b"".join(chunks), "more_body": False}

        await self.app(scope, replay, send)

    async def _reject(self, send: Send, size: int) -> None:
        body = json.dumps(
            {
                "detail": f"request body of {size}+ bytes is over the limit of {self.limit} bytes; "
                "send smaller batches"
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class RedactHostPaths:
    """ASGI middleware: every reply body leaves with host paths replaced by placeholders (see `redact`)."""

    def __init__(self, app: Any, paths: HostPaths | None = None) -> None:
        self.app, self.paths = app, paths or HostPaths()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.app, name)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start: MutableMapping[str, Any] | None = None
        chunks: list[bytes] = []

        async def redacting_send(message: MutableMapping[str, Any]) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
                return
            if message["type"] != "http.response.body" or start is None:
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            body = self.paths.redact(b"".join(chunks).decode("utf-8", "surrogateescape"))
            data = body.encode("utf-8", "surrogateescape")
            headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
            headers.append((b"content-length", str(len(data)).encode()))
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": data})

        await self.app(scope, receive, redacting_send)
