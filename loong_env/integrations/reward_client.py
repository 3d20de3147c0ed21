"""A client of `loong serve-reward`: typed batches in, typed verdicts out, the API key sent for you.

    async with RewardClient("http://reward-host:5000") as client:   # key: $LOONG_REWARD_API_KEY
        scored = await client.score([{"response": "\\boxed{42}", "reference": "42"}])

It sends the key as `Authorization: Bearer <key>`, waits out 429/503 answers (the server's Retry-After)
a few times, and raises `RewardServerError` with the server's message for anything else.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping, Sequence
from typing import Any, Self

import httpx

from loong_env import bridge
from loong_env.integrations.errors import RewardServerError
from loong_env.integrations.reward_auth import API_KEY_ENV
from loong_env.integrations.reward_models import ScoreItem, ScoreRequest, ScoreResponse

RETRY_STATUSES = frozenset({429, 503})


class RewardClient:
    """Scores batches on a reward server; one connection pool, usable from async code or, via
    `score_sync`, from plain code."""

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000",
        *,
        api_key: str | None = None,
        timeout_s: float = 300.0,
        retries: int = 5,
    ) -> None:
        self._key = api_key if api_key is not None else os.environ.get(API_KEY_ENV, "").strip() or None
        self.base_url, self.retries, self.timeout_s = base_url.rstrip("/"), retries, timeout_s
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            headers = {"Authorization": f"Bearer {self._key}"} if self._key else {}
            self._client = httpx.AsyncClient(base_url=self.base_url, headers=headers, timeout=self.timeout_s)
        return self._client

    async def score(
        self, items: Sequence[ScoreItem | Mapping[str, Any]], *, format_weight: float | None = None
    ) -> ScoreResponse:
        """Verdicts for a batch, in order (`POST /v1/score`)."""
        request = ScoreRequest(
            items=[ScoreItem.model_validate(i) if isinstance(i, Mapping) else i for i in items],
            format_weight=format_weight,
        )
        body = request.model_dump(mode="json", exclude_none=True)
        reply = await self._post("/v1/score", body)
        return ScoreResponse.model_validate_json(reply.content)

    def score_sync(
        self, items: Sequence[ScoreItem | Mapping[str, Any]], *, format_weight: float | None = None
    ) -> ScoreResponse:
        """Blocking twin of `score` (a fresh connection pool per call)."""

        async def once() -> ScoreResponse:
            opts = {"api_key": self._key, "timeout_s": self.timeout_s, "retries": self.retries}
            async with RewardClient(self.base_url, **opts) as c:
                return await c.score(items, format_weight=format_weight)

        return bridge.run(once())

    async def _post(self, path: str, body: Any) -> httpx.Response:
        attempt = 0
        while True:
            try:
                reply = await self._http().post(path, json=body)
            except httpx.TransportError as exc:
                raise RewardServerError(f"reward server {self.base_url} unreachable: {exc}") from exc
            if reply.status_code == 200:
                return reply
            if reply.status_code not in RETRY_STATUSES or attempt >= self.retries:
                raise RewardServerError(
                    f"reward server {self.base_url}{path} answered {reply.status_code}: {_detail(reply)}",
                    status=reply.status_code,
                )
            attempt += 1
            await asyncio.sleep(_retry_after(reply))

    async def aclose(self) -> None:
        """Close the connection pool."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()


def _retry_after(reply: httpx.Response) -> float:
    try:
        return min(30.0, max(0.1, float(reply.headers.get("retry-after", "1"))))
    except ValueError:
        return 1.0


def _detail(reply: httpx.Response) -> str:
    try:
        detail = reply.json().get("detail")
    except ValueError:
        detail = None
    return detail if isinstance(detail, str) else reply.text[:500]
