"""`run_generation`: one call from a domain name to a resumable output directory (the CLI and demo use it)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from loong_env.errors import UnknownNameError
from loong_env.generators.base import CandidateGenerator, GenerationError, GenerationStats, VerdictCallback
from loong_env.generators.evol_instruct import EvolInstructGenerator
from loong_env.generators.few_shot import FewShotGenerator
from loong_env.generators.keep import ChatClient, KeepConfig, KeepRule, RejectReason, Runner, Verdict
from loong_env.generators.output import GenerationWriter
from loong_env.generators.self_instruct import SelfInstructGenerator
from loong_env.runs.metrics import METRICS_FILE, ItemRecord, Listener, MetricsWriter
from loong_env.runs.timing import TimedClient, TimedRunner
from loong_env.types import DataPoint

if TYPE_CHECKING:
    from loong_env.seeds.dataset import DomainConfig, SeedDataset

# Reject reasons that are failures of the machinery, not of the candidate: the report counts them as errors.
ERROR_REASONS = frozenset({RejectReason.llm_error.value, RejectReason.internal_error.value})

METHODS: dict[str, type[CandidateGenerator]] = {
    "few-shot": FewShotGenerator,
    "self-instruct": SelfInstructGenerator,
    "evol-instruct": EvolInstructGenerator,
}


def method_class(method: str) -> type[CandidateGenerator]:
    """The generator class for a method name (`few-shot`, `few_shot` and `fewshot` all work)."""
    key = method.lower().replace("_", "-")
    key = {"fewshot": "few-shot", "selfinstruct": "self-instruct", "evol": "evol-instruct"}.get(key, key)
    if key not in METHODS:
        raise UnknownNameError("generation method", method, METHODS)
    return METHODS[key]


class GenerationSummary(BaseModel):
    """What one `run_generation` call did, and where the results are."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    out_dir: Path
    domain: str
    method: str
    model: str | None
    accepted_total: int = Field(description="Accepted items in the directory, earlier runs included.")
    accepted: int = Field(description="Accepted in this run.")
    rejected: int
    rejected_by_reason: dict[str, int]
    attempts: int
    abandoned: int
    tokens: int
    elapsed_s: float
    stopped_because: str
    kept: list[DataPoint] = Field(default_factory=list)

    @property
    def acceptance(self) -> float:
        finished = self.accepted + self.rejected
        return self.accepted / finished if finished else 0.0

    @property
    def seconds_per_kept(self) -> float | None:
        return self.elapsed_s / self.accepted if self.accepted else None


def default_sandbox(requirements: list[str], *, timeout_s: float = 10.0) -> Runner:
    """The project sandbox for a domain's requirement set."""
    from loong_env.sandbox import Sandbox
    from loong_env.seeds.dataset import warmup_rationales

    return Sandbox(requirements=requirements, timeout_s=timeout_s, warmup=warmup_rationales(requirements))


async def run_generation(
    domain: str | os.PathLike[str],
    *,
    out: str | os.PathLike[str],
    n: int,
    method: str = "few-shot",
    max_attempts: int | None = None,
    time_budget_s: float | None = None,
    client: ChatClient | None = None,
    base_url: str | None = None,
    model: str | None = None,
    api_key: str | None = None,
    seed: int = 0,
    concurrency: int = 4,
    max_tokens: int = 512,
    temperature: float = 0.8,
    keep_config: KeepConfig | None = None,
    seeds_root: str | os.PathLike[str] | None = None,
    sandbox: Runner | None = None,
    on_verdict: VerdictCallback | None = None,
    stats: GenerationStats | None = None,
    on_start: Callable[[dict[str, Any]], None] | None = None,
    on_metric: Listener | None = None,
) -> GenerationSummary:
    """Generate until `n` items are kept in `out` (earlier runs count), `max_attempts` or `time_budget_s`.

    Without `client` or `base_url` it uses the embedded local model. Every finished attempt is written
    (accepted.jsonl / rejected.jsonl) before `on_verdict` sees it; cancelling the task (Ctrl-C) leaves a
    directory that the same call resumes. Live metrics (every attempt, LLM call and sandbox run) are
    appended to `out/metrics.jsonl` as the run goes (`loong report out`); `on_metric` sees each record.
    """
    seeds, domain_name, config = domain_seeds(domain, seeds_root)
    method_cls = method_class(method)
    own_client = client is None
    if client is None:
        from loong_env.llm import LLMClient

        client = LLMClient(base_url=base_url, model=model, api_key=api_key, max_concurrency=concurrency)
    own_sandbox = sandbox is None
    runner: Runner = sandbox or default_sandbox(list(config.requirements))
    model_name = str(getattr(client, "model", None) or model or "")
    writer = GenerationWriter(out, domain=domain_name)
    writer.open(method=method_cls.name, model=model_name, target=n)
    asked = {"max_attempts": max_attempts, "time_budget_s": time_budget_s, "already": writer.accepted_count}
    info = {"domain": domain_name, "method": method_cls.name, "model": model_name, "target": n, **asked}
    metrics = MetricsWriter(Path(out) / METRICS_FILE, run="generation", info=info, on_record=on_metric)
    stats = stats or GenerationStats()
    status = "interrupted"
    solver_client: Any = None
    try:
        # every LLM call and sandbox run becomes a metrics record
        timed_client, timed_runner = TimedClient(client, metrics), TimedRunner(runner, metrics)
        # one client writes and repairs; it also solves unless the keep config names a solver endpoint or
        # model of its own (the solve never sees the code, the repair only its own code)
        solver = timed_client
        if keep_config is not None and keep_config.separate_solver:
            solver_client = solver_client_for(
                keep_config, base_url=base_url, api_key=api_key, concurrency=concurrency
            )
            solver = TimedClient(solver_client, metrics)
        keep = KeepRule(
            timed_runner,
            solver,
            writer=timed_client,
            config=keep_config,
            tolerance=config.answer_tolerance,
            requirements=list(config.requirements),
            router=domain_router(domain_name, config),
        )
        generator = method_cls(
            seeds,
            timed_client,
            keep,
            domain=domain_name,
            requirements=config.requirements,
            seed=seed,
            concurrency=concurrency,
            max_tokens=max_tokens,
            temperature=temperature,
        )
        generator.remember(writer.existing)
        generator.next_attempt = writer.manifest.next_attempt if writer.manifest else 0
        if on_start is not None:
            on_start(
                {
                    "domain": domain_name,
                    "method": generator.name,
                    "model": model_name,
                    "already": writer.accepted_count,
                    "target": n,
                    "out": str(out),
                }
            )

        record = recorder(writer, stats, generator.kept, on_verdict, metrics=metrics, domain=domain_name)
        remaining = n - writer.accepted_count
        if remaining <= 0:
            stats.stopped_because = "target"
        else:
            await generator.run(
                target=remaining,
                max_attempts=max_attempts,
                time_budget_s=time_budget_s,
                on_verdict=record,
                stats=stats,
            )
        status = stats.stopped_because or "exhausted"
    finally:
        writer.close(status, abandoned=stats.abandoned)
        metrics.close(status, accepted=stats.accepted, attempts=stats.attempts, abandoned=stats.abandoned)
        if own_sandbox and hasattr(runner, "close"):
            await runner.close()
        if own_client and hasattr(client, "close"):
            await client.close()
        if solver_client is not None:
            await solver_client.close()
    kept = generator.kept[len(writer.existing) :]
    return summarize(out, domain_name, generator.name, model_name, writer, stats, status, kept)


def solver_client_for(
    config: KeepConfig, *, base_url: str | None = None, api_key: str | None = None, concurrency: int = 4
) -> Any:
    """The solver's own client: its endpoint and model, each falling back to the writer's `base_url` / key.

    Without any base URL a model name is a local model (started in-process), like the writer's.
    """
    from loong_env.llm import LLMClient

    key = config.solver_api_key.get_secret_value() if config.solver_api_key else api_key
    url = config.solver_base_url or base_url
    return LLMClient(base_url=url, model=config.solver_model, api_key=key, max_concurrency=concurrency)


def domain_router(name: str, config: DomainConfig) -> Any:
    """The router the env will reward this domain's items by: this run's domain config, else the library's."""
    from loong_env.routing import VerifierRouter, library_domain

    return VerifierRouter(domain_config=lambda domain: config if domain == name else library_domain(domain))


def domain_seeds(
    domain: str | os.PathLike[str], seeds_root: str | os.PathLike[str] | None = None
) -> tuple[SeedDataset, str, DomainConfig]:
    """The seeds of one domain (a name or a folder), its name and its config; raises if it has none."""
    from loong_env.seeds.dataset import load_seeds

    seeds = load_seeds(domain, root=seeds_root)
    if not seeds:
        raise GenerationError(f"domain {str(domain)!r} has no seeds to generate from")
    name = seeds.domains[0]
    seeds = seeds.filter(domain=name)
    return seeds, name, seeds.domain_config(name)


def recorder(
    writer: GenerationWriter,
    stats: GenerationStats,
    kept: list[DataPoint],
    on_verdict: VerdictCallback | None,
    *,
    metrics: MetricsWriter | None = None,
    domain: str = "",
) -> Callable[[Verdict], Awaitable[None]]:
    """The per-verdict step of every run: write it durably first, then its metrics, then tell `on_verdict`.

    An accepted verdict the writer finds on disk already is counted as a `duplicate` rejection instead.
    """

    async def record(verdict: Verdict) -> None:
        duplicate = not writer.record(verdict) and verdict.accepted
        if duplicate:
            stats.accepted -= 1
            stats.rejected["duplicate"] += 1
            if verdict.datapoint in kept:
                kept.remove(verdict.datapoint)
        if metrics is not None:
            metrics.write(verdict_record(verdict, domain, duplicate=duplicate))
        if on_verdict is not None:
            result = on_verdict(verdict)
            if asyncio.iscoroutine(result):
                await result

    return record


def summarize(
    out: str | os.PathLike[str],
    domain: str,
    method: str,
    model: str,
    writer: GenerationWriter,
    stats: GenerationStats,
    status: str,
    kept: list[DataPoint],
) -> GenerationSummary:
    """What a finished run did: counts from `stats`, the directory's total from `writer`."""
    return GenerationSummary(
        out_dir=Path(out),
        domain=domain,
        method=method,
        model=model or None,
        accepted_total=writer.accepted_count,
        accepted=stats.accepted,
        rejected=sum(stats.rejected.values()),
        rejected_by_reason=dict(stats.rejected),
        attempts=stats.attempts,
        abandoned=stats.abandoned,
        tokens=stats.tokens,
        elapsed_s=round(stats.elapsed_s, 3),
        stopped_because=status,
        kept=kept,
    )


def verdict_record(verdict: Verdict, domain: str, *, duplicate: bool = False) -> ItemRecord:
    """The metrics record of one finished attempt (tokens are counted on its LLM calls, not here)."""
    ok = verdict.accepted and not duplicate
    reason = None if ok else "duplicate" if duplicate else str(verdict.reason)
    return ItemRecord(
        ok=ok,
        outcome="accepted" if ok else "rejected",
        reason=reason,
        error=reason if reason in ERROR_REASONS else None,
        seconds=verdict.timings.get("total_s", 0.0),
        domain=domain,
    )
