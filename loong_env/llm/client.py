"""LLMClient: one async chat client for generators, the CoT pipeline and the demo, with retries and fallbacks.

The retry policy is ours (the openai client's own retries are off) so it is observable: exponential backoff
with jitter on 429 / 5xx / timeouts / dropped connections, honouring Retry-After; then the next endpoint or
model in `fallbacks`; then an `LLMError` carrying every attempt.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Self

import openai
from pydantic import BaseModel

from loong_env.errors import ConfigError
from loong_env.llm.cache import ResponseCache, request_key
from loong_env.llm.config import Endpoint, LLMConfig, ModelPrice, RetryPolicy
from loong_env.llm.errors import LLMConfigError, LLMRejectedError, LLMUnavailableError
from loong_env.llm.records import Attempt, Completion, Usage, UsageStats
from loong_env.llm.retry import BadResponse, classify, short

log = logging.getLogger(__name__)

Message = Mapping[str, Any]
SleepFn = Callable[[float], Awaitable[None]]
LOCAL_API_KEY = "sk-local-no-key-needed"


def json_schema_format(schema: dict[str, Any] | type[BaseModel], name: str | None = None) -> dict[str, Any]:
    """A `response_format` for structured output from a JSON schema or a pydantic model class."""
    if isinstance(schema, type) and issubclass(schema, BaseModel):
        name = name or schema.__name__
        schema = schema.model_json_schema()
    return {
        "type": "json_schema",
        "json_schema": {"name": name or "output", "schema": schema, "strict": True},
    }


class LLMClient:
    """Async chat client with a concurrency limit, retries, fallbacks, usage accounting and a response cache.

    Safe to share across tasks; it rebuilds its HTTP clients if used from a new event loop (e.g. a
    gymnasium wrapper that calls `asyncio.run` per step).
    """

    def __init__(
        self,
        config: LLMConfig | None = None,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        model: str | None = None,
        fallbacks: Sequence[Endpoint | Mapping[str, Any] | str] | None = None,
        max_concurrency: int | None = None,
        timeout_s: float | None = None,
        retry: RetryPolicy | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        prices: Mapping[str, ModelPrice | Mapping[str, float]] | None = None,
        config_file: str | os.PathLike[str] | None = None,
        sleep: SleepFn | None = None,
        rng: random.Random | None = None,
    ) -> None:
        overrides: dict[str, Any] = {
            "base_url": base_url,
            "api_key": api_key,
            "model": model,
            "max_concurrency": max_concurrency,
            "timeout_s": timeout_s,
            "retry": retry,
            "cache_dir": Path(cache_dir) if cache_dir is not None else None,
            "prices": dict(prices) if prices is not None else None,
        }
        if fallbacks is not None:
            overrides["fallbacks"] = [Endpoint(model=f) if isinstance(f, str) else f for f in fallbacks]
        if config is None:
            config = LLMConfig.load(config_file, **overrides)
        else:
            config = config.model_copy(update={k: v for k, v in overrides.items() if v is not None})
            config = LLMConfig.model_validate(config.model_dump())
        if config.base_url is not None and not config.model:
            raise LLMConfigError(
                f"base_url is {config.base_url!r} but no model is set: pass model=..., set LOONG_MODEL, "
                "or `model = ...` in the [llm] table of loong.toml."
            )
        self.config = config
        self.stats = UsageStats()
        self._sleep: SleepFn = sleep or asyncio.sleep
        self._rng = rng or random.Random()
        self._cache = ResponseCache(config.cache_dir) if config.cache_dir is not None else None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pid = os.getpid()
        self._semaphore: asyncio.Semaphore | None = None
        self._clients: dict[tuple[str, str], openai.AsyncOpenAI] = {}
        self._down_until: dict[str, float] = {}
        self._local: Any = None  # loong_env.local.LocalServer once started

    # -- public API ------------------------------------------------------------------------------

    @property
    def model(self) -> str:
        """The primary model id (for the local default: the local model's name)."""
        if self.config.base_url is None:
            from loong_env import local

            return (
                self._local.model
                if self._local is not None
                else str(self.config.model or local.DEFAULT_MODEL)
            )
        return str(self.config.model)

    async def chat(
        self,
        messages: Sequence[Message],
        *,
        temperature: float = 0.0,
        max_tokens: int = 1024,
        response_format: Mapping[str, Any] | type[BaseModel] | None = None,
        seed: int | None = None,
        n: int = 1,
        timeout_s: float | None = None,
        **extra: Any,
    ) -> Completion:
        """Send a chat request; retries and falls back per the config; raises an `LLMError` after giving up.

        `response_format` may be a pydantic class (structured output; read it with `completion.parse(cls)`).
        Any other OpenAI parameter (`top_p`, `stop`, ...) goes in `**extra` and is sent in the body as is.
        """
        if not messages:
            raise ConfigError("chat() needs at least one message, got none")
        params: dict[str, Any] = {"temperature": temperature, "max_tokens": max_tokens, "n": n, **extra}
        if isinstance(response_format, type) and issubclass(response_format, BaseModel):
            params["response_format"] = json_schema_format(response_format)
        elif response_format is not None:
            params["response_format"] = dict(response_format)
        if seed is not None:
            params["seed"] = seed
        endpoints = await self._endpoints()
        started = time.monotonic()
        self.stats.requests += 1

        cache_slot: Path | None = None
        if self._cache is not None:
            cache_slot = self._cache.next_slot(request_key(str(endpoints[0].model), messages, params))
            hit = self._cache.load(cache_slot)
            if hit is not None:
                self.stats.cache_hits += 1
                return hit.model_copy(update={"cached": True, "latency_s": time.monotonic() - started})

        completion = await self._call_with_fallbacks(
            endpoints, messages, params, timeout_s or self.config.timeout_s
        )
        completion.latency_s = time.monotonic() - started
        self._account(completion)
        if cache_slot is not None:
            ResponseCache.store(cache_slot, completion)
        return completion

    async def complete(self, prompt: str, *, system: str | None = None, **kwargs: Any) -> Completion:
        """`chat` with one user message (and an optional system message)."""
        messages: list[dict[str, str]] = [{"role": "system", "content": system}] if system else []
        messages.append({"role": "user", "content": prompt})
        return await self.chat(messages, **kwargs)

    async def close(self) -> None:
        """Close HTTP connections (the shared local server keeps running until process exit)."""
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            try:
                await client.close()
            except RuntimeError:  # its event loop is already closed; nothing left to release
                pass

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        where = self.config.base_url or "local"
        return (
            f"LLMClient(model={self.config.model!r}, base_url={where!r}, "
            f"fallbacks={len(self.config.fallbacks)})"
        )

    # -- internals -------------------------------------------------------------------------------

    async def _endpoints(self) -> list[Endpoint]:
        """Concrete endpoints; starts the embedded local model first if no base_url is configured."""
        if self.config.base_url is None and self._local is None:
            from loong_env import local

            try:
                self._local = await asyncio.to_thread(
                    local.shared_server,
                    self.config.model or local.DEFAULT_MODEL,
                    n_parallel=self.config.local_n_parallel,
                    n_ctx=self.config.local_n_ctx,
                    threads=self.config.local_threads,
                )
            except local.LocalModelError as exc:
                raise LLMConfigError(
                    f"No base_url is configured, so the embedded local model is the default, but it could "
                    f"not start:\n{exc}\nOr point the client at a server: LOONG_BASE_URL / base_url=..."
                ) from exc
        out = []
        for ep in self.config.endpoints():
            if ep.base_url is None:
                ep = Endpoint(base_url=self._local.base_url, model=self._local.model, api_key=LOCAL_API_KEY)
            out.append(ep)
        return out

    def _bind_loop(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if self._loop is not loop or self._semaphore is None or self._pid != os.getpid():
            # a new loop, or a forked child: the old pools belong to another loop or process;
            # drop, never close
            self._loop, self._pid = loop, os.getpid()
            self._semaphore = asyncio.Semaphore(self.config.max_concurrency)
            self._clients = {}  # httpx pools belong to the loop that created them
        return self._semaphore

    def _client_for(self, ep: Endpoint) -> openai.AsyncOpenAI:
        key = (str(ep.base_url), ep.api_key or "")
        client = self._clients.get(key)
        if client is None:
            client = openai.AsyncOpenAI(
                base_url=ep.base_url,
                api_key=ep.api_key or LOCAL_API_KEY,
                max_retries=0,  # the retry policy is ours, so it is observable and testable
                timeout=self.config.timeout_s,
            )
            self._clients[key] = client
        return client

    def _ordered(self, endpoints: list[Endpoint]) -> list[Endpoint]:
        """Endpoints in configured order, those cooling down after a recent give-up moved to the back."""
        now = time.monotonic()
        return sorted(endpoints, key=lambda ep: self._down_until.get(ep.label, 0.0) > now)  # stable sort

    async def _call_with_fallbacks(
        self, endpoints: list[Endpoint], messages: Sequence[Message], params: dict[str, Any], timeout_s: float
    ) -> Completion:
        policy = self.config.retry
        semaphore = self._bind_loop()
        attempts: list[Attempt] = []
        last_retryable = True
        for order, ep in enumerate(self._ordered(endpoints)):
            if order > 0:
                self.stats.fallbacks_used += 1
                log.warning("LLM: falling back to %s", ep.label)
            for try_index in range(policy.max_attempts):
                sent_at, t0 = time.time(), time.monotonic()
                try:
                    async with semaphore:
                        self.stats.attempts += 1
                        response = await self._client_for(ep).chat.completions.create(
                            model=str(ep.model),
                            messages=list(messages),  # type: ignore[arg-type]
                            timeout=timeout_s,
                            extra_body=params,
                        )
                    completion = self._to_completion(response, ep)
                except Exception as exc:  # noqa: BLE001 - _classify re-raises anything that is not an API failure
                    outcome, status, retry_after, retryable = classify(exc)
                    attempt = Attempt(
                        endpoint=str(ep.base_url),
                        model=str(ep.model),
                        outcome=outcome,  # type: ignore[arg-type]
                        status_code=status,
                        error=short(exc),
                        retry_after_s=retry_after,
                        started_at=sent_at,
                        duration_s=time.monotonic() - t0,
                    )
                    attempts.append(attempt)
                    last_retryable = retryable
                    if not retryable or try_index + 1 >= policy.max_attempts:
                        break
                    if retry_after is not None and retry_after > policy.max_retry_after_s:
                        attempt.error += (
                            f" (Retry-After {retry_after:.0f}s exceeds {policy.max_retry_after_s:.0f}s)"
                        )
                        break
                    delay = policy.backoff(try_index, self._rng)
                    if policy.honor_retry_after and retry_after is not None:
                        delay = max(delay, retry_after)
                    attempt.wait_s = delay
                    self.stats.retries += 1
                    log.info("LLM: %s on %s, retry in %.2fs", outcome, ep.label, delay)
                    await self._sleep(delay)
                    continue
                attempts.append(
                    Attempt(
                        endpoint=str(ep.base_url),
                        model=str(ep.model),
                        outcome="ok",
                        started_at=sent_at,
                        duration_s=time.monotonic() - t0,
                    )
                )
                self._down_until.pop(ep.label, None)
                completion.attempts = attempts
                return completion
            if policy.cooldown_s > 0 and last_retryable:
                self._down_until[ep.label] = time.monotonic() + policy.cooldown_s
        self.stats.failures += 1
        tried = ", ".join(ep.label for ep in endpoints)
        if last_retryable:
            raise LLMUnavailableError(f"LLM request failed on every endpoint ({tried}); giving up.", attempts)
        raise LLMRejectedError(f"LLM request was rejected ({tried}).", attempts)

    def _to_completion(self, response: Any, ep: Endpoint) -> Completion:
        choices = getattr(response, "choices", None)
        if not choices:
            raise BadResponse(f"response from {ep.label} has no choices: {str(response)[:200]}")
        texts = [(c.message.content or "") if c.message is not None else "" for c in choices]
        usage = Usage(
            prompt_tokens=getattr(response.usage, "prompt_tokens", 0) or 0,
            completion_tokens=getattr(response.usage, "completion_tokens", 0) or 0,
        )
        model = getattr(response, "model", None) or str(ep.model)
        calls = (getattr(choices[0].message, "tool_calls", None) or []) if choices[0].message else []
        return Completion(
            tool_calls=[c.model_dump(exclude_none=True) for c in calls],
            text=texts[0],
            texts=texts,
            finish_reason=choices[0].finish_reason,
            finish_reasons=[c.finish_reason for c in choices],
            model=model,
            usage=usage,
            cost_usd=self._cost(model, usage, requested=str(ep.model)),
            endpoint=str(ep.base_url),
        )

    def _cost(self, model: str, usage: Usage, *, requested: str) -> float | None:
        price = self.config.prices.get(model) or self.config.prices.get(requested)
        if price is None:
            return None
        return (
            usage.prompt_tokens * price.input_per_mtok + usage.completion_tokens * price.output_per_mtok
        ) / 1e6

    def _account(self, completion: Completion) -> None:
        stats = self.stats
        stats.prompt_tokens += completion.usage.prompt_tokens
        stats.completion_tokens += completion.usage.completion_tokens
        stats.cost_usd += completion.cost_usd or 0.0
        per = stats.by_model.setdefault(completion.model, Usage())
        per.prompt_tokens += completion.usage.prompt_tokens
        per.completion_tokens += completion.usage.completion_tokens
