"""The CoT pipeline's small parts: the pass@k estimator, AIMD concurrency, n>1 usage split, ordered runs."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest

from loong_env.errors import ConfigError
from loong_env.llm import Attempt
from loong_env.pipeline import AdaptiveLimiter, LimiterConfig, mean_pass_at, pass_at_k, pass_at_ks
from loong_env.pipeline.calls import split_usage
from loong_env.pipeline.limiter import request_priority
from loong_env.pipeline.runner import run_in_order


def brute_force_pass_at_k(n: int, c: int, k: int) -> float:
    """Share of the k-subsets of n samples (c of them correct) that hold at least one correct sample."""
    samples = [True] * c + [False] * (n - c)
    subsets = list(itertools.combinations(range(n), k))
    return sum(any(samples[i] for i in s) for s in subsets) / len(subsets)


def test_pass_at_k_equals_the_share_of_k_subsets_with_a_correct_sample():
    for n in range(1, 8):
        for c in range(n + 1):
            for k in range(1, n + 1):
                assert pass_at_k(n, c, k) == pytest.approx(brute_force_pass_at_k(n, c, k), abs=1e-12), (
                    n,
                    c,
                    k,
                )


def test_pass_at_k_is_monotone_in_k_and_exact_at_the_ends():
    table = pass_at_ks(8, 2)
    assert list(table) == list(range(1, 9))
    assert table[1] == pytest.approx(2 / 8) and table[8] == 1.0
    assert all(table[k] <= table[k + 1] for k in range(1, 8))
    assert pass_at_ks(5, 0) == dict.fromkeys(range(1, 6), 0.0)


def test_pass_at_k_refuses_impossible_counts():
    with pytest.raises(ConfigError, match="n=4, c=5"):
        pass_at_k(4, 5, 1)
    with pytest.raises(ConfigError, match="k=5"):
        pass_at_k(4, 1, 5)


def test_overall_pass_at_k_is_the_mean_over_problems():
    overall = mean_pass_at([pass_at_ks(4, 4), pass_at_ks(4, 0), {}])
    assert overall == {1: 0.5, 2: 0.5, 3: 0.5, 4: 0.5}


def attempt(outcome: str) -> Attempt:
    return Attempt(endpoint="http://x", model="m", outcome=outcome, started_at=0.0)  # type: ignore[arg-type]


def test_limiter_halves_on_overload_and_grows_back_one_per_window():
    limiter = AdaptiveLimiter(LimiterConfig(max_limit=8, latency_factor=None))
    assert limiter.limit == 8
    limiter.observe(time.monotonic(), [attempt("rate_limited"), attempt("ok")])
    assert limiter.limit == 4 and limiter.stats.overloads == {"rate_limited": 1}
    for _ in range(4):  # one window of `limit` clean completions adds one
        limiter.observe(time.monotonic(), [attempt("ok")])
    assert limiter.limit == 5
    for _ in range(100):
        limiter.observe(time.monotonic(), [attempt("ok")])
    assert limiter.limit == 8  # never above max_limit


def test_limiter_decreases_once_per_burst_and_never_below_the_floor():
    limiter = AdaptiveLimiter(LimiterConfig(max_limit=8, min_limit=2, latency_factor=None))
    granted = time.monotonic()  # three requests granted together all hit a 503
    for _ in range(3):
        limiter.observe(granted, [attempt("server_error")])
    assert limiter.limit == 4 and limiter.stats.decreases == 1
    for _ in range(5):  # each later request that fails is a new burst
        limiter.observe(time.monotonic() + 1.0, [attempt("timeout")])
    assert limiter.limit == 2


def test_limiter_reads_a_much_slower_completion_as_overload():
    limiter = AdaptiveLimiter(LimiterConfig(max_limit=8, latency_factor=3.0))
    limiter.observe(time.monotonic(), [attempt("ok")], latency_s=1.0, completion_tokens=100)
    assert limiter.limit == 8
    limiter.observe(time.monotonic(), [attempt("ok")], latency_s=5.0, completion_tokens=100)
    assert limiter.limit == 4 and limiter.stats.overloads == {"slow": 1}
    limiter.observe(
        time.monotonic(), [attempt("ok")], latency_s=50.0, completion_tokens=3
    )  # too short to say
    assert limiter.limit == 4


def test_limiter_takes_a_lasting_slowdown_as_the_new_normal():
    limiter = AdaptiveLimiter(LimiterConfig(max_limit=8, latency_factor=3.0, latency_window=4))
    limiter.observe(time.monotonic(), [attempt("ok")], latency_s=1.0, completion_tokens=100)
    limiter.observe(time.monotonic(), [attempt("ok")], latency_s=5.0, completion_tokens=100)  # busier
    assert limiter.stats.decreases == 1
    for _ in range(8):  # it stays busy: 5 s is the new normal, not a reason to halve again and again
        limiter.observe(time.monotonic(), [attempt("ok")], latency_s=5.0, completion_tokens=100)
    assert limiter.stats.decreases == 1 and limiter.stats.increases >= 1


async def test_limiter_never_lets_more_than_the_limit_run_at_once():
    limiter = AdaptiveLimiter(LimiterConfig(max_limit=3))
    running, peak = 0, 0

    async def request(weight: int) -> None:
        nonlocal running, peak
        async with limiter.slot(weight):
            running += weight
            peak = max(peak, running)
            await asyncio.sleep(0.01)
            running -= weight

    await asyncio.gather(*(request(w) for w in [1, 2, 1, 1, 3, 1, 2, 1]))
    assert peak == 3 and limiter.stats.in_flight == 0


async def test_limiter_serves_requests_in_arrival_order_so_a_wide_one_is_never_overtaken():
    limiter = AdaptiveLimiter(LimiterConfig(max_limit=4))
    order: list[str] = []

    async def request(name: str, weight: int, hold_s: float) -> None:
        async with limiter.slot(weight):
            order.append(name)
            await asyncio.sleep(hold_s)

    first = asyncio.create_task(request("narrow-1", 1, 0.05))
    await asyncio.sleep(0)
    wide = asyncio.create_task(request("wide", 4, 0.0))  # must wait for narrow-1 to leave
    await asyncio.sleep(0)
    later = [asyncio.create_task(request(f"narrow-{i}", 1, 0.0)) for i in (2, 3)]  # fit now, but came later
    await asyncio.gather(first, wide, *later)
    assert order == ["narrow-1", "wide", "narrow-2", "narrow-3"]


async def test_limiter_lets_an_earlier_problem_go_first_among_waiting_requests():
    limiter = AdaptiveLimiter(LimiterConfig(max_limit=1))
    order: list[int] = []

    async def request(problem: int) -> None:
        request_priority.set(problem)
        async with limiter.slot():
            order.append(problem)
            await asyncio.sleep(0.01)

    blocker = asyncio.create_task(request(0))
    await asyncio.sleep(0)
    waiting = [asyncio.create_task(request(p)) for p in (5, 3, 4, 1)]
    await asyncio.gather(blocker, *waiting)
    assert order == [0, 1, 3, 4, 5]


async def test_a_request_cancelled_while_waiting_gives_no_slot_away():
    limiter = AdaptiveLimiter(LimiterConfig(max_limit=1))
    async with limiter.slot():
        waiting = asyncio.create_task(limiter.slot().__aenter__())
        await asyncio.sleep(0)
        waiting.cancel()
        await asyncio.gather(waiting, return_exceptions=True)
    assert limiter.stats.in_flight == 0
    async with limiter.slot():  # still usable
        assert limiter.stats.in_flight == 1


def test_usage_of_an_n_choice_reply_is_split_whether_it_counts_one_choice_or_all():
    texts = ["a" * 400, "b" * 200, "c" * 400]
    per_choice, estimated = split_usage(100, texts)  # llama.cpp: usage of the first choice only
    assert estimated and per_choice == [100, 50, 100]
    per_choice, _ = split_usage(250, texts)  # OpenAI: the sum over choices
    assert per_choice == [100, 50, 100]
    assert split_usage(42, ["only one"]) == ([42], False)


async def test_run_in_order_returns_input_order_and_reports_in_finish_order():
    finished: list[int] = []

    async def work(x: int) -> int:
        await asyncio.sleep(0.05 if x == 0 else 0.0)
        return x * 10

    out = await run_in_order([0, 1, 2, 3], work, workers=4, on_done=lambda x, _: finished.append(x))
    assert out == [0, 10, 20, 30]
    assert finished[-1] == 0 and sorted(finished) == [0, 1, 2, 3]
