"""Timed stand-ins for an LLM client and a sandbox: each call they forward becomes a `call` metrics record.

    client = TimedClient(client, metrics)
    sandbox = TimedRunner(sandbox, metrics)

Everything else (attributes, close(), the model name) is passed through, so they drop in wherever the
wrapped object was used. A failed call is recorded with its error kind (`cancelled` for a call cut off
when a run stops) and re-raised unchanged.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from loong_env.runs.metrics import MetricsWriter


def _kind(exc: BaseException) -> str:
    return "cancelled" if isinstance(exc, asyncio.CancelledError) else type(exc).__name__


def usage_tokens(completion: Any) -> int:
    """Total tokens of a completion, whatever shape its usage record has (ours, openai's, a dict)."""
    usage = getattr(completion, "usage", None)
    if usage is None:
        return 0
    if isinstance(usage, dict):
        return int(usage.get("total_tokens") or 0)
    return int(getattr(usage, "total_tokens", 0) or 0)


class TimedClient:
    """An LLM client whose every `chat()` is timed and recorded as an `llm` call."""

    def __init__(self, client: Any, metrics: MetricsWriter) -> None:
        self.wrapped = client
        self.metrics = metrics

    async def chat(self, messages: Any, **kwargs: Any) -> Any:
        """The wrapped client's chat, recorded with its latency, tokens, cost, or error kind."""
        started = time.perf_counter()
        try:
            completion = await self.wrapped.chat(messages, **kwargs)
        except BaseException as exc:  # a cancelled call (run stopped, Ctrl-C) was still made: count it
            self.metrics.call("llm", time.perf_counter() - started, ok=False, error=_kind(exc))
            raise
        cost = getattr(completion, "cost_usd", None)
        self.metrics.call(
            "llm", time.perf_counter() - started, tokens=usage_tokens(completion), cost_usd=cost
        )
        return completion

    def __getattr__(self, name: str) -> Any:
        return getattr(self.wrapped, name)


class TimedRunner:
    """A sandbox whose every `run()` is timed and recorded as a `sandbox` call (ok = the code ran cleanly)."""

    def __init__(self, runner: Any, metrics: MetricsWriter) -> None:
        self.wrapped = runner
        self.metrics = metrics

    async def run(self, code: str, *args: Any, **kwargs: Any) -> Any:
        """The wrapped sandbox's run, recorded with its latency and, unless ok, its status."""
        started = time.perf_counter()
        try:
            result = await self.wrapped.run(code, *args, **kwargs)
        except BaseException as exc:
            self.metrics.call("sandbox", time.perf_counter() - started, ok=False, error=_kind(exc))
            raise
        ok = bool(getattr(result, "ok", True))
        status = getattr(result, "status", None)
        error = None if ok else str(getattr(status, "value", status))
        self.metrics.call("sandbox", time.perf_counter() - started, ok=ok, error=error)
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self.wrapped, name)
