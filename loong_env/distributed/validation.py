"""`validate_seeds_ray`: seed validation spread over Ray workers; the per-seed check is validation's own.

A thin layer over `loong_env.validation`: seeds are grouped by requirement set and cut into small chunks;
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
from loong_env.seeds import SeedDataset
from loong_env.types import DataPoint
from loong_env.validation import SeedCheck, ValidationReport, check_seed, summarize


class SeedChecker:
    """The Ray actor's body: sandboxes by requirement set, created on first use and kept for the run."""

    def __init__(self, timeout_s: float, sandbox_workers: int) -> None:
        self.timeout_s = timeout_s
        self.sandbox_workers = sandbox_workers
        self._sandboxes: dict[tuple[str, ...], Any] = {}

    async def check(self, requirements: list[str], points: list[DataPoint]) -> list[SeedCheck]:
        """Run and judge each seed's rationale, concurrently on this worker's sandbox for `requirements`."""
        from loong_env.sandbox import Sandbox

        key = tuple(requirements)
        if key not in self._sandboxes:
            self._sandboxes[key] = Sandbox(
                requirements, timeout_s=self.timeout_s, workers=self.sandbox_workers
            )
        sandbox = self._sandboxes[key]
        return list(await asyncio.gather(*(check_seed(sandbox, p) for p in points)))

    async def close(self) -> None:
        """Stop every sandbox this worker started."""
        for sandbox in self._sandboxes.values():
            await sandbox.close()


def chunks(dataset: SeedDataset, size: int) -> list[tuple[list[str], list[int]]]:
    """(requirements, seed indices) work units: same-requirement seeds, at most `size` per unit."""
    groups: dict[tuple[str, ...], list[int]] = {}
    for index, point in enumerate(dataset):
        reqs = point.required_dependencies or dataset.domain_config(point.domain).requirements
        groups.setdefault(tuple(sorted(reqs)), []).append(index)
    return [(list(reqs), idx[i : i + size]) for reqs, idx in groups.items() for i in range(0, len(idx), size)]


async def validate_seeds_ray(
    dataset: SeedDataset,
    *,
    timeout_s: float = 20.0,
    ray: RayOptions | None = None,
    chunk_size: int = 8,
    on_result: Callable[[SeedCheck], None] | None = None,
) -> ValidationReport:
    """`validate_seeds` on a Ray cluster: the same report, with the rationales run on worker actors."""
    from loong_env.distributed.cluster import connect, disconnect
    from loong_env.distributed.dispatch import Fleet

    options = ray or RayOptions()
    start = time.perf_counter()
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
    queue = deque(chunks(dataset, max(1, chunk_size)))
    checks: dict[int, SeedCheck] = {}

    async def worker(index: int) -> None:
        while queue:
            requirements, indices = queue.popleft()
            handle = fleet.handles[index]
            try:
                results = await handle.check.remote(requirements, [dataset[i] for i in indices])
            except ray_module.exceptions.RayActorError:
                queue.appendleft((requirements, indices))  # no side effects: run it again, elsewhere or here
                fleet.replace(index, handle)
                continue
            for i, check in zip(indices, results, strict=True):
                checks[i] = check
                if on_result is not None:
                    on_result(check)

    try:
        while queue:  # a chunk handed back after some workers finished gets another round
            await asyncio.gather(*(worker(i) for i in range(options.workers)))
    finally:
        await fleet.close()
        disconnect(cluster)
    ordered = [checks[i] for i in range(len(dataset))]
    return ValidationReport(
        checks=ordered, domains=summarize(ordered, dataset.domains), seconds=time.perf_counter() - start
    )
