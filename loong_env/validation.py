"""Proving the seed library: every rationale, run in the sandbox, must print its own final answer."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from enum import StrEnum

from pydantic import BaseModel

from loong_env.equivalence import compare
from loong_env.sandbox import Sandbox
from loong_env.seeds import SeedDataset
from loong_env.types import DataPoint, ExecutionResult


class CheckStatus(StrEnum):
    passed = "passed"
    failed = "failed"  # the code ran, but printed something else
    error = "error"  # the code did not run to completion


class SeedCheck(BaseModel):
    """The verdict on one seed, with where it lives so a failure can be fixed."""

    id: str
    domain: str
    origin: str
    status: CheckStatus
    reason: str = ""
    output: str = ""
    duration_s: float = 0.0


class DomainSummary(BaseModel):
    domain: str
    passed: int = 0
    failed: int = 0
    errors: int = 0
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return self.passed + self.failed + self.errors


class ValidationReport(BaseModel):
    checks: list[SeedCheck]
    domains: list[DomainSummary]
    seconds: float

    @property
    def ok(self) -> bool:
        return all(c.status is CheckStatus.passed for c in self.checks)

    @property
    def failures(self) -> list[SeedCheck]:
        return [c for c in self.checks if c.status is not CheckStatus.passed]


def judge(point: DataPoint, result: ExecutionResult) -> SeedCheck:
    """Turn one execution into a verdict: ran ok and printed something equivalent to final_answer."""
    origin = str(point.metadata.get("origin", point.domain))
    base = {"id": point.id, "domain": point.domain, "origin": origin, "duration_s": result.duration_s}
    if not result.ok:
        tail = (result.stderr.strip().splitlines() or [""])[-1][:200]
        return SeedCheck(**base, status=CheckStatus.error, reason=f"{result.status.value}: {tail}".rstrip(": "))
    output = result.stdout.strip()
    if not output:
        return SeedCheck(**base, status=CheckStatus.failed, reason="printed nothing")
    verdict = compare(output, point.final_answer, tolerance=point.answer_tolerance)
    if verdict.equal:
        return SeedCheck(**base, status=CheckStatus.passed, output=output[:200])
    why = verdict.error or verdict.reason
    return SeedCheck(
        **base,
        status=CheckStatus.failed,
        output=output[:200],
        reason=f"printed {output[:80]!r}, expected {point.final_answer[:80]!r}" + (f" ({why})" if why else ""),
    )


async def check_seed(sandbox: Sandbox, point: DataPoint) -> SeedCheck:
    """Run one rationale in its sandbox and judge the output: the unit of work a validation spreads out."""
    return await asyncio.to_thread(judge, point, await sandbox.run(point.rationale))


async def validate_seeds(
    dataset: SeedDataset,
    *,
    timeout_s: float = 20.0,
    on_result: Callable[[SeedCheck], None] | None = None,
) -> ValidationReport:
    """Run every rationale in the sandbox of its requirement set and compare the output to the answer."""
    start = time.perf_counter()
    groups: dict[tuple[str, ...], list[DataPoint]] = {}
    for point in dataset:
        reqs = point.required_dependencies or dataset.domain_config(point.domain).requirements
        groups.setdefault(tuple(sorted(reqs)), []).append(point)
    checks: dict[str, SeedCheck] = {}
    for requirements, points in groups.items():
        async with Sandbox(requirements=list(requirements), timeout_s=timeout_s) as sandbox:

            async def check(p: DataPoint) -> SeedCheck:
                verdict = await check_seed(sandbox, p)
                if on_result:
                    on_result(verdict)
                return verdict

            for verdict in await asyncio.gather(*(check(p) for p in points)):
                checks[verdict.origin + verdict.id] = verdict
    ordered = [checks[str(p.metadata.get("origin", p.domain)) + p.id] for p in dataset]
    return ValidationReport(checks=ordered, domains=summarize(ordered, dataset.domains),
                            seconds=time.perf_counter() - start)  # fmt: skip


def summarize(checks: Sequence[SeedCheck], domains: Sequence[str]) -> list[DomainSummary]:
    """One summary per domain, in the given order: how many seeds passed, failed and errored."""
    summaries = {d: DomainSummary(domain=d) for d in domains}
    for c in checks:
        s = summaries.setdefault(c.domain, DomainSummary(domain=c.domain))
        s.seconds += c.duration_s
        if c.status is CheckStatus.passed:
            s.passed += 1
        elif c.status is CheckStatus.failed:
            s.failed += 1
        else:
            s.errors += 1
    return list(summaries.values())
