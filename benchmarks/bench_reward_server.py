"""Load test of `loong serve-reward` on loopback against calling the verifiers in-process, in the same run.

Run: .venv/bin/python benchmarks/bench_reward_server.py [--batches 1,64,512] [--seconds 40] [--concurrency 1]
Needs the `server` extra. Starts the real server (`loong serve-reward`, its own process) on 127.0.0.1,
sends a fixed number of requests per batch size (bounded in seconds too), and alternates with the same
batches judged in this process (`VerifierRouter.judge` over `AnswerKey`s, what a trainer's reward function
does), so both see the same machine load. Items: the labelled equivalence sets (boxed answers against
references, right and wrong). Prints requests/s, rewards/s, latency p50/p99, and server/in-process ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
from _hardware import hardware

from loong_env.integrations.keys import answer_key
from loong_env.routing import VerifierRouter

ROOT = Path(__file__).parents[1]
DATA = [ROOT / "tests/data/equivalence_cases.jsonl", ROOT / "tests/data/equivalence_heldout.jsonl"]
REQUESTS = {1: 300, 64: 40, 512: 10}  # per batch size and side; the time bound may stop a side earlier


def items(n: int, offset: int) -> list[dict]:
    """n score items cycled from the labelled sets, starting at `offset` (so batches differ)."""
    cases = [json.loads(line) for path in DATA for line in path.open()]
    out = []
    for i in range(n):
        c = cases[(offset + i) % len(cases)]
        response = c.get("response") or f"The answer is \\boxed{{{c['candidate']}}}."
        out.append({"id": i, "response": response, "reference": c["reference"], "tolerance": c["tolerance"]})
    return out


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, timeout_s: float = 300) -> subprocess.Popen:
    loong = Path(sys.executable).parent / "loong"
    proc = subprocess.Popen([str(loong), "serve-reward", "--port", str(port), "--max-batch", "1024"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.3)
    os.killpg(proc.pid, signal.SIGTERM)
    raise SystemExit(f"the server did not answer /health within {timeout_s} s")


class InProcess:
    """The baseline: the same items judged by a router in this process, as a trainer's reward function does."""

    def __init__(self) -> None:
        self.router = VerifierRouter()
        self.loop = asyncio.new_event_loop()
        self.loop.run_until_complete(self.router.start())

    def score(self, batch: list[dict]) -> list[float]:
        async def run() -> list[float]:
            keys = [answer_key(it["reference"], tolerance=it["tolerance"], router=self.router) for it in batch]
            verdicts = await asyncio.gather(*(self.router.judge(it["response"], k) for it, k in zip(batch, keys)))
            return [v.reward for v, _ in verdicts]

        return self.loop.run_until_complete(run())


def measure(call, batches: list[list[dict]], n_requests: int, seconds: float, concurrency: int) -> dict:
    """Fire n_requests (cycling `batches`), `concurrency` at a time, stopping early after `seconds`."""
    from concurrent.futures import ThreadPoolExecutor

    latencies: list[float] = []
    t0 = time.perf_counter()

    def one(i: int) -> None:
        if time.perf_counter() - t0 > seconds:
            return
        s = time.perf_counter()
        call(batches[i % len(batches)])
        latencies.append(time.perf_counter() - s)

    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, range(n_requests)))
    total = time.perf_counter() - t0
    done = len(latencies)
    size = len(batches[0])
    latencies.sort()
    return {"n": done, "rps": done / total, "rewards_s": done * size / total, "p50": statistics.median(latencies),
            "p99": latencies[min(done - 1, round(0.99 * (done - 1)))]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", default="1,64,512", help="batch sizes, comma-separated")
    parser.add_argument("--seconds", type=float, default=40.0, help="time bound per batch size and side")
    parser.add_argument("--concurrency", type=int, default=1, help="requests in flight at once")
    args = parser.parse_args()
    sizes = [int(b) for b in args.batches.split(",")]

    print("hardware:", hardware())
    port = free_port()
    t = time.perf_counter()
    server = start_server(port)
    print(f"server ready in {time.perf_counter() - t:.1f} s (warm-up, not counted)")
    local = InProcess()
    url = f"http://127.0.0.1:{port}/v1/score"
    clients = httpx.Client(timeout=300, limits=httpx.Limits(max_connections=args.concurrency))

    def over_http(batch: list[dict]) -> list[float]:
        reply = clients.post(url, json={"items": batch})
        reply.raise_for_status()
        return [r["reward"] for r in reply.json()["results"]]

    rows = []
    try:
        for size in sizes:
            batches = [items(size, offset=k * size) for k in range(4)]
            assert over_http(batches[0]) == local.score(batches[0]), "server and in-process verdicts differ"
            n = REQUESTS.get(size, 10)
            half = max(1, n // 2)  # alternate halves so both sides see the same machine load
            parts = {"in-process": [], "server": []}
            for _ in range(2):
                parts["in-process"].append(measure(local.score, batches, half, args.seconds / 2, 1))
                parts["server"].append(measure(over_http, batches, half, args.seconds / 2, args.concurrency))
            for side, runs in parts.items():
                merged = {"n": sum(r["n"] for r in runs), "rps": statistics.mean(r["rps"] for r in runs),
                          "rewards_s": statistics.mean(r["rewards_s"] for r in runs),
                          "p50": statistics.mean(r["p50"] for r in runs), "p99": max(r["p99"] for r in runs)}
                rows.append((size, side, merged))
    finally:
        clients.close()
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)

    print(f"\nconcurrency {args.concurrency} (server side); in-process runs one batch at a time")
    print(f"{'batch':>6} {'side':<11}{'requests':>9}{'req/s':>9}{'rewards/s':>11}{'p50 ms':>9}{'p99 ms':>9}")
    for size, side, r in rows:
        print(f"{size:>6} {side:<11}{r['n']:>9}{r['rps']:>9.1f}{r['rewards_s']:>11.0f}{r['p50'] * 1e3:>9.1f}"
              f"{r['p99'] * 1e3:>9.1f}")
    print("\nserver vs in-process (same run):")
    by = {(s, side): r for s, side, r in rows}
    for size in sizes:
        inp, srv = by[(size, "in-process")], by[(size, "server")]
        print(f"  batch {size:>4}: p50 latency x{srv['p50'] / inp['p50']:.2f} "
              f"({(srv['p50'] / inp['p50'] - 1):+.0%}), rewards/s x{srv['rewards_s'] / inp['rewards_s']:.2f}")


if __name__ == "__main__":
    main()
