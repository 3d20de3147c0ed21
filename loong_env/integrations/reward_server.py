"""`loong serve-reward`'s HTTP face: a FastAPI app over `RewardScorer`, run by uvicorn.

Endpoints (OpenAPI docs at /docs):
  POST /get_reward   OpenRLHF's remote reward protocol: {"query", "prompts", "labels"} -> {"rewards", ...}
  POST /v1/score     our typed API: ScoreRequest -> ScoreResponse
  GET  /health       liveness and load

Overload never hangs: a body over `max_body_bytes` is 413, a batch over `max_batch` 413, more items than
the scorer admits 429, a request past its deadline 503 (both with Retry-After), and uvicorn answers 503
past `limit_concurrency` connections. Needs the `server` extra (fastapi, uvicorn).
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from loong_env.equivalence.pool import WORKERS_ENV, usable_cores
from loong_env.integrations.reward_models import (
    Health,
    OpenRLHFRequest,
    OpenRLHFResponse,
    ScoreRequest,
    ScoreResponse,
)
from loong_env.integrations.reward_scoring import (
    BatchTooLargeError,
    DeadlineError,
    OverloadedError,
    RewardScorer,
    ScoringConfig,
)

CONFIG_ENV = "LOONG_REWARD_SERVER_CONFIG"  # JSON ServerConfig handed to each uvicorn worker process


class ServerConfig(BaseModel):
    """Where the reward server listens and how much it takes in; `scoring` bounds the work itself."""

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
    scoring: ScoringConfig = Field(default_factory=ScoringConfig)


def _version() -> str:
    try:
        return version("loong-env")
    except PackageNotFoundError:
        return "unknown"


def create_app(config: ServerConfig | None = None, *, scorer: RewardScorer | None = None) -> Any:
    """The ASGI app: endpoints, error mapping and the body limit around one scorer."""
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse, Response

    cfg = config or ServerConfig()
    scorer = scorer or RewardScorer(cfg.scoring)

    @asynccontextmanager
    async def lifespan(_: Any) -> AsyncIterator[None]:
        await scorer.start()
        yield

    app = FastAPI(
        title="loong_env reward server",
        version=_version(),
        description="Scores LLM answers with loong_env's verifiers (boxed and code answers, plug-ins).",
        lifespan=lifespan,
    )
    app.state.scorer = scorer

    def retry_later(status: int) -> Callable[[Request, Exception], Awaitable[Response]]:
        async def handler(_: Request, exc: Exception) -> Response:
            return JSONResponse({"detail": str(exc)}, status_code=status, headers={"Retry-After": "1"})

        return handler

    async def too_large(_: Request, exc: Exception) -> Response:
        return JSONResponse({"detail": str(exc)}, status_code=413)

    app.add_exception_handler(OverloadedError, retry_later(429))
    app.add_exception_handler(DeadlineError, retry_later(503))
    app.add_exception_handler(BatchTooLargeError, too_large)

    @app.get("/health", response_model=Health)
    async def health() -> Response:
        body = Health(
            version=_version(),
            pending_items=scorer.pending_items,
            max_pending_items=cfg.scoring.max_pending_items,
            max_batch=cfg.scoring.max_batch,
        )
        return Response(body.model_dump_json(), media_type="application/json")

    @app.post("/v1/score", response_model=ScoreResponse)
    async def score(request: ScoreRequest) -> Response:
        """Score a batch; each item is judged alone, and a malformed item scores 0 with a reason."""
        result = await scorer.score(request)
        return Response(result.model_dump_json(), media_type="application/json")

    @app.post("/get_reward", response_model=OpenRLHFResponse)
    async def get_reward(request: OpenRLHFRequest) -> Response:
        """OpenRLHF's remote reward protocol (`--reward.remote_url http://host:port/get_reward`)."""
        result = await scorer.score_openrlhf(request)
        return Response(result.model_dump_json(), media_type="application/json")

    return BodyLimit(app, cfg.max_body_bytes)


def app_from_env() -> Any:
    """App factory for uvicorn worker processes: the config comes as JSON in $LOONG_REWARD_SERVER_CONFIG."""
    raw = os.environ.get(CONFIG_ENV)
    return create_app(ServerConfig.model_validate_json(raw) if raw else None)


def serve(config: ServerConfig | None = None) -> None:
    """Run the server in the foreground until interrupted (uvicorn handles SIGINT/SIGTERM)."""
    import uvicorn

    cfg = config or ServerConfig()
    common: dict[str, Any] = {
        "host": cfg.host,
        "port": cfg.port,
        "limit_concurrency": cfg.limit_concurrency,
        "timeout_keep_alive": 30,
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
