"""`validate_seeds_ray`: seed validation spread over Ray workers; the per-seed check is validation's own.

A thin layer over `loong_env.seeds.validation`: seeds are grouped by requirement set and cut into small
chunks;
each worker actor (spread over the nodes) keeps one warm Sandbox per requirement set, built on its first
chunk of that set (the environment itself is cached on the node's disk), and answers a chunk with
`check_seed` per seed. A chunk whose worker dies is run again elsewhere: checks have no side effects.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from loong_env.distributed.cluster import RayOptions
from loong_env.seeds.dataset import SeedDataset
from loong_env.seeds.validation import (
    EnvironmentCallback,
    EnvironmentOutcome,
    SeedCheck,
    ValidationReport,
    check_seed,
    report,
    runnable_groups,
)
from loong_env.types import DataPoint


class SeedChecker:
    """The Ray actor's body: sandboxes by requirement set, created on first use and kept for the run."""

    def __init__(self, timeout_s: float, sandbox_workers: int) -> None:
        self.timeout_s = timeout_s
        self.sandbox_workers = sandbox_workers
        self._sandboxes: dict[tuple[str, ...], Any] = {}

    async def check(self, requirements: list[str], points: list[DataPoint]) -> list[SeedCheck]:
        """Run and judge each seed's rationale, concurrently on this worker's sandbox for `requirements`."""
        from loong_env.sandbox import Sandbox
        from loong_env.seeds.dataset import warmup_rationales

        key = tuple(requirements)
        if key not in self._sandboxes:
            self._sandboxes[key] = Sandbox(
                requirements,
                timeout_s=self.timeout_s,
                workers=self.sandbox_workers,
                warmup=warmup_rationales(requirements),
            )
        sandbox = self._sandboxes[key]
        return list(await asyncio.gather(*(check_seed(sandbox, p) for p in points)))

    async def close(self) -> None:
        """Stop every sandbox this worker started."""
        for sandbox in self._sandboxes.values():
            await sandbox.close()


def chunks(
    groups: list[tuple[EnvironmentOutcome, list[int]]], size: int
) -> list[tuple[EnvironmentOutcome, list[int]]]:
    """(installed environment, seed indices) work units: same-environment seeds, at most `size` per unit."""
    return [(env, idx[i : i + size]) for env, idx in groups for i in range(0, len(idx), size)]


async def validate_seeds_ray(
    dataset: SeedDataset,
    *,
    timeout_s: float = 20.0,
    ray: RayOptions | None = None,
    chunk_size: int = 8,
    relax: bool = False,
    on_result: Callable[[SeedCheck], None] | None = None,
    on_environment: EnvironmentCallback | None = None,
) -> ValidationReport:
    """`validate_seeds` on a Ray cluster: the same report, with the rationales run on worker actors.

    Requirement sets are resolved once on the driver first (so an uninstallable one is an `env_error` with
    the installer's reason, as in the local path); each worker then builds its node's copy from the cache.
    """
    from loong_env.distributed.cluster import connect, disconnect
    from loong_env.distributed.dispatch import Fleet

    options = ray or RayOptions()
    start = time.perf_counter()
    checks: dict[int, SeedCheck] = {}

    def record(index: int, check: SeedCheck) -> None:
        checks[index] = check
        if on_result is not None:
            on_result(check)

    groups, environments = await runnable_groups(dataset, record, relax=relax, on_environment=on_environment)
    cluster = connect(options.address, num_cpus=options.local_cpus)
    import ray as ray_module

    actor = ray_module.remote(SeedChecker).options(
        num_cpus=options.worker_cpus, max_restarts=0, scheduling_strategy="SPREAD"
    )
    fleet = Fleet(
        lambda _: actor.remote(timeout_s, options.sandbox_workers),
        options.workers,
        max_failures=options.failure_limit,
    )
    queue = deque(chunks(groups, max(1, chunk_size)))

    async def worker(index: int) -> None:
        while queue:
            environment, indices = queue.popleft()
            handle = fleet.handles[index]
            try:
                results = await handle.check.remote(environment.installed, [dataset[i] for i in indices])
            except ray_module.exceptions.RayActorError:
                queue.appendleft((environment, indices))  # no side effects: run it again, elsewhere or here
                fleet.replace(index, handle)
                continue
            for i, check in zip(indices, results, strict=True):
                check.relaxed = environment.relaxed
                record(i, check)

    try:
        while queue:  # a chunk handed back after some workers finished gets another round
            await asyncio.gather(*(worker(i) for i in range(options.workers)))
    finally:
        await fleet.close()
        disconnect(cluster)
    return report(dataset, checks, environments, time.perf_counter() - start)
