"""Proving the seed library: every rationale, run in the sandbox, must print its own final answer.

Records are grouped by requirement set; each set's environment is resolved once. A set the installer
cannot provide (unresolvable pin, a package uv refuses, a failed build, no network) marks every record
needing it `env_error` with the installer's one-line reason, and every other record still runs. With
`relax_pins=True` a failing set is retried once with the same package names and no version pins.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from enum import StrEnum

from pydantic import BaseModel, Field

from loong_env.errors import ConfigError
from loong_env.sandbox import Sandbox
from loong_env.sandbox.envs import ensure_env, normalize_requirements
from loong_env.sandbox.errors import EnvCreationError, InstallRefusedError
from loong_env.seeds.dataset import SeedDataset, warmup_rationales
from loong_env.types import DataPoint, ExecutionResult
from loong_env.verifiers.code_output import OutputStatus, ReadingRule, judge_output


class CheckStatus(StrEnum):
    passed = "passed"
    wrong_answer = "wrong_answer"  # the code ran and printed something else (or undecidable)
    code_error = "code_error"  # raised, printed nothing, or hit a memory / output limit
    timeout = "timeout"
    env_error = "env_error"  # its requirements could not be installed; the code never ran
    no_code = "no_code"  # an answer-only record: nothing to run (reported, not a failure)


_FROM_OUTPUT = {
    OutputStatus.passed: CheckStatus.passed,
    OutputStatus.wrong_answer: CheckStatus.wrong_answer,
    OutputStatus.undecided: CheckStatus.wrong_answer,
    OutputStatus.timeout: CheckStatus.timeout,
}


class SeedCheck(BaseModel):
    """The verdict on one seed, with where it lives so a failure can be fixed."""

    id: str
    domain: str
    origin: str
    status: CheckStatus
    reason: str = ""
    output: str = Field(default="", description="The answer read from the output (first 200 characters).")
    rule: ReadingRule | None = Field(default=None, description="Which output-reading rule read it.")
    relaxed: bool = Field(default=False, description="Ran with its requirement pins relaxed (--relax-pins).")
    duration_s: float = 0.0

    @property
    def failed(self) -> bool:
        """Whether this seed counts against the library (answer-only records do not)."""
        return self.status not in (CheckStatus.passed, CheckStatus.no_code)


class DomainSummary(BaseModel):
    """Counts per outcome for one domain."""

    domain: str
    passed: int = 0
    wrong_answer: int = 0
    code_error: int = 0
    timeout: int = 0
    env_error: int = 0
    no_code: int = 0
    relaxed: int = 0
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(getattr(self, s.value) for s in CheckStatus)

    @property
    def runnable(self) -> int:
        """Seeds that have code to run: the denominator of the reproduction rate."""
        return self.total - self.no_code


class EnvironmentOutcome(BaseModel):
    """How one requirement set was resolved: installed as asked, installed relaxed, or not at all."""

    requirements: list[str]
    installed: list[str] | None = None
    relaxed: bool = False
    error: str | None = Field(default=None, description="The installer's one-line reason when it failed.")
    seeds: int = 0


class ValidationReport(BaseModel):
    checks: list[SeedCheck]
    domains: list[DomainSummary]
    environments: list[EnvironmentOutcome] = Field(default_factory=list)
    seconds: float

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def failures(self) -> list[SeedCheck]:
        return [c for c in self.checks if c.failed]


def _base(point: DataPoint) -> dict[str, str]:
    return {"id": point.id, "domain": point.domain, "origin": str(point.metadata.get("origin", point.domain))}


def judge(point: DataPoint, result: ExecutionResult) -> SeedCheck:
    """Turn one execution into a verdict by the shared output rule (loong_env.verifiers.code_output)."""
    verdict = judge_output(result, point.final_answer, tolerance=point.answer_tolerance)
    status = _FROM_OUTPUT.get(verdict.status, CheckStatus.code_error)
    return SeedCheck(
        **_base(point),
        status=status,
        reason="" if verdict.passed else verdict.reason,
        output=(verdict.answer or "")[:200],
        rule=verdict.rule,
        duration_s=result.duration_s,
    )


def installer_reason(message: str) -> str:
    """The one line of an installer's failure that says why (uv's `error:` plus its `cause:` / `╰─▶`)."""
    lines = [ln.strip() for ln in message.splitlines() if ln.strip()]
    error = next((ln for ln in lines if ln.startswith(("error:", "×"))), None)
    cause = next((ln for ln in lines if ln.startswith(("cause:", "╰─▶", "Caused by:", "Because"))), None)
    parts = [_after_tag(p).rstrip(":") for p in (error, cause) if p]
    text = ": ".join(parts) if parts else (lines[-1] if lines else "unknown installer failure")
    return text if len(text) <= 300 else text[:297] + "..."


def _after_tag(line: str) -> str:
    if line.startswith(("error:", "cause:", "Caused by:")):
        return line.split(":", 1)[1].strip()
    return line.lstrip("×╰─▶ ")


def relax_pins(requirements: Sequence[str]) -> list[str]:
    """The same package names (extras and markers kept) with no version pins: uv then takes the newest
    versions compatible with this Python and with each other."""
    from packaging.requirements import Requirement
    from packaging.specifiers import SpecifierSet

    out = []
    for text in requirements:
        req = Requirement(text)
        req.specifier = SpecifierSet()
        req.url = None
        out.append(str(req))
    return sorted(set(out))


def resolve_environment(requirements: Sequence[str], *, relax: bool = False) -> EnvironmentOutcome:
    """Install (or find cached) one requirement set; a failure is an outcome with a reason, never a raise."""
    asked = list(requirements)
    try:
        wanted = normalize_requirements(asked)
        ensure_env(wanted, progress=False)
        return EnvironmentOutcome(requirements=asked, installed=wanted)
    except ConfigError as exc:  # not even a requirement: nothing to relax
        return EnvironmentOutcome(requirements=asked, error=str(exc))
    except InstallRefusedError as exc:
        if exc.setting != "allow_source_builds":  # relaxing would install something else than was named
            return EnvironmentOutcome(requirements=asked, error=str(exc))
        reason = str(exc)  # whole: it names the setting that allows it
    except EnvCreationError as exc:
        reason = installer_reason(str(exc))
    relaxed = relax_pins(wanted)
    if not relax or relaxed == wanted:
        return EnvironmentOutcome(requirements=asked, error=reason)
    try:
        ensure_env(relaxed, progress=False)
    except EnvCreationError as exc:
        also = str(exc) if isinstance(exc, InstallRefusedError) else installer_reason(str(exc))
        error = f"{reason}; relaxed to [{', '.join(relaxed)}]: {also}"
        return EnvironmentOutcome(requirements=asked, error=error)
    return EnvironmentOutcome(requirements=asked, installed=relaxed, relaxed=True)


def _requirements(dataset: SeedDataset, point: DataPoint) -> tuple[str, ...]:
    return tuple(sorted(point.required_dependencies or dataset.domain_config(point.domain).requirements))


EnvironmentCallback = Callable[[list[str], EnvironmentOutcome | None], None]
Record = Callable[[int, SeedCheck], None]


async def runnable_groups(
    dataset: SeedDataset,
    record: Record,
    *,
    relax: bool = False,
    on_environment: EnvironmentCallback | None = None,
) -> tuple[list[tuple[EnvironmentOutcome, list[int]]], list[EnvironmentOutcome]]:
    """Settle what needs no run (answer-only records, sets that cannot be installed) through `record`, and
    return the rest as (installed environment, seed indices) groups, plus every environment's outcome.

    Each requirement set is resolved once; the local and the Ray validation both start here.
    """
    groups: dict[tuple[str, ...], list[int]] = {}
    for index, point in enumerate(dataset):
        if not point.rationale.strip():
            reason = "answer-only record: no code"
            record(index, SeedCheck(**_base(point), status=CheckStatus.no_code, reason=reason))
            continue
        groups.setdefault(_requirements(dataset, point), []).append(index)
    runnable: list[tuple[EnvironmentOutcome, list[int]]] = []
    environments: list[EnvironmentOutcome] = []
    for requirements, indices in groups.items():
        if on_environment:
            on_environment(list(requirements), None)
        outcome = await asyncio.to_thread(resolve_environment, requirements, relax=relax)
        outcome.seeds = len(indices)
        environments.append(outcome)
        if on_environment:
            on_environment(list(requirements), outcome)
        if outcome.installed is None:
            for i in indices:
                reason = outcome.error or "requirements could not be installed"
                record(i, SeedCheck(**_base(dataset[i]), status=CheckStatus.env_error, reason=reason))
        else:
            runnable.append((outcome, indices))
    return runnable, environments


async def validate_seeds(
    dataset: SeedDataset,
    *,
    timeout_s: float = 20.0,
    relax: bool = False,
    on_result: Callable[[SeedCheck], None] | None = None,
    on_environment: EnvironmentCallback | None = None,
) -> ValidationReport:
    """Run every rationale in the sandbox of its requirement set and compare the output to the answer.

    `relax=True` retries a requirement set that cannot be installed with its pins dropped (reported per
    seed as `relaxed`). `on_environment(requirements, None)` fires before a set is resolved and again with
    its outcome, so a caller can show what is being installed.
    """
    start = time.perf_counter()
    checks: dict[int, SeedCheck] = {}

    def record(index: int, check: SeedCheck) -> None:
        checks[index] = check
        if on_result:
            on_result(check)

    groups, environments = await runnable_groups(dataset, record, relax=relax, on_environment=on_environment)
    for outcome, indices in groups:
        await _run_group(dataset, indices, outcome, timeout_s, record)
    return report(dataset, checks, environments, time.perf_counter() - start)


def report(
    dataset: SeedDataset, checks: dict[int, SeedCheck], environments: list[EnvironmentOutcome], seconds: float
) -> ValidationReport:
    """The validation report: every seed's check in dataset order, summaries per domain."""
    ordered = [checks[i] for i in range(len(dataset))]
    return ValidationReport(
        checks=ordered,
        domains=summarize(ordered, dataset.domains),
        environments=environments,
        seconds=seconds,
    )


async def check_seed(sandbox: Sandbox, point: DataPoint) -> SeedCheck:
    """Run one rationale in its sandbox and judge the output: the unit of work a validation spreads out."""
    return await asyncio.to_thread(judge, point, await sandbox.run(point.rationale))


async def _run_group(
    dataset: SeedDataset,
    indices: list[int],
    outcome: EnvironmentOutcome,
    timeout_s: float,
    record: Record,
) -> None:
    """Run one requirement set's rationales on one sandbox, concurrently; judge each in a thread."""
    assert outcome.installed is not None
    warmup = warmup_rationales(outcome.installed)
    async with Sandbox(requirements=outcome.installed, timeout_s=timeout_s, warmup=warmup) as sandbox:

        async def check(i: int) -> None:
            verdict = await check_seed(sandbox, dataset[i])
            verdict.relaxed = outcome.relaxed
            record(i, verdict)

        await asyncio.gather(*(check(i) for i in indices))


def summarize(checks: Sequence[SeedCheck], domains: Sequence[str]) -> list[DomainSummary]:
    """One summary per domain, in the given order: how many seeds ended in each status."""
    summaries = {d: DomainSummary(domain=d) for d in domains}
    for c in checks:
        s = summaries.setdefault(c.domain, DomainSummary(domain=c.domain))
        s.seconds += c.duration_s
        setattr(s, c.status.value, getattr(s, c.status.value) + 1)
        s.relaxed += c.relaxed
    return list(summaries.values())
