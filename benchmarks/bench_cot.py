"""Benchmark the CoT pipeline on easy seeds with the default local model: quality and throughput.

    .venv/bin/python benchmarks/bench_cot.py [--limit 24] [--max-tokens 256] [--samples 8] [--json out.json]

Quality, on `--limit` seeds of difficulty 1-2 spread over the domains (a fixed draw):
  refine mode     verifier pass rate of the first (greedy) trace vs after refinement (max 2 rounds)
  rejection mode  pass@1 / pass@4 / pass@8 (unbiased, 8 samples at temperature 0.8)
  both            problems rationalized (STaR, hinted) and how many of those verified; tokens and
                  seconds per problem
Throughput: the pipeline (rejection mode, no rationalization) against a bare LLMClient loop sending the
very requests the pipeline sent (recorded), at the same concurrency, on the same server, in interleaved
rounds. The ratio is generated tokens per second, pipeline / bare (goal >= 0.9): it prices everything
the pipeline adds around the requests (adaptive limiter, verification, storage, bookkeeping).
Prints the hardware and load first: on a shared 2-core machine the load explains most of the spread.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _hardware import hardware

from loong_env.llm import Completion, LLMClient
from loong_env.pipeline import CoTConfig, LimiterConfig, run_cot
from loong_env.pipeline.calls import split_usage
from loong_env.seeds.dataset import load_seeds
from loong_env.types import DataPoint


class RecordingClient(LLMClient):
    """LLMClient that remembers every successful request (messages + parameters) and its generated tokens."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.requests: list[tuple[list[dict[str, Any]], dict[str, Any]]] = []
        self.generated = 0

    async def chat(self, messages: Any, **kwargs: Any) -> Completion:
        completion = await super().chat(messages, **kwargs)
        self.requests.append((list(messages), dict(kwargs)))
        self.generated += generated_tokens(completion)
        return completion


def generated_tokens(completion: Completion) -> int:
    """Completion tokens over all choices (llama.cpp reports n>1 usage for the first choice only)."""
    return sum(split_usage(completion.usage.completion_tokens, completion.texts or [completion.text])[0])


def pick_problems(limit: int, levels: list[int]) -> list[DataPoint]:
    """`limit` seeds of the given difficulty, round-robin over the domains (a fixed, reproducible draw)."""
    seeds = load_seeds().filter(difficulty=levels)
    by_domain = [seeds.filter(domain=d).sample(len(seeds.filter(domain=d)), seed=0) for d in seeds.domains]
    out: list[DataPoint] = []
    while len(out) < limit and any(by_domain):
        for items in by_domain:
            if items and len(out) < limit:
                out.append(items.pop(0))
    return out


async def quality(problems: list[DataPoint], client: LLMClient, args: argparse.Namespace) -> dict[str, Any]:
    """Refine and rejection runs over the same problems; their headline numbers."""
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench_cot_") as tmp:
        for mode in args.modes.split(","):
            config = CoTConfig(
                mode=mode, max_iterations=2, samples=args.samples, temperature=0.8, max_tokens=args.max_tokens
            )
            t0 = time.perf_counter()
            summary = await run_cot(problems, out=Path(tmp) / mode, client=client, config=config)
            wall = time.perf_counter() - t0
            s = summary.stats
            row: dict[str, Any] = {
                "problems": s.done,
                "failed": s.failed,
                "rationalized": s.rationalized,
                "rationalized_verified": s.rationalized_correct,
                "tokens_per_problem": round(s.tokens_per_problem),
                "seconds_per_problem": round(s.seconds_per_problem, 1),
                "wall_s": round(wall, 1),
                "wall_s_per_problem": round(wall / max(1, s.finished), 1),
            }
            if mode == "refine":
                row["first_trace_pass_rate"] = round(s.first_pass_rate, 3)
                row["pass_rate_after_refinement"] = round(s.pass_rate, 3)
                row["refined_problems"] = sum(
                    len(r.traces) > 1 + r.tried_rationalization for r in summary.results
                )
            else:
                row["pass_at"] = {k: round(v, 3) for k, v in s.pass_at().items() if k in (1, 2, 4, 8)}
            out[mode] = row
            print(f"  {mode}: {json.dumps(row)}", flush=True)
    return out


async def bare_loop(
    client: LLMClient, requests: list[tuple[list[dict[str, Any]], dict[str, Any]]], concurrency: int
) -> tuple[int, float]:
    """The baseline: the same requests through the same client, `concurrency` at a time, nothing else."""
    gate = asyncio.Semaphore(concurrency)

    async def one(messages: list[dict[str, Any]], params: dict[str, Any]) -> int:
        async with gate:
            return generated_tokens(await client.chat(messages, **params))

    t0 = time.perf_counter()
    tokens = await asyncio.gather(*(one(m, p) for m, p in requests))
    return sum(tokens), time.perf_counter() - t0


async def throughput(problems: list[DataPoint], base: LLMClient, args: argparse.Namespace) -> dict[str, Any]:
    """Interleaved rounds of pipeline and bare loop on the same requests; tokens/s of each and their ratio."""
    config = CoTConfig(
        mode="rejection",
        samples=args.samples,
        temperature=0.8,
        max_tokens=args.max_tokens,
        rationalize=False,
        limiter=LimiterConfig(max_limit=args.concurrency),
    )
    bare_client = LLMClient(config=base.config)
    ratios: list[float] = []
    rows: list[dict[str, float]] = []
    recorded: list[tuple[list[dict[str, Any]], dict[str, Any]]] = []
    for round_no in range(args.rounds):
        # the first round's pipeline run records the requests; later rounds alternate who goes first
        order = ("bare", "pipeline") if round_no % 2 else ("pipeline", "bare")
        results: dict[str, float] = {}
        for who in order:
            if who == "pipeline":
                client = RecordingClient(config=base.config)
                with tempfile.TemporaryDirectory(prefix="bench_cot_tp_") as tmp:
                    t0 = time.perf_counter()
                    await run_cot(problems, out=tmp, client=client, config=config)
                    elapsed = time.perf_counter() - t0
                await client.close()
                recorded = recorded or client.requests
                results["pipeline"] = client.generated / elapsed
            else:
                tokens, elapsed = await bare_loop(bare_client, recorded, args.concurrency)
                results["bare"] = tokens / elapsed
        ratio = results["pipeline"] / results["bare"]
        ratios.append(ratio)
        rows.append({k: round(v, 2) for k, v in results.items()} | {"ratio": round(ratio, 3)})
        print(
            f"  round {round_no + 1} ({'/'.join(order)}): pipeline {results['pipeline']:.1f} tok/s, "
            f"bare {results['bare']:.1f} tok/s, ratio {ratio:.3f}  [load {os.getloadavg()[0]:.1f}]",
            flush=True,
        )
    await bare_client.close()
    return {"rounds": rows, "requests": len(recorded), "median_ratio": round(statistics.median(ratios), 3)}


async def main(args: argparse.Namespace) -> dict[str, Any]:
    levels = [int(x) for x in args.difficulty.split(",")]
    problems = pick_problems(args.limit, levels)
    print(
        f"{len(problems)} seeds of difficulty {levels} from {len({p.domain for p in problems})} domains; "
        f"max_tokens={args.max_tokens}, samples={args.samples}",
        flush=True,
    )
    client = LLMClient(max_concurrency=args.concurrency)  # the embedded default local model
    print(f"model: {client.model} (embedded llama.cpp)", flush=True)
    report: dict[str, Any] = {
        "hardware_start": hardware(),
        "problems": len(problems),
        "max_tokens": args.max_tokens,
        "samples": args.samples,
    }
    try:
        await client.chat([{"role": "user", "content": "Hi"}], max_tokens=2)  # load the model first
        if not args.skip_quality:
            print("quality:", flush=True)
            report["quality"] = await quality(problems, client, args)
        print(
            f"throughput (pipeline vs bare LLMClient loop, {args.throughput_problems} problems):", flush=True
        )
        report["throughput"] = await throughput(problems[: args.throughput_problems], client, args)
    finally:
        await client.close()
    report["hardware_end"] = hardware()
    return report


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--limit", type=int, default=24, help="problems for the quality runs")
    parser.add_argument("--difficulty", default="1,2")
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--concurrency", type=int, default=8, help="most requests in flight, both sides")
    parser.add_argument("--throughput-problems", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2, help="interleaved pipeline/bare rounds")
    parser.add_argument("--modes", default="refine,rejection", help="quality runs to make (comma-separated)")
    parser.add_argument("--skip-quality", action="store_true", help="only the throughput comparison")
    parser.add_argument("--json", default=None, help="also write the report here")
    args = parser.parse_args()
    print(hardware(), flush=True)
    t0 = time.perf_counter()
    report = asyncio.run(main(args))
    report["total_s"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(report, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
