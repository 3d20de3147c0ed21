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
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field

from loong_env.distributed.cluster import ClusterError, ClusterInfo, RayOptions
from loong_env.distributed.dispatch import Dispatch, Fleet
from loong_env.errors import ConfigError
from loong_env.generators.base import GenerationError, GenerationStats, VerdictCallback
from loong_env.generators.keep import KeepConfig
from loong_env.generators.output import GenerationWriter
from loong_env.generators.run import GenerationSummary, domain_seeds, method_class, recorder, summarize
from loong_env.llm.config import Endpoint, LLMConfig
from loong_env.runs.metrics import METRICS_FILE, Listener, MetricsWriter
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


def start_pool(keep: KeepConfig, seeds: list[DataPoint], kept: list[DataPoint]) -> Any:
    """The run's NoveltyPool actor, on the driver's node: it holds no CPU and lives as long as the run."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    from loong_env.distributed.pool import NoveltyPool

    here = NodeAffinitySchedulingStrategy(node_id=ray.get_runtime_context().get_node_id(), soft=True)
    return ray.remote(NoveltyPool).options(num_cpus=0, scheduling_strategy=here).remote(keep, seeds, kept)


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


async def run_generation_ray(
    domain: str | os.PathLike[str],
    *,
    out: str | os.PathLike[str],
    n: int,
    method: str = "few-shot",
    ray: RayOptions | None = None,
    max_attempts: int | None = None,
    time_budget_s: float | None = None,
    base_url: str | Sequence[str] | None = None,
    model: str | None = None,
    api_key: str | None = None,
    seed: int = 0,
    concurrency: int = 4,
    max_tokens: int = 512,
    temperature: float = 0.8,
    keep_config: KeepConfig | None = None,
    seeds_root: str | os.PathLike[str] | None = None,
    sandbox_timeout_s: float = 10.0,
    on_verdict: VerdictCallback | None = None,
    stats: GenerationStats | None = None,
    on_start: Callable[[dict[str, Any]], None] | None = None,
    on_metric: Listener | None = None,
) -> RayGenerationSummary:
    """Generate until `n` items are kept in `out`, with attempts spread over Ray worker actors.

    Same stop rules, output layout and resume behaviour as `run_generation`; `concurrency` is per worker.
    A worker that dies mid-attempt has its attempts run again elsewhere (same numbers, counted once).
    """
    from loong_env.distributed.attempts import WorkerSpec
    from loong_env.distributed.cluster import connect, disconnect

    options = ray or RayOptions()
    keep = keep_config or KeepConfig()
    if keep.separate_solver:
        raise ConfigError(
            "a solver endpoint of its own (--solver-model / --solver-base-url) is not yet supported on Ray; "
            "run without --ray, or leave the solver on the writer's endpoints"
        )
    seeds, domain_name, domain_config = domain_seeds(domain, seeds_root)
    method_name = method_class(method).name
    llm, urls = resolve_llm(base_url, model, api_key, concurrency)
    writer = GenerationWriter(out, domain=domain_name).open(method=method_name, model=llm.model, target=n)
    asked = {"max_attempts": max_attempts, "time_budget_s": time_budget_s, "already": writer.accepted_count}
    info = {
        "domain": domain_name,
        "method": method_name,
        "model": llm.model,
        "target": n,
        **asked,
        "ray": True,
    }
    # one item record per attempt (LLM calls and sandbox runs happen on the workers and are not timed here)
    metrics = MetricsWriter(Path(out) / METRICS_FILE, run="generation", info=info, on_record=on_metric)
    stats = stats or GenerationStats()
    status = "interrupted"
    kept: list[DataPoint] = []
    fleet: Fleet | None = None
    pool: Any = None
    dispatch: Dispatch | None = None
    cluster: ClusterInfo | None = None
    try:
        cluster = connect(options.address, num_cpus=options.local_cpus)
        remaining = n - writer.accepted_count
        workers: list[Any] = []
        if remaining > 0:
            spec = WorkerSpec(
                domain=domain_name,
                method=method_name,
                seeds=list(seeds),
                requirements=list(domain_config.requirements),
                tolerance=domain_config.answer_tolerance,
                keep=keep,
                llm=llm,
                seed=seed,
                concurrency=concurrency,
                max_tokens=max_tokens,
                temperature=temperature,
                sandbox_workers=options.sandbox_workers,
                sandbox_timeout_s=sandbox_timeout_s,
            )
            pool = start_pool(keep, list(seeds), writer.existing)
            fleet = Fleet(
                lambda i: start_worker(spec, urls, i, pool, options),
                options.workers,
                max_failures=options.failure_limit,
            )
            workers = await ready(fleet)
            dispatch = Dispatch(
                fleet,
                pool,
                first_attempt=writer.manifest.next_attempt if writer.manifest else 0,
                slots_per_worker=concurrency,
                target=remaining,
                max_attempts=max_attempts,
                time_budget_s=time_budget_s,
                stats=stats,
                on_verdict=recorder(writer, stats, kept, on_verdict, metrics=metrics, domain=domain_name),
                method=method_name,
            )
        if on_start is not None:
            on_start(
                {
                    "domain": domain_name,
                    "method": method_name,
                    "model": llm.model,
                    "target": n,
                    "already": writer.accepted_count,
                    "out": str(out),
                    "workers": workers,
                    "nodes": cluster.nodes,
                    "address": cluster.address,
                    "endpoints": urls,
                }
            )
        if dispatch is None:
            stats.stopped_because = "target"
        else:
            await dispatch.run()
        status = stats.stopped_because or "exhausted"
    finally:
        writer.close(status, abandoned=stats.abandoned)
        metrics.close(status, accepted=stats.accepted, attempts=stats.attempts, abandoned=stats.abandoned)
        if fleet is not None:
            await fleet.close()
        if pool is not None:
            import ray

            ray.kill(pool)
        if cluster is not None:
            disconnect(cluster)
    base = summarize(out, domain_name, method_name, str(llm.model), writer, stats, status, kept)
    return RayGenerationSummary(
        **dict(base),
        workers=options.workers,
        nodes=cluster.nodes if cluster else 0,
        retried=dispatch.retried if dispatch else [],
        abandoned_attempts=dispatch.abandoned if dispatch else [],
        worker_failures=fleet.failures if fleet else 0,
    )
