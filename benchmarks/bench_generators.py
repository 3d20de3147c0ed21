"""Generators benchmark: pipeline throughput vs a bare openai loop, acceptance per method, novelty of kept items.

    .venv/bin/python benchmarks/bench_generators.py [--domain graph_discrete_math] [--attempts 8] [--concurrency 4]

1. Each method runs `--attempts` attempts with the default local model (Qwen2.5-Coder-0.5B) through
   `run_generation`, with every LLM request recorded. Reported: kept / finished, rejections by reason,
   seconds per kept item, and each kept item's max ROUGE-L to the seeds (novel if <= 0.7).
2. Throughput baseline: right after each method's run, its exact requests (messages and parameters) are
   replayed by a bare `openai.AsyncOpenAI` loop at the same concurrency against the same server. Ratio =
   pipeline completion tokens/s over bare-loop completion tokens/s (target >= 0.90). Both send
   `cache_prompt: false` so the replay of identical prompts gets no prompt-cache advantage. The bare loop
   has no sandbox, no parsing and no waiting for a generation before its repair or solve (all its requests
   are known up front), so it is an upper bound. Code-repair requests and solve retries are part of both. The sandbox is built and warmed before timing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import openai
from _hardware import hardware

from loong_env import local
from loong_env.generators import GenerationStats, Verdict, read_accepted, rouge_l, run_generation
from loong_env.llm import LOCAL_API_KEY, LLMClient
from loong_env.sandbox import Sandbox
from loong_env.seeds.dataset import load_seeds


class RecordingClient:
    """Passes requests to the real client and remembers them, so the baseline can replay exactly these.

    It adds `cache_prompt: false` (llama.cpp) to every request, and the replay sends the same body: otherwise
    the replay of identical prompts would skip prompt processing on the server and flatter the baseline.
    """

    def __init__(self, inner: LLMClient) -> None:
        self.inner = inner
        self.requests: list[tuple[list[dict[str, str]], dict[str, Any]]] = []

    @property
    def model(self) -> str:
        return self.inner.model

    async def chat(self, messages: list[dict[str, str]], **kwargs: Any) -> Any:
        kwargs = {**kwargs, "cache_prompt": False}
        self.requests.append((messages, kwargs))
        return await self.inner.chat(messages, **kwargs)


async def bare_loop(
    base_url: str, model: str, requests: list[tuple[list[dict], dict]], concurrency: int
) -> tuple[float, int]:
    """The baseline: the same requests through a plain openai client, `concurrency` at a time."""
    client = openai.AsyncOpenAI(base_url=base_url, api_key=LOCAL_API_KEY, max_retries=0, timeout=600)
    gate = asyncio.Semaphore(concurrency)
    tokens = 0

    async def one(messages: list[dict], params: dict) -> None:
        nonlocal tokens
        body = {k: v for k, v in params.items() if v is not None}
        async with gate:
            response = await client.chat.completions.create(model=model, messages=messages, extra_body=body)
        tokens += response.usage.completion_tokens if response.usage else 0

    started = time.perf_counter()
    await asyncio.gather(*(one(m, p) for m, p in requests))
    elapsed = time.perf_counter() - started
    await client.close()
    return elapsed, tokens


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--domain", default="graph_discrete_math")
    parser.add_argument("--attempts", type=int, default=8, help="attempts per method")
    parser.add_argument("--concurrency", type=int, default=4, help="candidates in flight (= server slots)")
    parser.add_argument("--methods", default="few-shot,self-instruct,evol-instruct")
    parser.add_argument("--time-budget", type=float, default=900.0, help="seconds per method at most")
    parser.add_argument("--out", default=None, help="keep outputs here (default: a temp dir)")
    args = parser.parse_args()

    print(f"hardware: {hardware()}")
    print(f"load average at start: {os.getloadavg()}")
    t0 = time.perf_counter()
    server = await asyncio.to_thread(local.shared_server, local.DEFAULT_MODEL, n_parallel=args.concurrency)
    print(f"local model: {server.model} ({args.concurrency} slots) ready in {time.perf_counter() - t0:.1f}s")
    seeds = load_seeds(args.domain)
    # Build and warm the domain's sandbox before timing: a one-time cost, reported, not part of throughput.
    t0 = time.perf_counter()
    sandbox = Sandbox.shared(seeds.domain_config(args.domain).requirements, timeout_s=10.0)
    await sandbox.run("print(1)")
    print(f"sandbox for {args.domain} ready in {time.perf_counter() - t0:.1f}s (excluded from throughput)")
    out_root = Path(args.out or tempfile.mkdtemp(prefix="bench_gen_"))
    rows = []
    for method in args.methods.split(","):
        inner = LLMClient(base_url=server.base_url, model=server.model, max_concurrency=args.concurrency)
        client = RecordingClient(inner)
        stats = GenerationStats()
        verdicts: list[Verdict] = []
        started = time.perf_counter()
        summary = await run_generation(
            args.domain, out=out_root / method, n=args.attempts, method=method, max_attempts=args.attempts,
            time_budget_s=args.time_budget, client=client, concurrency=args.concurrency, stats=stats,
            sandbox=sandbox, on_verdict=verdicts.append,
        )  # fmt: skip
        wall = time.perf_counter() - started
        kept = read_accepted(out_root / method)
        novelty = [max(rouge_l(dp.question, s.question) for s in seeds) for dp in kept]
        tokens = inner.stats.completion_tokens
        await inner.close()
        # Baseline right after, so both see the same machine load: the same requests, bare, same concurrency.
        bare_s, bare_tokens = await bare_loop(
            server.base_url, server.model, client.requests, args.concurrency
        )
        ratio = (tokens / wall) / (bare_tokens / bare_s) if bare_tokens else float("nan")
        rows.append((method, summary, wall, novelty, ratio))
        spk = f"{wall / summary.accepted:.0f}" if summary.accepted else "n/a"
        print(
            f"\n[{method}] kept {summary.accepted}/{summary.accepted + summary.rejected} finished "
            f"({summary.abandoned} abandoned) in {wall:.0f}s; s/kept: {spk}; stopped: {summary.stopped_because}"
        )
        print(f"  rejected: {json.dumps(summary.rejected_by_reason, sort_keys=True)}")
        repaired = [v for v in verdicts if v.repairs]
        fixed = [v for v in repaired if v.repairs[-1].outcome == "fixed"]
        retried = [v for v in verdicts if len(v.solves) > 1]
        print(
            f"  code repairs: {len(repaired)} tried, {len(fixed)} ran after repair, "
            f"{sum(v.accepted for v in fixed)} of those kept; outcomes "
            f"{json.dumps(dict(Counter(v.repairs[-1].outcome for v in repaired)), sort_keys=True)}"
        )
        print(
            f"  solves: {sum(len(v.solves) for v in verdicts)} requests, {len(retried)} candidates needed a "
            f"retry after an unanswered solve, {sum(v.accepted for v in retried)} of those kept"
        )
        for dp, sim in zip(kept, novelty, strict=True):
            print(
                f"  kept (max ROUGE-L to seeds {sim:.2f}, {'novel' if sim <= 0.7 else 'NOT novel'}): "
                f"{dp.question[:100]!r} = {dp.final_answer}"
            )
        print(
            f"  throughput over {len(client.requests)} requests: pipeline {tokens} tok / {wall:.1f}s = "
            f"{tokens / wall:.1f} tok/s; bare openai loop (baseline) {bare_tokens} tok / {bare_s:.1f}s = "
            f"{bare_tokens / bare_s:.1f} tok/s; ratio {ratio:.2f} (target >= 0.90)"
        )

    print("\nsummary:")
    print(
        f"  {'method':<15}{'kept':>6}{'finished':>10}{'accept':>8}{'s/kept':>8}{'novel kept':>12}{'tput ratio':>12}"
    )
    for method, summary, wall, novelty, ratio in rows:
        finished = summary.accepted + summary.rejected
        spk = f"{wall / summary.accepted:.0f}" if summary.accepted else "n/a"
        novel = sum(s <= 0.7 for s in novelty)
        print(
            f"  {method:<15}{summary.accepted:>6}{finished:>10}{summary.acceptance:>8.0%}{spk:>8}{novel:>12}"
            f"{ratio:>12.2f}"
        )
    print(f"outputs: {out_root}; load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    asyncio.run(main())
