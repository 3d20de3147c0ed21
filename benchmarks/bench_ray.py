"""Ray scale-out on one machine: throughput with Ray at 1 and 2 workers against the single-process path.

Run: .venv/bin/python benchmarks/bench_ray.py [--attempts 32] [--latency 0.3] [--seeds 12] [--requests 24]
Needs the `ray` and `server` extras. One local Ray instance (loopback, 2 CPUs) serves every row; each Ray
row includes starting its actors. Four measurements, each against its single-process baseline in this run:

1. Generation: `--attempts` attempts of `run_generation` (one process, concurrency 4 and 8) and of
   `run_generation_ray` (1 worker x 4, 2 workers x 4). The LLM is the scripted OpenAI-compatible server
   with a fixed `--latency` per request (a remote vLLM fleet's latency does not depend on this machine's
   CPU); code runs in the real sandbox and solves are compared for real. Reported: attempts/s from the
   first to the last verdict (steady state) and wall time including start-up.
2. Seed validation: `--seeds` seeds of each of `--domains` domains, `validate_seeds` vs `validate_seeds_ray`.
3. Reward serving: `loong serve-reward` (uvicorn, one process) vs Ray Serve with 1 and 2 replicas; the same
   `--requests` POST /v1/score batches of 64 labelled answers (4 distinct batches), 4 in flight, each side
   after one warm-up pass over the batches. Reported: rewards/s; uvicorn is measured again last (drift).
4. The novelty pool actor: latency of one screen and one claim at 1k, 10k and 30k pool items (every
   candidate's screen and every kept item's claim go through this one actor, one call at a time).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # nothing leaves the machine
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # a local instance stays on loopback

import httpx
from _hardware import hardware
from bench_reward_server import items, measure, start_server

sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))
from scripted_openai_server import ScriptedServer, numbered_problems

from loong_env.distributed import NoveltyPool, RayOptions, connect, run_generation_ray, validate_seeds_ray
from loong_env.generators import GenerationStats, KeepConfig, run_generation
from loong_env.seeds.dataset import SeedDataset, load_seeds
from loong_env.seeds.validation import validate_seeds
from loong_env.types import DataPoint

DOMAIN = "graph_discrete_math"
LOW_BAR = KeepConfig(novelty_threshold=0.95)  # numbered problems differ only in their numbers: keep them all


def row(name: str, rate: float, unit: str, wall: float, base: float | None) -> str:
    ratio = f"{rate / base:5.2f}x" if base else "  base"
    return f"  {name:<34} {rate:8.2f} {unit:<10} {ratio}   wall {wall:6.1f} s"


async def generation(args: argparse.Namespace, url: str, work: Path) -> None:
    print(
        f"\n1. generation: {args.attempts} attempts, scripted LLM at {args.latency} s/request, real sandbox"
    )
    runs = [
        ("single process, concurrency 4", None, 4),
        ("single process, concurrency 8", None, 8),
        ("Ray, 1 worker x 4", 1, 4),
        ("Ray, 2 workers x 4", 2, 4),
    ]
    base = 0.0
    for i, (name, workers, concurrency) in enumerate(runs):
        out = work / name.replace(" ", "_").replace(",", "")
        shutil.rmtree(out, ignore_errors=True)
        stamps: list[float] = []
        stats = GenerationStats()
        common = {
            "out": out,
            "n": 10_000,
            "max_attempts": args.attempts,
            "base_url": url,
            "model": "scripted",
            "concurrency": concurrency,
            "keep_config": LOW_BAR,
            "stats": stats,
            "on_verdict": lambda _v, stamps=stamps: stamps.append(time.perf_counter()),
        }
        started = time.perf_counter()
        if workers is None:
            summary = await run_generation(DOMAIN, **common)
        else:
            ray = RayOptions(workers=workers, sandbox_workers=2)
            summary = await run_generation_ray(DOMAIN, ray=ray, **common)
        wall = time.perf_counter() - started
        rate = (len(stamps) - 1) / (stamps[-1] - stamps[0]) if len(stamps) > 1 else 0.0
        base = base if i else rate
        print(
            row(name, rate, "attempts/s", wall, base if i else None),
            f"  kept {summary.accepted}/{summary.accepted + summary.rejected}",
        )


async def validation(args: argparse.Namespace) -> None:
    every = load_seeds()
    domains = every.domains[: args.domains]
    dataset = SeedDataset.concat(every.filter(domain=d)[: args.seeds] for d in domains)
    print(
        f"\n2. seed validation: {len(dataset)} seeds of {len(domains)} domains (sandbox envs cached on disk)"
    )
    base = 0.0
    runs = (("validate_seeds (one process)", None), ("Ray, 1 worker", 1), ("Ray, 2 workers", 2))
    for i, (name, workers) in enumerate(runs):
        started = time.perf_counter()
        if workers is None:
            report = await validate_seeds(dataset)
        else:
            report = await validate_seeds_ray(dataset, ray=RayOptions(workers=workers, sandbox_workers=2))
        wall = time.perf_counter() - started
        rate = len(report.checks) / wall
        base = base if i else rate
        bad = len(report.failures)
        print(row(name, rate, "seeds/s", wall, base if i else None), f"  {bad} not reproduced")


def serving(args: argparse.Namespace) -> None:
    from ray import serve

    from loong_env.distributed.serve import ServeOptions, serve_rewards, stop_rewards
    from loong_env.integrations.reward_server import ServerConfig

    batches = [items(64, 64 * i) for i in range(4)]
    print(f"\n3. reward serving: {args.requests} requests of 64 answers, 4 in flight, POST /v1/score")
    port = 18000 + os.getpid() % 1000

    def poster(url: str) -> Callable[[list[dict]], object]:
        client = httpx.Client(base_url=url, timeout=300)
        return lambda batch: client.post("/v1/score", json={"items": batch}).raise_for_status()

    proc = start_server(
        port
    )  # stays up: measured first and again last, since load drifts on a shared machine
    uvicorn = poster(f"http://127.0.0.1:{port}")
    try:
        for batch in batches:  # one full pass first: every side is measured with warm verifier caches
            uvicorn(batch)
        started = time.perf_counter()
        base = measure(uvicorn, batches, args.requests, 600, 4)["rewards_s"]
        print(row("loong serve-reward (uvicorn)", base, "rewards/s", time.perf_counter() - started, None))
        for replicas in (1, 2):
            options = ServeOptions(replicas=replicas, port=port + replicas, proxy_location="HeadOnly")
            started = time.perf_counter()
            url = serve_rewards(ServerConfig(), options)
            ready = time.perf_counter() - started
            try:
                for batch in batches * replicas:  # each replica's caches warm (requests spread over them)
                    poster(url)(batch)
                t0 = time.perf_counter()
                rate = measure(poster(url), batches, args.requests, 600, 4)["rewards_s"]
                print(
                    row(
                        f"Ray Serve, {replicas} replica(s)", rate, "rewards/s", time.perf_counter() - t0, base
                    ),
                    f"  deploy {ready:.1f} s",
                )
            finally:
                stop_rewards(options.name)
                serve.shutdown()
        started = time.perf_counter()
        again = measure(uvicorn, batches, args.requests, 600, 4)["rewards_s"]
        print(row("loong serve-reward again, last", again, "rewards/s", time.perf_counter() - started, base))
    finally:
        proc.terminate()
        proc.wait(30)


def pool_latency() -> None:
    print(
        "\n4. novelty pool: latency of one claim (the pool actor answers one claim at a time, cluster-wide)"
    )
    words = [
        "apples",
        "pears",
        "plums",
        "figs",
        "limes",
        "kiwis",
        "dates",
        "grapes",
        "melons",
        "berries",
        "rows",
        "boxes",
        "trays",
        "carts",
    ]

    def point(k: int, tail: str = "") -> DataPoint:
        question = (
            f"A farm packs {k} {words[k % 14]} into {k % 97 + 2} {words[(k // 14) % 14]} and sells "
            f"{k % 13 + 1} of each {words[(k // 196) % 14]}; how many are left after {k % 7 + 2} days?"
        )
        return DataPoint(question=question + tail, final_answer="1", rationale="print(1)", domain=DOMAIN)

    for size in (1_000, 10_000, 30_000):
        pool = NoveltyPool(KeepConfig(), [point(0)], [point(k) for k in range(1, size)])
        claims = []
        for k in range(size, size + 20):
            candidate = point(k, " (new)")
            t0 = time.perf_counter()
            pool.claim(k, candidate)
            claims.append(time.perf_counter() - t0)
        claim_ms = 1000 * statistics.median(claims)
        print(
            f"  {size:>6} items: claim {claim_ms:6.1f} ms -> at most ~{1000 / claim_ms:.0f} kept items/s "
            "through one pool (screens go through it too)"
        )


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--attempts", type=int, default=32, help="generation attempts per row")
    parser.add_argument("--latency", type=float, default=0.3, help="scripted LLM seconds per request")
    parser.add_argument("--seeds", type=int, default=12, help="seeds validated per domain and row")
    parser.add_argument("--domains", type=int, default=3, help="domains validated (the library's first ones)")
    parser.add_argument("--requests", type=int, default=24, help="reward requests (64 answers each) per row")
    parser.add_argument("--skip", default="", help="comma-separated parts to skip: gen,val,serve,pool")
    args = parser.parse_args()
    skip = set(args.skip.split(","))
    print("hardware:", hardware())
    t0 = time.perf_counter()
    info = connect(num_cpus=2)
    print(
        f"Ray: local instance at {info.address}, {info.nodes} node, {info.cpus:.0f} CPUs, "
        f"up in {time.perf_counter() - t0:.1f} s"
    )
    work = Path(tempfile.mkdtemp(prefix="bench_ray_"))
    try:
        if "gen" not in skip:
            with ScriptedServer(numbered_problems(delay_s=args.latency)) as server:
                await generation(args, server.base_url, work)
        if "val" not in skip:
            await validation(args)
        if "serve" not in skip:
            await asyncio.to_thread(serving, args)
        if "pool" not in skip:
            pool_latency()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nload average at end: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    asyncio.run(main())
