"""Caller: the pipeline's one road to the LLM; every request waits for the adaptive limiter and reports back.

`sample(messages, n)` draws n completions the cheapest way the server allows: one request with n choices
(the prompt is processed once), split into narrower requests when the server caps n (llama.cpp allows
n <= its parallel slots and answers 400 above), or n concurrent single requests when it ignores n.
What it learns about the server is kept for the rest of the run. Retries and fallbacks are LLMClient's.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel

from loong_env.llm import Completion, LLMError, LLMRejectedError
from loong_env.pipeline.limiter import AdaptiveLimiter


class Sample(BaseModel):
    """One drawn completion with its share of the cost."""

    text: str
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    tokens_estimated: bool = False
    latency_s: float = 0.0

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


def split_usage(completion_tokens: int, texts: Sequence[str]) -> tuple[list[int], bool]:
    """Completion tokens per choice, and whether they are estimated.

    OpenAI reports the sum over choices; llama.cpp's server reports the first choice only. Whichever
    reading gives a chars-per-token ratio nearer to ~4 (English text and code) is taken, then the tokens
    are shared out by characters.
    """
    if len(texts) <= 1 or completion_tokens <= 0:
        return [completion_tokens] + [0] * (len(texts) - 1), False
    lengths = [max(1, len(t)) for t in texts]
    as_sum = sum(lengths) / completion_tokens
    as_first = lengths[0] / completion_tokens
    first_only = abs(math.log(as_first / 4.0)) < abs(math.log(as_sum / 4.0))
    per_char = completion_tokens / (lengths[0] if first_only else sum(lengths))
    return [max(1, round(n * per_char)) for n in lengths], True


class Caller:
    """Sends chat requests through an AdaptiveLimiter; safe to share across tasks.

    Tokens, failures and latencies are counted once, by the client (`LLMClient.usage`) and the run's metrics;
    the caller keeps only what it learned about the server: how many choices one request may ask for.
    """

    def __init__(
        self, client: Any, limiter: AdaptiveLimiter | None = None, *, n_per_request: int | None = None
    ) -> None:
        self.client = client
        self.limiter = limiter or AdaptiveLimiter()
        self.n_per_request = n_per_request

    @property
    def model(self) -> str | None:
        return getattr(self.client, "model", None)

    async def chat(self, messages: Sequence[dict[str, Any]], **kwargs: Any) -> Completion:
        """One request (n choices hold n slots); the limiter learns from its attempts and speed."""
        n = int(kwargs.get("n", 1))
        async with self.limiter.slot(min(n, self.limiter.config.max_limit)) as granted:
            try:
                completion: Completion = await self.client.chat(list(messages), **kwargs)
            except LLMError as exc:
                self.limiter.observe(granted, exc.attempts)
                raise
        per_choice, _ = split_usage(completion.usage.completion_tokens, completion.texts or [completion.text])
        self.limiter.observe(
            granted,
            completion.attempts,
            latency_s=completion.latency_s,
            completion_tokens=max(per_choice) if per_choice else 0,
        )
        return completion

    async def sample(self, messages: Sequence[dict[str, Any]], n: int, **kwargs: Any) -> list[Sample]:
        """n completions of the same messages (temperature > 0), in as few requests as the server allows."""
        width = min(n, self.n_per_request or n)
        sizes = [width] * (n // width) + ([n % width] if n % width else [])
        parts = await asyncio.gather(*(self._draw(messages, size, **kwargs) for size in sizes))
        return [s for part in parts for s in part]

    async def _draw(self, messages: Sequence[dict[str, Any]], size: int, **kwargs: Any) -> list[Sample]:
        if size == 1:
            return _samples(await self.chat(messages, **kwargs))
        try:
            completion = await self.chat(messages, n=size, **kwargs)
        except LLMRejectedError:
            # the server refused this many choices in one request: narrow, remember, and try again
            # (from the size refused, not from what others learned meanwhile: concurrent refusals of the
            # same width must not halve it again and again)
            narrower = max(1, size // 2)
            self.n_per_request = min(self.n_per_request or narrower, narrower)
            return await self.sample(messages, size, **kwargs)
        got = _samples(completion)
        if len(got) < size:  # the server ignores n: the rest as single requests
            self.n_per_request = max(1, len(got))
            rest = await asyncio.gather(*(self._draw(messages, 1, **kwargs) for _ in range(size - len(got))))
            got += [s for part in rest for s in part]
        return got[:size]


def _samples(completion: Completion) -> list[Sample]:
    texts = completion.texts or [completion.text]
    tokens, estimated = split_usage(completion.usage.completion_tokens, texts)
    reasons = completion.finish_reasons or [completion.finish_reason] * len(texts)
    prompt_share = completion.usage.prompt_tokens // len(texts)
    return [
        Sample(
            text=t,
            finish_reason=reasons[i] if i < len(reasons) else None,
            prompt_tokens=prompt_share,
            completion_tokens=tokens[i],
            tokens_estimated=estimated,
            latency_s=completion.latency_s,
        )
        for i, t in enumerate(texts)
    ]
