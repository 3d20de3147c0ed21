"""`run_generation`: one call from a domain name to a resumable output directory (the CLI and demo use it)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator

from loong_env.errors import UnknownNameError
from loong_env.generators.base import CandidateGenerator, GenerationError, GenerationStats, VerdictCallback
from loong_env.generators.evol_instruct import EvolInstructGenerator
from loong_env.generators.few_shot import FewShotGenerator
from loong_env.generators.keep import ChatClient, KeepConfig, KeepRule, RejectReason, Runner, Verdict
from loong_env.generators.output import GenerationWriter
from loong_env.generators.self_instruct import SelfInstructGenerator
from loong_env.runs.frame import RunFrame
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


class GenerationRequest(BaseModel):
    """What a generation run is asked to do: one model for every executor, so a knob is added once."""

    model_config = ConfigDict(extra="forbid")

    domain: str | Path = Field(description="A library domain's name or a domain folder.")
    out: Path = Field(description="The output folder; a run there resumes what is in it.")
    n: int = Field(description="Kept items to reach in `out`, earlier runs included.")
    method: str = "few-shot"
    max_attempts: int | None = None
    time_budget_s: float | None = None
    base_url: str | list[str] | None = Field(
        default=None, description="OpenAI-compatible endpoint(s); None: the embedded local model."
    )
    model: str | None = None
    api_key: str | None = None
    seed: int = 0
    concurrency: int = Field(default=4, description="Candidates in flight (per worker on Ray).")
    max_tokens: int = 512
    temperature: float = 0.8
    keep_config: KeepConfig = Field(default_factory=KeepConfig)
    seeds_root: Path | None = None
    sandbox_timeout_s: float = 10.0

    @field_validator("keep_config", mode="before")
    @classmethod
    def _default_keep(cls, value: Any) -> Any:
        return KeepConfig() if value is None else value


class GenerationRun:
    """One run as its executor sees it: the request, the domain's seeds, the open output folder, its hooks."""

    def __init__(
        self,
        request: GenerationRequest,
        seeds: tuple[SeedDataset, str, DomainConfig],
        *,
        writer: GenerationWriter,
        metrics: MetricsWriter,
        stats: GenerationStats,
        on_verdict: VerdictCallback | None,
        on_start: Callable[[dict[str, Any]], None] | None,
        model: str,
    ) -> None:
        self.request = request
        self.seeds, self.domain, self.config = seeds
        self.method = method_class(request.method)
        self.writer, self.metrics, self.stats, self.model = writer, metrics, stats, model
        self._on_verdict, self._on_start = on_verdict, on_start
        self.kept: list[DataPoint] = []  # kept in this run, in the order they were written

    @property
    def remaining(self) -> int:
        return self.request.n - self.writer.accepted_count

    @property
    def first_attempt(self) -> int:
        return self.writer.manifest.next_attempt if self.writer.manifest else 0

    def recorder(self, kept: list[DataPoint] | None = None) -> Callable[[Verdict], Awaitable[None]]:
        """The per-verdict step: written durably, then metrics, then `on_verdict` (see `recorder`)."""
        if kept is not None:
            self.kept = kept
        return recorder(
            self.writer, self.stats, self.kept, self._on_verdict, metrics=self.metrics, domain=self.domain
        )

    def announce(self, **extra: Any) -> None:
        """Tell `on_start` the run is under way (what it runs, what is already done, plus the executor's)."""
        if self._on_start is not None:
            self._on_start(
                {
                    "domain": self.domain,
                    "method": self.method.name,
                    "model": self.model,
                    "already": self.writer.accepted_count,
                    "target": self.request.n,
                    "out": str(self.request.out),
                    **extra,
                }
            )


class Executor(Protocol):
    """Where a run's attempts happen: this process (`LocalExecutor`) or a Ray cluster (`distributed`)."""

    async def open(self, request: GenerationRequest) -> str:
        """Start what the run needs before its folder opens; the model id it will record."""
        ...

    async def run(self, run: GenerationRun) -> None:
        """Run attempts until the run's stop rules say stop; `run.announce(...)` once under way."""
        ...

    async def close(self) -> None:
        """Release what `open` and `run` started."""
        ...

    def summarize(self, summary: GenerationSummary) -> GenerationSummary:
        """The run's summary, with whatever this executor adds to it."""
        ...


class LocalExecutor:
    """Attempts in this process: one client writes, repairs and solves; one sandbox runs the code."""

    def __init__(self, client: ChatClient | None = None, sandbox: Runner | None = None) -> None:
        self.client, self.sandbox = client, sandbox
        self._owned: list[Any] = []

    async def open(self, request: GenerationRequest) -> str:
        if self.client is None:
            from loong_env.llm import LLMClient

            if isinstance(request.base_url, list):
                raise GenerationError("several base URLs need the Ray executor (run_generation_ray)")
            self.client = LLMClient(
                base_url=request.base_url,
                model=request.model,
                api_key=request.api_key,
                max_concurrency=request.concurrency,
            )
            self._owned.append(self.client)
        return str(getattr(self.client, "model", None) or request.model or "")

    async def run(self, run: GenerationRun) -> None:
        request, config = run.request, run.config
        if self.sandbox is None:
            requirements = list(config.requirements)
            self.sandbox = default_sandbox(requirements, timeout_s=request.sandbox_timeout_s)
            self._owned.append(self.sandbox)
        # every LLM call and sandbox run becomes a metrics record
        client, runner = TimedClient(self.client, run.metrics), TimedRunner(self.sandbox, run.metrics)
        # one client writes and repairs; it also solves unless the keep config names a solver endpoint or
        # model of its own (the solve never sees the code, the repair only its own code)
        solver = client
        if request.keep_config.separate_solver:
            own = solver_client_for(
                request.keep_config,
                base_url=request.base_url if isinstance(request.base_url, str) else None,
                api_key=request.api_key,
                concurrency=request.concurrency,
            )
            self._owned.append(own)
            solver = TimedClient(own, run.metrics)
        keep = KeepRule(
            runner,
            solver,
            writer=client,
            config=request.keep_config,
            tolerance=config.answer_tolerance,
            requirements=list(config.requirements),
            router=domain_router(run.domain, config),
        )
        keep.pool = run.writer.novelty_index(floor=keep.pool.floor)  # earlier runs kept, not re-read
        generator = run.method(
            run.seeds,
            client,
            keep,
            domain=run.domain,
            requirements=config.requirements,
            seed=request.seed,
            concurrency=request.concurrency,
            max_tokens=request.max_tokens,
            temperature=request.temperature,
        )
        recent = run.writer.recent
        generator.remember(recent)  # the latest kept items as demonstrations
        generator.next_attempt = run.first_attempt
        run.announce()
        record = run.recorder(generator.kept)
        try:
            await generator.run(
                target=run.remaining,
                max_attempts=request.max_attempts,
                time_budget_s=request.time_budget_s,
                on_verdict=record,
                stats=run.stats,
            )
        finally:
            run.kept = generator.kept[len(recent) :]
            run.writer.save_novelty_index(keep.pool)  # a resumed run starts from it, not from a re-read

    async def close(self) -> None:
        for resource in reversed(self._owned):
            if hasattr(resource, "close"):
                await resource.close()

    def summarize(self, summary: GenerationSummary) -> GenerationSummary:
        return summary


async def run_generation(
    domain: str | os.PathLike[str] | None = None,
    *,
    request: GenerationRequest | None = None,
    executor: Executor | None = None,
    client: ChatClient | None = None,
    sandbox: Runner | None = None,
    on_verdict: VerdictCallback | None = None,
    stats: GenerationStats | None = None,
    on_start: Callable[[dict[str, Any]], None] | None = None,
    on_metric: Listener | None = None,
    **fields: Any,
) -> GenerationSummary:
    """Generate until `n` items are kept in `out` (earlier runs count), `max_attempts` or `time_budget_s`.

    Pass a `GenerationRequest`, or its fields as keywords (`run_generation("logic", out=..., n=10)`).
    Without `client` or `base_url` it uses the embedded local model; `executor` runs attempts elsewhere
    (`loong_env.distributed.RayExecutor`). Every finished attempt is written (accepted.jsonl /
    rejected.jsonl) before `on_verdict` sees it; cancelling the task (Ctrl-C) leaves a directory that the
    same call resumes. Live metrics (every attempt, LLM call and sandbox run) are appended to
    `out/metrics.jsonl` as the run goes (`loong report out`); `on_metric` sees each record.
    """
    if request is None:
        request = GenerationRequest(domain=domain, **fields)
    elif domain is not None or fields:
        raise GenerationError("pass either a GenerationRequest or its fields, not both")
    if executor is None:
        executor = LocalExecutor(client, sandbox)
    elif client is not None or sandbox is not None:
        raise GenerationError("client= and sandbox= belong to the LocalExecutor; pass them to it")
    stats = stats or GenerationStats()
    run: GenerationRun | None = None
    seeds = domain_seeds(request.domain, request.seeds_root)
    domain_name, method = seeds[1], method_class(request.method).name
    try:
        model = await executor.open(request)
        writer = GenerationWriter(request.out, domain=domain_name).open(
            method=method, model=model, target=request.n
        )
        info = {
            "domain": domain_name,
            "method": method,
            "model": model,
            "target": request.n,
            "max_attempts": request.max_attempts,
            "time_budget_s": request.time_budget_s,
            "already": writer.accepted_count,
            "keep": request.keep_config.model_dump(mode="json"),  # the card of an export shows it
        }
        metrics = MetricsWriter(request.out / METRICS_FILE, run="generation", info=info, on_record=on_metric)
        frame = RunFrame(
            writer,
            metrics,
            store_info=lambda: {"abandoned": stats.abandoned},
            end_info=lambda: {
                "accepted": stats.accepted,
                "attempts": stats.attempts,
                "abandoned": stats.abandoned,
            },
        )
        async with frame:
            run = GenerationRun(
                request,
                seeds,
                writer=writer,
                metrics=metrics,
                stats=stats,
                on_verdict=on_verdict,
                on_start=on_start,
                model=model,
            )
            if run.remaining <= 0:
                run.announce()
                stats.stopped_because = "target"
            else:
                await executor.run(run)
            frame.status = stats.stopped_because or "exhausted"
    finally:
        await executor.close()
    summary = summarize(request.out, domain_name, method, model, writer, stats, frame.status, run.kept)
    return executor.summarize(summary)


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
