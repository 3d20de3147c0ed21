"""Env overhead per item: reset+step at batch 256 vs calling the verifier directly on the same items.

    .venv/bin/python benchmarks/bench_env.py [--batch 256] [--rounds 20]

Baseline (same run): `verifier.verify_many(responses, references, tolerances)` on exactly the items the
env drew. Overhead = (env reset+step time - baseline time) / batch. Target: < 1 ms per item. A second
measurement uses a constant-verdict verifier, so the env's own cost is seen without verifier noise.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from _hardware import hardware

from loong_env.env import SingleStepEnv
from loong_env.seeds.dataset import load_seeds
from loong_env.types import Action, VerificationResult, VerificationStatus
from loong_env.verifiers.base import Verifier


class ConstantVerifier(Verifier):
    """Does no work: isolates the env's own cost."""

    name = "constant"

    async def verify(self, response, reference, *, tolerance=None):
        return VerificationResult(status=VerificationStatus.correct, reward=1.0)



def responses(datapoints) -> list[str]:
    """A realistic mix: correct, wrong, unboxed, in rotation."""
    kinds = [
        lambda dp: f"Working through it... the answer is \\boxed{{{dp.final_answer}}}.",
        lambda dp: "So the result is \\boxed{-1}.",
        lambda dp: f"I believe it is {dp.final_answer}.",
    ]
    return [kinds[i % 3](dp) for i, dp in enumerate(datapoints)]


async def run_env(env: SingleStepEnv, batch: int, seed: int, texts: list[str]) -> float:
    """Seconds for one reset + one step of the whole batch."""
    t0 = time.perf_counter()
    await env.reset(batch_size=batch, seed=seed)
    await env.step([Action(index=i, llm_response=t) for i, t in enumerate(texts)])
    return time.perf_counter() - t0


async def run_direct(verifier: Verifier, texts: list[str], refs: list[str], tols: list) -> float:
    """Seconds for the verifier alone on the same items."""
    t0 = time.perf_counter()
    await verifier.verify_many(texts, refs, tolerances=tols)
    return time.perf_counter() - t0


async def measure(
    env: SingleStepEnv, verifier: Verifier, batch: int, rounds: int
) -> tuple[list[float], list[float]]:
    env_times, direct_times = [], []
    for r in range(rounds):
        # draw the items once so both sides judge the same ones
        await env.reset(batch_size=batch, seed=r)
        dps = env.datapoints
        texts = responses(dps)
        refs = [dp.final_answer for dp in dps]
        tols = [env.router.key(dp).tolerance for dp in dps]

        if r % 2:  # alternate order so neither side always runs with warm caches
            env_times.append(await run_env(env, batch, r, texts))
            direct_times.append(await run_direct(verifier, texts, refs, tols))
        else:
            direct_times.append(await run_direct(verifier, texts, refs, tols))
            env_times.append(await run_env(env, batch, r, texts))
    return env_times, direct_times


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()

    from loong_env.verifiers.boxed import BoxedAnswerVerifier

    seeds = load_seeds()
    print(f"hardware: {hardware()}")
    print(f"seeds: {len(seeds)} in {len(seeds.domains)} domains; batch {args.batch}; rounds {args.rounds}")

    for label, verifier in [
        ("BoxedAnswerVerifier", BoxedAnswerVerifier()),
        ("constant verifier", ConstantVerifier()),
    ]:
        env = SingleStepEnv(seeds, verifier, route=False)
        await measure(env, verifier, args.batch, 2)  # warm-up: imports, worker start, caches
        env_t, direct_t = await measure(env, verifier, args.batch, args.rounds)
        env_med, direct_med = statistics.median(env_t), statistics.median(direct_t)
        overhead_ms = (env_med - direct_med) / args.batch * 1e3
        print(f"\n[{label}]")
        print(
            f"  direct verifier (baseline): {direct_med * 1e3:8.2f} ms/batch  {direct_med / args.batch * 1e6:8.1f} us/item"
        )
        print(
            f"  env reset+step:             {env_med * 1e3:8.2f} ms/batch  {env_med / args.batch * 1e6:8.1f} us/item"
        )
        print(f"  ratio env/direct:           {env_med / direct_med:8.2f}x")
        print(
            f"  env overhead per item:      {overhead_ms:8.3f} ms  (target < 1 ms) -> {'OK' if overhead_ms < 1 else 'MISSED'}"
        )


if __name__ == "__main__":
    asyncio.run(main())
