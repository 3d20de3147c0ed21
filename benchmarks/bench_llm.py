"""Benchmark the LLM layer: local server start-up, generation speed, and LLMClient's overhead.

    .venv/bin/python benchmarks/bench_llm.py [--quick] [--threads N]

Prints the hardware and load first: on a shared machine the load average explains most of the spread.
Baselines measured in the same run: start-up from the cached model file (vs the first-run chunk join),
one request (vs 4 in parallel), and a bare `openai.AsyncOpenAI` loop (vs LLMClient on the same requests).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import openai

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the scripted stub server

from _hardware import hardware
from openai_stub_server import Reply, StubOpenAIServer

from loong_env import local
from loong_env.llm import LLMClient, RetryPolicy

PROMPT = "Write a Python function that checks whether a number is prime, with a short docstring."



def time_start(
    model: str, threads: int | None, cache_root: str | None = None
) -> tuple[float, local.LocalServer]:
    old = os.environ.get("LOONG_CACHE_DIR")
    if cache_root is not None:
        os.environ["LOONG_CACHE_DIR"] = cache_root
    try:
        t0 = time.perf_counter()
        server = local.LocalServer(model, n_parallel=4, threads=threads).start_sync()
        return time.perf_counter() - t0, server
    finally:
        if cache_root is not None:
            if old is None:
                os.environ.pop("LOONG_CACHE_DIR", None)
            else:
                os.environ["LOONG_CACHE_DIR"] = old


async def generation_speed(server: local.LocalServer, max_tokens: int) -> tuple[float, float]:
    """(tok/s for 1 request, total tok/s for 4 parallel requests), counting completion tokens."""
    async with LLMClient(base_url=server.base_url, model=server.model, timeout_s=600) as client:
        await client.complete("Hi", max_tokens=4)  # warm-up
        t0 = time.perf_counter()
        one = await client.complete(PROMPT, max_tokens=max_tokens)
        single = one.usage.completion_tokens / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        many = await asyncio.gather(
            *(client.complete(PROMPT + f" (variant {i})", max_tokens=max_tokens) for i in range(4))
        )
        parallel = sum(c.usage.completion_tokens for c in many) / (time.perf_counter() - t0)
    return single, parallel


async def overhead(
    base_url: str, model: str, n: int, max_tokens: int, rounds: int = 3
) -> tuple[float, float]:
    """Median seconds per sequential request over interleaved rounds: bare openai client vs LLMClient."""
    messages = [{"role": "user", "content": "Say hi."}]
    bare = openai.AsyncOpenAI(base_url=base_url, api_key="x", max_retries=0)
    ours = LLMClient(base_url=base_url, model=model, retry=RetryPolicy(max_attempts=1))

    async def bare_call() -> None:
        await bare.chat.completions.create(
            model=model, messages=messages, max_tokens=max_tokens, temperature=0
        )

    async def our_call() -> None:
        await ours.chat(messages, max_tokens=max_tokens)

    times: dict[str, list[float]] = {"bare": [], "ours": []}
    for _ in range(3):  # warm both connection pools
        await bare_call()
        await our_call()
    for _ in range(rounds):  # interleave so load changes on a shared machine hit both alike
        for name, call in (("bare", bare_call), ("ours", our_call)):
            t0 = time.perf_counter()
            for _ in range(n):
                await call()
            times[name].append((time.perf_counter() - t0) / n)
    await bare.close()
    await ours.close()
    return statistics.median(times["bare"]), statistics.median(times["ours"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer tokens and requests")
    parser.add_argument(
        "--threads", type=int, default=None, help="llama.cpp threads (default: local's default)"
    )
    parser.add_argument("--skip-join", action="store_true", help="skip the first-run chunk join measurement")
    args = parser.parse_args()
    max_tokens = 48 if args.quick else 128
    print(f"hardware: {hardware()}")
    print(f"threads:  {args.threads or local._default_threads()} (LOONG_LOCAL_THREADS / --threads)")

    print("\n== start-up (load + healthy), 4 slots ==")
    if not args.skip_join:
        with tempfile.TemporaryDirectory() as fresh:
            join_s, server = time_start(local.DEFAULT_MODEL, args.threads, cache_root=fresh)
            server.stop_sync()
    cached_s, qwen = time_start(local.DEFAULT_MODEL, args.threads)
    qwen.stop_sync()
    smol_s, smol = time_start(local.PLUMBING_MODEL, args.threads)
    smol.stop_sync()
    print(f"qwen2.5-coder-0.5b, cached file (baseline): {cached_s:6.2f} s")
    if not args.skip_join:
        print(
            f"qwen2.5-coder-0.5b, first run (join+sha256): {join_s:6.2f} s  ({join_s / cached_s:.1f}x baseline)"
        )
    print(
        f"smollm2-135m:                                {smol_s:6.2f} s  ({smol_s / cached_s:.2f}x baseline)"
    )

    print(f"\n== generation, {max_tokens} max tokens, completion tokens per second ==")
    for name in (local.DEFAULT_MODEL, local.PLUMBING_MODEL):
        server = local.LocalServer(name, n_parallel=4, threads=args.threads).start_sync()
        try:
            single, parallel = asyncio.run(generation_speed(server, max_tokens))
        finally:
            server.stop_sync()
        print(
            f"{name:20s} 1 request (baseline): {single:6.1f} tok/s   4 parallel: {parallel:6.1f} tok/s total "
            f"({parallel / single:.2f}x)"
        )

    print(
        "\n== LLMClient overhead vs a bare openai.AsyncOpenAI loop (sequential, same requests, median of 3 interleaved rounds) =="
    )
    n_stub = 30 if args.quick else 100
    with StubOpenAIServer(default=Reply("hi")) as stub:
        bare_s, ours_s = asyncio.run(overhead(stub.base_url, "stub", n_stub, 4))
    print(
        f"scripted stub server, {n_stub} requests: bare {bare_s * 1e3:6.2f} ms/req (baseline), "
        f"LLMClient {ours_s * 1e3:6.2f} ms/req ({ours_s / bare_s:.2f}x, {(ours_s - bare_s) * 1e3:+.2f} ms)"
    )
    n_local = 5 if args.quick else 15
    server = local.LocalServer(local.PLUMBING_MODEL, n_parallel=1, threads=args.threads).start_sync()
    try:
        bare_s, ours_s = asyncio.run(overhead(server.base_url, server.model, n_local, 4))
    finally:
        server.stop_sync()
    print(
        f"smollm2-135m, 4 tokens, {n_local} requests: bare {bare_s * 1e3:6.1f} ms/req (baseline), "
        f"LLMClient {ours_s * 1e3:6.1f} ms/req ({ours_s / bare_s:.2f}x)"
    )
    print(f"\nload average at the end: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
