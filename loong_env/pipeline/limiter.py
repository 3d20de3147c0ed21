"""AdaptiveLimiter: how many LLM requests may be in flight, adjusted like TCP's AIMD congestion control.

Additive increase: every `limit` clean completions raise the limit by one (up to `max_limit`).
Multiplicative decrease: a sign of overload halves it (down to `min_limit`): a 429, a 5xx, a timeout or a
dropped connection seen in a request's attempts (LLMClient retries them; the limiter still hears about
them), or a completion whose time per generated token is `latency_factor` times the best of the recent
ones (a window, cleared at such a jump, so a machine that stays busier sets a new normal instead of
halving forever). Requests already in flight when the limit drops cannot trigger a second drop for the
same burst.

Waiting requests are admitted by priority, then arrival: the pipeline gives each request its problem's
input index (`request_priority`), so an earlier problem's follow-up (a refinement, a hint) goes before a
later problem's first samples and problems finish roughly in input order instead of all at the end. A
request that does not fit yet is never overtaken by a lower-priority one.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections import deque
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from contextvars import ContextVar

from pydantic import BaseModel, ConfigDict, Field

from loong_env.errors import ConfigError
from loong_env.llm import Attempt

OVERLOAD = frozenset({"rate_limited", "server_error", "timeout", "connection"})

# Lower goes first; set per problem (its input index) by the pipeline, inherited by the tasks it starts.
request_priority: ContextVar[float] = ContextVar("request_priority", default=0.0)


class LimiterConfig(BaseModel):
    """Bounds and reaction of the adaptive concurrency limit."""

    model_config = ConfigDict(extra="forbid")

    max_limit: int = Field(default=8, ge=1, description="Never more requests in flight than this.")
    initial: int | None = Field(default=None, ge=1, description="Start here (default: max_limit).")
    min_limit: int = Field(default=1, ge=1)
    decrease: float = Field(default=0.5, gt=0, lt=1, description="Multiply the limit by this on overload.")
    latency_factor: float | None = Field(
        default=4.0,
        gt=1,
        description="Seconds per token this many times the best seen is overload (None: off).",
    )
    latency_min_tokens: int = Field(default=16, ge=1, description="Shorter completions say nothing of speed.")
    latency_window: int = Field(default=32, ge=1, description="Recent completions the best speed comes from.")


class LimiterStats(BaseModel):
    """What the limiter did, for the live display and the manifest."""

    limit: float
    in_flight: int = 0
    increases: int = 0
    decreases: int = 0
    overloads: dict[str, int] = Field(default_factory=dict)


class AdaptiveLimiter:
    """A weighted semaphore whose size follows the server's health (see the module docstring)."""

    def __init__(self, config: LimiterConfig | None = None) -> None:
        self.config = config or LimiterConfig()
        start = self.config.initial or self.config.max_limit
        if self.config.min_limit > self.config.max_limit:
            raise ConfigError(f"min_limit {self.config.min_limit} exceeds max_limit {self.config.max_limit}")
        self.stats = LimiterStats(limit=float(min(max(start, self.config.min_limit), self.config.max_limit)))
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiters: list[tuple[float, int, int, asyncio.Future[None]]] = []  # heap: priority, arrival
        self._arrivals = itertools.count()
        self._last_decrease = float("-inf")
        self._recent_s_per_token: deque[float] = deque(maxlen=self.config.latency_window)
        self._clean = 0  # clean completions since the limit last changed

    @property
    def limit(self) -> int:
        return max(self.config.min_limit, int(self.stats.limit))

    def _queue(self) -> list[tuple[float, int, int, asyncio.Future[None]]]:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # a new event loop: waiters and holders of the old one are gone
            self._loop, self._waiters = loop, []
            self.stats.in_flight = 0
        return self._waiters

    def _grant(self) -> None:
        """Admit waiters by priority, then arrival, while they fit; the first that does not fit waits."""
        while self._waiters:
            _, _, weight, future = self._waiters[0]
            if future.done():  # cancelled while waiting
                heapq.heappop(self._waiters)
                continue
            # a request wider than the whole limit runs alone rather than never
            if self.stats.in_flight and self.stats.in_flight + weight > self.limit:
                return
            heapq.heappop(self._waiters)
            self.stats.in_flight += weight
            future.set_result(None)

    @asynccontextmanager
    async def slot(self, weight: int = 1) -> AsyncIterator[float]:
        """Hold `weight` slots (an n>1 request holds n) for the body; waiters go by `request_priority`, then
        arrival. Yields the time it was granted.
        """
        queue = self._queue()
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(queue, (request_priority.get(), next(self._arrivals), weight, future))
        self._grant()
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():  # granted just as it was cancelled: give it back
                self.stats.in_flight -= weight
                self._grant()
            raise
        try:
            yield time.monotonic()
        finally:
            self.stats.in_flight -= weight
            self._grant()

    def observe(
        self,
        started_at: float,
        attempts: Sequence[Attempt],
        *,
        latency_s: float = 0.0,
        completion_tokens: int = 0,
    ) -> None:
        """Adjust the limit after one request that was granted at `started_at` (monotonic time)."""
        overloads = [a.outcome for a in attempts if a.outcome in OVERLOAD]
        for outcome in overloads:
            self.stats.overloads[outcome] = self.stats.overloads.get(outcome, 0) + 1
        slow = False
        cfg = self.config
        if not overloads and cfg.latency_factor is not None and completion_tokens >= cfg.latency_min_tokens:
            per_token = latency_s / completion_tokens
            recent = self._recent_s_per_token
            slow = bool(recent) and per_token > cfg.latency_factor * min(recent)
            if slow:  # one decrease per jump: the speed after it is measured afresh
                recent.clear()
            recent.append(per_token)
            if slow:
                self.stats.overloads["slow"] = self.stats.overloads.get("slow", 0) + 1
        if overloads or slow:
            if started_at > self._last_decrease:  # one decrease per burst
                self.stats.limit = max(float(cfg.min_limit), self.stats.limit * cfg.decrease)
                self._last_decrease = time.monotonic()
                self.stats.decreases += 1
            self._clean = 0
            return
        if self.stats.limit < cfg.max_limit:
            self._clean += 1
            if self._clean >= self.limit:  # a full window of clean completions
                self._clean = 0
                self.stats.limit = min(float(cfg.max_limit), float(self.limit + 1))
                self.stats.increases += 1
                self._grant_if_in_loop()

    def _grant_if_in_loop(self) -> None:
        """A raised limit admits waiters now (observe() may also be called with no loop, e.g. in a test)."""
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            return
        if running is self._loop:
            self._grant()
