"""LLMClient's failure policy, observed against a real scripted HTTP server on 127.0.0.1 (no mocks)."""

from __future__ import annotations

import asyncio
import email.utils
import random
import time

import pytest
from scripted_openai_server import Drop, Hang, Raw, Reply, Status

from loong_env.llm import (
    Endpoint,
    LLMClient,
    LLMConfig,
    LLMConfigError,
    LLMRejectedError,
    LLMUnavailableError,
    ModelPrice,
    RetryPolicy,
)

pytestmark = pytest.mark.timeout(30)

FAST = RetryPolicy(max_attempts=4, backoff_base_s=0.01, backoff_max_s=0.05, jitter=0.0)
HELLO = [{"role": "user", "content": "hello"}]


class RecordingSleep:
    """Sleep hook that records each requested delay and really sleeps at most `cap` seconds."""

    def __init__(self, cap: float = 0.0) -> None:
        self.delays: list[float] = []
        self.cap = cap

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        await asyncio.sleep(min(seconds, self.cap))


async def test_429_with_retry_after_then_500_then_success(openai_stub):
    stub = openai_stub([Status(429, retry_after=0.3), Status(500), Reply("fine")])
    sleep = RecordingSleep(cap=10)
    async with LLMClient(base_url=stub.base_url, model="m", retry=FAST, sleep=sleep) as client:
        completion = await client.chat(HELLO, max_tokens=5)

    assert completion.text == "fine"
    assert [a.outcome for a in completion.attempts] == ["rate_limited", "server_error", "ok"]
    assert completion.attempts[0].retry_after_s == pytest.approx(0.3)
    # Retry-After beats the (tiny) backoff; the 500 gets the plain second backoff step.
    assert sleep.delays == [pytest.approx(0.3), pytest.approx(0.02)]
    arrivals = [r.arrived for r in stub.requests]
    assert len(arrivals) == 3
    assert arrivals[1] - arrivals[0] >= 0.3  # the server saw us wait at least what it asked for
    assert client.stats.retries == 2 and client.stats.attempts == 3


async def test_timeout_and_dropped_connection_are_retried(openai_stub):
    stub = openai_stub([Hang(30), Drop(), Reply("after faults")])
    async with LLMClient(base_url=stub.base_url, model="m", retry=FAST, timeout_s=0.5) as client:
        completion = await client.chat(HELLO, max_tokens=5)

    assert completion.text == "after faults"
    assert [a.outcome for a in completion.attempts] == ["timeout", "connection", "ok"]
    assert completion.attempts[0].duration_s >= 0.5
    assert len(stub.requests) == 3


async def test_malformed_body_is_retried_as_bad_response(openai_stub):
    stub = openai_stub([Raw('{"choices": []}'), Reply("good")])
    async with LLMClient(base_url=stub.base_url, model="m", retry=FAST) as client:
        completion = await client.chat(HELLO)
    assert [a.outcome for a in completion.attempts] == ["bad_response", "ok"]
    assert completion.text == "good"


async def test_backoff_grows_exponentially_within_jitter_bounds(openai_stub):
    stub = openai_stub([Status(503)] * 4, default=Reply("finally"))
    policy = RetryPolicy(
        max_attempts=5, backoff_base_s=1.0, backoff_multiplier=2.0, backoff_max_s=5.0, jitter=0.5
    )
    sleep = RecordingSleep()  # records, does not wait: the policy's numbers are what we check here
    async with LLMClient(
        base_url=stub.base_url, model="m", retry=policy, sleep=sleep, rng=random.Random(0)
    ) as client:
        completion = await client.chat(HELLO)

    assert completion.text == "finally"
    assert len(sleep.delays) == 4
    for i, delay in enumerate(sleep.delays):
        ceiling = min(5.0, 2.0**i)
        assert ceiling * 0.5 <= delay <= ceiling, (i, delay)
    assert [a.wait_s for a in completion.attempts[:-1]] == sleep.delays


async def test_fallback_endpoint_takes_over_and_broken_one_cools_down(openai_stub):
    broken = openai_stub(default=Status(503))
    healthy = openai_stub(default=Reply("from fallback"))
    async with LLMClient(
        base_url=broken.base_url,
        model="primary",
        fallbacks=[Endpoint(base_url=healthy.base_url, model="backup")],
        retry=RetryPolicy(max_attempts=2, backoff_base_s=0.01, jitter=0.0, cooldown_s=60),
    ) as client:
        first = await client.chat(HELLO)
        second = await client.chat(HELLO)

    assert first.text == "from fallback"
    assert first.endpoint == healthy.base_url and first.model == "backup"
    assert [(a.model, a.outcome) for a in first.attempts] == [
        ("primary", "server_error"),
        ("primary", "server_error"),
        ("backup", "ok"),
    ]
    # The primary kept failing, so the next request went straight to the fallback.
    assert len(broken.requests) == 2
    assert [a.model for a in second.attempts] == ["backup"]
    assert len(healthy.requests) == 2
    assert client.stats.fallbacks_used == 1


async def test_model_switching_on_the_same_server(openai_stub):
    stub = openai_stub(by_model={"big": [Status(429), Status(429)]}, default=Reply("small answered"))
    async with LLMClient(
        base_url=stub.base_url,
        model="big",
        fallbacks=["small"],
        retry=RetryPolicy(max_attempts=2, backoff_base_s=0.01, jitter=0.0),
    ) as client:
        completion = await client.chat(HELLO)
    assert completion.model == "small" and completion.text == "small answered"
    assert [r.model for r in stub.requests] == ["big", "big", "small"]


async def test_gives_up_with_typed_error_listing_every_attempt(openai_stub):
    first = openai_stub(default=Status(500, message="boom"))
    second = openai_stub(default=Status(502))
    async with LLMClient(
        base_url=first.base_url,
        model="a",
        fallbacks=[Endpoint(base_url=second.base_url, model="b")],
        retry=RetryPolicy(max_attempts=2, backoff_base_s=0.01, jitter=0.0),
    ) as client:
        with pytest.raises(LLMUnavailableError) as info:
            await client.chat(HELLO)

    err = info.value
    assert [(a.model, a.status_code) for a in err.attempts] == [
        ("a", 500),
        ("a", 500),
        ("b", 502),
        ("b", 502),
    ]
    assert "HTTP 500" in str(err) and "boom" in str(err)
    assert len(first.requests) == 2 and len(second.requests) == 2
    assert client.stats.failures == 1


async def test_rejected_request_is_not_retried(openai_stub):
    stub = openai_stub([Status(400, message="bad schema")], default=Reply("never reached"))
    async with LLMClient(base_url=stub.base_url, model="m", retry=FAST) as client:
        with pytest.raises(LLMRejectedError) as info:
            await client.chat(HELLO)
    assert len(stub.requests) == 1
    assert info.value.attempts[0].status_code == 400


async def test_retry_after_longer_than_allowed_gives_up_instead_of_sleeping(openai_stub):
    stub = openai_stub(default=Status(429, retry_after=3600))
    sleep = RecordingSleep()
    policy = RetryPolicy(max_attempts=3, max_retry_after_s=60)
    async with LLMClient(base_url=stub.base_url, model="m", retry=policy, sleep=sleep) as client:
        with pytest.raises(LLMUnavailableError) as info:
            await client.chat(HELLO)
    assert sleep.delays == [] and len(stub.requests) == 1
    assert "exceeds" in info.value.attempts[0].error


async def test_concurrency_limit_bounds_requests_in_flight(openai_stub):
    stub = openai_stub(default=Reply("slow", delay_s=0.2))
    async with LLMClient(base_url=stub.base_url, model="m", max_concurrency=2) as client:
        results = await asyncio.gather(*(client.complete(f"q{i}") for i in range(6)))
    assert [r.text for r in results] == ["slow"] * 6
    assert stub.max_in_flight == 2


async def test_usage_and_cost_are_accounted(openai_stub):
    stub = openai_stub(default=Reply("x", prompt_tokens=1000, completion_tokens=500))
    prices = {"m": ModelPrice(input_per_mtok=1.0, output_per_mtok=4.0)}
    async with LLMClient(base_url=stub.base_url, model="m", prices=prices) as client:
        a = await client.complete("one")
        await client.complete("two")
    assert a.usage.prompt_tokens == 1000 and a.usage.completion_tokens == 500
    assert a.cost_usd == pytest.approx(1000 * 1e-6 + 500 * 4e-6)
    assert client.stats.prompt_tokens == 2000 and client.stats.completion_tokens == 1000
    assert client.stats.cost_usd == pytest.approx(2 * a.cost_usd)
    assert client.stats.by_model["m"].completion_tokens == 1000


async def test_request_parameters_reach_the_server(openai_stub):
    stub = openai_stub()
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}
    async with LLMClient(base_url=stub.base_url, model="m") as client:
        await client.chat(HELLO, temperature=0.7, max_tokens=33, seed=5, response_format=fmt, top_p=0.9)
    body = stub.requests[0].body
    assert body["model"] == "m" and body["messages"] == HELLO
    assert (body["temperature"], body["max_tokens"], body["seed"], body["top_p"]) == (0.7, 33, 5, 0.9)
    assert body["response_format"] == fmt


async def test_cache_replays_the_kth_identical_request_without_calling_the_server(openai_stub, tmp_path):
    stub = openai_stub([Reply("first"), Reply("second")], default=Status(500))
    async with LLMClient(base_url=stub.base_url, model="m", cache_dir=tmp_path) as client:
        a = await client.complete("same", temperature=1.0)
        b = await client.complete("same", temperature=1.0)
    assert (a.text, b.text, a.cached, b.cached) == ("first", "second", False, False)

    async with LLMClient(base_url=stub.base_url, model="m", cache_dir=tmp_path, retry=FAST) as rerun:
        a2 = await rerun.complete("same", temperature=1.0)
        b2 = await rerun.complete("same", temperature=1.0)
        assert (a2.text, b2.text, a2.cached, b2.cached) == ("first", "second", True, True)
        assert rerun.stats.cache_hits == 2 and rerun.stats.prompt_tokens == 0
        with pytest.raises(
            LLMUnavailableError
        ):  # a third copy is not cached: it reaches the (now failing) server
            await rerun.complete("same", temperature=1.0)
    assert len(stub.requests) == 2 + FAST.max_attempts


def test_config_precedence_file_then_env_then_arguments(tmp_path):
    config_file = tmp_path / "loong.toml"
    config_file.write_text(
        '[llm]\nbase_url = "http://file:1/v1"\nmodel = "file-model"\nmax_concurrency = 3\n'
        'cache_dir = "cache"\n[[llm.fallbacks]]\nmodel = "file-fallback"\n'
        "[llm.retry]\nmax_attempts = 7\njitter = 0.25\n"
    )
    env = {"LOONG_MODEL": "env-model", "OPENAI_API_KEY": "sk-env", "LOONG_LLM_MAX_ATTEMPTS": "6"}
    config = LLMConfig.load(config_file, env=env, max_concurrency=5)
    assert config.base_url == "http://file:1/v1"  # from the file
    assert config.model == "env-model"  # env beats file
    assert config.max_concurrency == 5  # argument beats both
    assert config.api_key == "sk-env"  # OPENAI_API_KEY as the fallback for LOONG_API_KEY
    assert (config.retry.max_attempts, config.retry.jitter) == (
        6,
        0.25,
    )  # env knob merged into the file's table
    assert config.cache_dir == tmp_path / "cache"  # relative to the file
    endpoints = config.endpoints()
    assert [(e.base_url, e.model, e.api_key) for e in endpoints] == [
        ("http://file:1/v1", "env-model", "sk-env"),
        ("http://file:1/v1", "file-fallback", "sk-env"),
    ]


def test_config_errors_say_where_and_what(tmp_path):
    bad = tmp_path / "loong.toml"
    bad.write_text("[llm]\nmax_concurrency = 0\n")
    with pytest.raises(LLMConfigError, match="loong.toml"):
        LLMConfig.load(bad, env={})
    with pytest.raises(LLMConfigError, match="LOONG_LLM_TIMEOUT"):
        LLMConfig.load(None, env={"LOONG_LLM_TIMEOUT": "soon"})
    with pytest.raises(LLMConfigError, match="no model"):
        LLMClient(base_url="http://127.0.0.1:9/v1", config_file=None, model=None, api_key="x")


def test_one_client_survives_several_event_loops(openai_stub):
    """A gymnasium wrapper may call asyncio.run per step; the client must not stay bound to a dead loop."""
    stub = openai_stub()
    client = LLMClient(base_url=stub.base_url, model="m", max_concurrency=1)
    first = asyncio.run(client.complete("a"))
    second = asyncio.run(client.complete("b"))
    assert (first.text, second.text) == ("ok", "ok") and len(stub.requests) == 2


async def test_retry_after_as_an_http_date_is_understood(openai_stub):
    when = email.utils.formatdate(time.time() + 1, usegmt=True)
    stub = openai_stub([Status(503, retry_after=when), Reply("later")])
    sleep = RecordingSleep()
    async with LLMClient(base_url=stub.base_url, model="m", retry=FAST, sleep=sleep) as client:
        completion = await client.chat(HELLO)
    assert completion.text == "later"
    assert 0.0 <= completion.attempts[0].retry_after_s <= 2.0
    assert sleep.delays == [max(FAST.backoff_base_s, completion.attempts[0].retry_after_s)]
