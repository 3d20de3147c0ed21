"""`run_generation_ray`: `run_generation`'s promises (crash-safe, resumable, no loss, no duplicates) on Ray.

What runs where: the driver (this process) owns the output directory's GenerationWriter and hands out
attempt numbers; worker actors run whole attempts (LLM calls to the given OpenAI-compatible endpoints,
sandboxed code, independent solves) and return verdicts; one NoveltyPool actor, placed on the driver's
node, answers every novelty question, and its claim is the single place an item becomes "kept".

    summary = await run_generation_ray("graph_discrete_math", out="out/gdm", n=1000,
                                       base_url=["http://vllm-0:8000/v1", "http://vllm-1:8000/v1"],
                                       model="Qwen/Qwen2.5-7B-Instruct", ray=RayOptions(workers=16))
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pydantic import Field

from loong_env.distributed.cluster import ClusterError, ClusterInfo, RayOptions
from loong_env.distributed.dispatch import Dispatch, Fleet
from loong_env.errors import ConfigError
from loong_env.generators.base import GenerationError
from loong_env.generators.keep import KeepConfig, novelty_floor
from loong_env.generators.novelty import NoveltyIndex
from loong_env.generators.run import GenerationRequest, GenerationRun, GenerationSummary, run_generation
from loong_env.llm.config import Endpoint, LLMConfig
from loong_env.types import DataPoint

# Building a worker (its sandbox included) takes seconds; minutes on a loaded machine.
WORKER_START_TIMEOUT_S = 180.0

if TYPE_CHECKING:
    from loong_env.distributed.attempts import WorkerSpec


class RayGenerationSummary(GenerationSummary):
    """A run_generation summary plus what the cluster did."""

    workers: int
    nodes: int
    retried: list[int] = Field(description="Attempt numbers run again because their worker died mid-attempt.")
    abandoned_attempts: list[int] = Field(
        description="Attempt numbers launched but not written (run stopped)."
    )
    worker_failures: int


def resolve_llm(
    base_url: str | Sequence[str] | None, model: str | None, api_key: str | None, concurrency: int
) -> tuple[LLMConfig, list[str]]:
    """The LLM settings every worker gets, and the endpoint URLs to spread them over.

    Settings merge as for LLMClient (loong.toml, LOONG_* variables, arguments) here on the driver, so
    workers need none of them. With no base_url the embedded local model is started here, once, and
    workers reach it over HTTP: fine for a one-machine cluster; a multi-node one needs a served model.
    """
    urls = [base_url] if isinstance(base_url, str) else list(base_url or [])
    config = LLMConfig.load(
        base_url=urls[0] if urls else None, model=model, api_key=api_key, max_concurrency=concurrency
    )
    if config.base_url is None:
        from loong_env import local

        server = local.shared_server(
            config.model or local.DEFAULT_MODEL,
            n_parallel=config.local_n_parallel,
            n_ctx=config.local_n_ctx,
            threads=config.local_threads,
        )
        config = config.model_copy(update={"base_url": server.base_url, "model": server.model})
    elif not config.model:
        raise ConfigError(
            f"base_url {config.base_url!r} needs a model: pass model=..., --model or LOONG_MODEL"
        )
    return config, urls or [str(config.base_url)]


def worker_llm(config: LLMConfig, urls: Sequence[str], index: int) -> LLMConfig:
    """Worker `index`'s settings: its own primary endpoint (round robin), the others as fallbacks."""
    if len(urls) <= 1:
        return config
    primary = urls[index % len(urls)]
    others = [Endpoint(base_url=u) for u in urls if u != primary]
    return config.model_copy(update={"base_url": primary, "fallbacks": others + list(config.fallbacks)})


def start_pool(keep: KeepConfig, seeds: list[DataPoint], index: NoveltyIndex) -> Any:
    """The run's NoveltyPool actor, on the driver's node: it holds no CPU and lives as long as the run.

    It starts from `index` (what the output folder already holds), so nothing is re-indexed.
    """
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    from loong_env.distributed.pool import NoveltyPool

    here = NodeAffinitySchedulingStrategy(node_id=ray.get_runtime_context().get_node_id(), soft=True)
    actor = ray.remote(NoveltyPool).options(num_cpus=0, scheduling_strategy=here)
    return actor.remote(keep, seeds, index=index)


def start_worker(spec: WorkerSpec, urls: Sequence[str], index: int, pool: Any, options: RayOptions) -> Any:
    """Worker actor `index`, with its own primary LLM endpoint; never restarted by Ray (the driver does)."""
    import ray

    from loong_env.distributed.attempts import AttemptWorker

    actor = ray.remote(AttemptWorker).options(num_cpus=options.worker_cpus, max_restarts=0)
    return actor.remote(spec.model_copy(update={"llm": worker_llm(spec.llm, urls, index)}), pool)


async def ready(fleet: Fleet, timeout_s: float = WORKER_START_TIMEOUT_S) -> list[Any]:
    """Wait until every worker is built: attempts start together, and a broken node fails here, not later.

    Ray never reports a worker process that cannot start (its actor just stays pending), hence the timeout.
    """
    try:
        return list(
            await asyncio.wait_for(asyncio.gather(*(h.info.remote() for h in fleet.handles)), timeout_s)
        )
    except TimeoutError as exc:
        raise ClusterError(
            f"the worker actors did not start within {timeout_s:.0f} s: Ray could not start their processes "
            "or has no free CPUs for them (`ray status`; raylet and worker logs in /tmp/ray/session_latest)"
        ) from exc
    except Exception as exc:
        raise GenerationError(
            f"the worker actors could not start: {type(exc).__name__}: {exc}"[:800]
        ) from exc


class RayExecutor:
    """Attempts on Ray worker actors; one NoveltyPool actor answers every novelty question and claim."""

    def __init__(self, options: RayOptions | None = None) -> None:
        self.options = options or RayOptions()
        self.cluster: ClusterInfo | None = None
        self.fleet: Fleet | None = None
        self.pool: Any = None
        self.dispatch: Dispatch | None = None
        self._llm: LLMConfig | None = None
        self._urls: list[str] = []

    async def open(self, request: GenerationRequest) -> str:
        """Settle the LLM settings here on the driver (workers need none of them); the model id."""
        if request.keep_config.separate_solver:
            raise ConfigError(
                "a solver endpoint of its own (--solver-model / --solver-base-url) is not yet supported on "
                "Ray; run without --ray, or leave the solver on the writer's endpoints"
            )
        self._llm, self._urls = resolve_llm(
            request.base_url, request.model, request.api_key, request.concurrency
        )
        return str(self._llm.model)

    async def run(self, run: GenerationRun) -> None:
        from loong_env.distributed.attempts import WorkerSpec
        from loong_env.distributed.cluster import connect

        request, options = run.request, self.options
        assert self._llm is not None, "open() first"
        self.cluster = connect(options.address, num_cpus=options.local_cpus)
        spec = WorkerSpec(
            domain=run.domain,
            method=run.method.name,
            seeds=list(run.seeds),
            requirements=list(run.config.requirements),
            tolerance=run.config.answer_tolerance,
            keep=request.keep_config,
            llm=self._llm,
            seed=request.seed,
            concurrency=request.concurrency,
            max_tokens=request.max_tokens,
            temperature=request.temperature,
            sandbox_workers=options.sandbox_workers,
            sandbox_timeout_s=request.sandbox_timeout_s,
        )
        index = run.writer.novelty_index(floor=novelty_floor(request.keep_config))
        self.pool = start_pool(request.keep_config, list(run.seeds), index)
        self.fleet = Fleet(
            lambda i: start_worker(spec, self._urls, i, self.pool, options),
            options.workers,
            max_failures=options.failure_limit,
        )
        workers = await ready(self.fleet)
        self.dispatch = Dispatch(
            self.fleet,
            self.pool,
            first_attempt=run.first_attempt,
            slots_per_worker=request.concurrency,
            target=run.remaining,
            max_attempts=request.max_attempts,
            time_budget_s=request.time_budget_s,
            stats=run.stats,
            on_verdict=run.recorder(),
            method=run.method.name,
        )
        run.announce(
            workers=workers, nodes=self.cluster.nodes, address=self.cluster.address, endpoints=self._urls
        )
        try:
            await self.dispatch.run()
        finally:
            with contextlib.suppress(Exception):  # the pool actor is gone: the next run re-indexes
                run.writer.save_novelty_index(await self.pool.export.remote(), copy=True)

    async def close(self) -> None:
        from loong_env.distributed.cluster import disconnect

        if self.fleet is not None:
            await self.fleet.close()
        if self.pool is not None:
            import ray

            ray.kill(self.pool)
        if self.cluster is not None:
            disconnect(self.cluster)

    def summarize(self, summary: GenerationSummary) -> RayGenerationSummary:
        return RayGenerationSummary(
            **dict(summary),
            workers=self.options.workers,
            nodes=self.cluster.nodes if self.cluster else 0,
            retried=self.dispatch.retried if self.dispatch else [],
            abandoned_attempts=self.dispatch.abandoned if self.dispatch else [],
            worker_failures=self.fleet.failures if self.fleet else 0,
        )


async def run_generation_ray(
    domain: str | os.PathLike[str] | None = None, *, ray: RayOptions | None = None, **options: Any
) -> RayGenerationSummary:
    """`run_generation` with attempts spread over Ray worker actors (`concurrency` is per worker).

    Same request, stop rules, output layout and resume behaviour; a worker that dies mid-attempt has its
    attempts run again elsewhere (same numbers, counted once). `base_url` may list several endpoints.
    """
    summary = await run_generation(domain, executor=RayExecutor(ray), **options)
    assert isinstance(summary, RayGenerationSummary)
    return summary
