"""Replaying the keep rule over a stored set of code answers whose truth is known: the false-keep rate.

The set (benchmarks/data/keep_set.jsonl) holds code answers to known-answer questions, each marked right or
wrong: a kept wrong one is a wrong training label. Every configuration decides each record as the live keep
rule would after the code ran: the static checks (well-posedness, grounding) first, the perturbation check
when configured (its perturbed copies of the code run through a `RunCache`: the sandbox once per code, then
the file), then the independent solves through `KeepConfig.decide`. Solves are drawn once per (record,
solver, prompt, temperature, index) and shared by every configuration that reads them, and appended to a
cache file as they come, so a stopped run resumes where it stopped and a finished one re-tabulates without
a model.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import random
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from loong_env.errors import ConfigError, LoongError
from loong_env.generators import checks, perturbation
from loong_env.generators.agreement import majority_needed
from loong_env.generators.keep import (
    ChatClient,
    KeepConfig,
    KeepRule,
    Runner,
    SolveAttempt,
    disagreement_reason,
)
from loong_env.types import DataPoint, ExecutionResult


class SetRecord(BaseModel):
    """One code answer to a known-answer question (the question is read from the seeds by id)."""

    model_config = ConfigDict(extra="forbid")

    key: str
    id: str
    domain: str
    kind: str = Field(description="dropped_condition, model_written or seed_code.")
    code: str
    answer: str
    correct: bool
    mutation: str | None = None
    source: str | None = Field(
        None,
        description="A held-out question's Loong sample folder (None: our seeds); it is named by `index`.",
    )
    index: int | None = Field(None, description="The held-out record's index in its folder's JSON list.")


class Configuration(BaseModel):
    """One keep-rule configuration under measurement; `solve=False` stops after the static checks."""

    model_config = ConfigDict(extra="forbid")

    name: str
    config: KeepConfig
    solver: str = "default"
    solve: bool = True


class Decision(BaseModel):
    """One configuration's decision on one record, and what it cost."""

    kept: bool
    reason: str | None = None
    detail: str = ""
    tokens: int = 0
    seconds: float = 0.0


class Summary(BaseModel):
    """Per configuration: false keeps among wrong answers (with a 95 % Wilson bound), recall, cost."""

    name: str
    candidates: int
    wrong: int
    right: int
    false_keeps: int
    false_keep_rate: float | None
    false_keep_upper95: float | None
    kept_right: int
    recall: float | None
    kept_per_100: float
    tokens_per_kept: float | None
    seconds_per_kept: float | None
    rejected: dict[str, int] = Field(default_factory=dict)
    false_keeps_by_kind: dict[str, int] = Field(default_factory=dict)
    wrong_by_kind: dict[str, int] = Field(
        default_factory=dict, description="Wrong answers measured, by kind."
    )
    complete: bool = True


def wilson_upper(k: int, n: int, z: float = 1.96) -> float | None:
    """The upper end of the Wilson score interval for k successes in n (95 % two-sided by default)."""
    if n == 0:
        return None
    p = k / n
    centre = p + z * z / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return min(1.0, (centre + spread) / (1 + z * z / n))


def standard_configurations(
    base: KeepConfig | None = None, *, alt_solver: str | None = None
) -> list[Configuration]:
    """Today's rule (agreement only), the checks alone, the default (checks + one solve), and variants;
    "checks" include the perturbation check when `base` has it (the default)."""
    base = base or KeepConfig()
    before = {"grounding": False, "well_posedness": False, "perturbation": False}
    unperturbed = {"perturbation": False}
    configs = [
        Configuration(name="checks + 1 solve (default)", config=base),
        Configuration(name="agreement only (before)", config=base.model_copy(update=before)),
        Configuration(name="checks only (no solve)", config=base, solve=False),
        Configuration(
            name="checks + 1 solve, conditions listed",
            config=base.model_copy(update={"solve_prompt": "conditions"}),
        ),
        Configuration(
            name="agreement only, conditions listed",
            config=base.model_copy(update={**before, "solve_prompt": "conditions"}),
        ),
        Configuration(
            name="checks + 3 solves, majority",
            config=base.model_copy(update={"solve_attempts": 3, "agreement": "majority"}),
        ),
        Configuration(
            name="static checks + 1 solve (no perturbation)", config=base.model_copy(update=unperturbed)
        ),
        Configuration(
            name="static checks only (no perturbation, no solve)",
            config=base.model_copy(update=unperturbed),
            solve=False,
        ),
        Configuration(
            name="checks, perturbing conditions only (no solve)",
            config=base.model_copy(update={"perturbation": True, "perturbation_scope": "conditions"}),
            solve=False,
        ),
    ]
    if alt_solver is not None:
        configs.append(
            Configuration(name=f"checks + 1 solve by {alt_solver}", config=base, solver=alt_solver)
        )
    return configs


def _read_cache(path: Path | None, field: str) -> dict[str, dict]:
    """A replay cache's rows by key (JSON lines of key and `field`); a killed run's torn line is skipped."""
    rows: dict[str, dict] = {}
    if path is not None and path.exists():
        for line in path.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            rows[row["key"]] = row[field]
    return rows


def _append_cache(path: Path | None, key: str, field: str, value: dict) -> None:
    """One more cache row, appended at once: a stopped replay keeps everything it drew."""
    if path is not None:
        with path.open("a") as f:
            f.write(json.dumps({"key": key, field: value}) + "\n")


class Uncached(LoongError):
    """A run the replay needs is not in the run cache and no sandbox was given."""


class RunCache:
    """Sandbox results by (requirement set, code), in a file: the perturbation check's runs, replayable."""

    def __init__(self, path: str | Path | None) -> None:
        self.path = Path(path) if path else None
        rows = _read_cache(self.path, "result")
        self.results = {key: ExecutionResult.model_validate(row) for key, row in rows.items()}
        self.ran = 0

    def runner(self, requirements: Sequence[str], sandbox: Runner | None) -> Runner:
        """A Runner answering from the file, else running `sandbox` (None: raises `Uncached`) and storing."""
        return _CachedRunner(self, tuple(requirements), sandbox)

    async def run(self, requirements: tuple[str, ...], code: str, sandbox: Runner | None) -> ExecutionResult:
        key = hashlib.sha256(json.dumps([requirements, code]).encode()).hexdigest()[:32]
        if key not in self.results:
            if sandbox is None:
                raise Uncached(key)
            result = await sandbox.run(code)
            # the answer is read from stdout; of stderr only the tail says why a run failed
            result = result.model_copy(update={"stderr": result.stderr[-300:]})
            self.results[key] = result
            self.ran += 1
            _append_cache(self.path, key, "result", result.model_dump(mode="json"))
        return self.results[key]


class _CachedRunner:
    def __init__(self, cache: RunCache, requirements: tuple[str, ...], sandbox: Runner | None) -> None:
        self.cache, self.requirements, self.sandbox = cache, requirements, sandbox

    async def run(self, code: str) -> ExecutionResult:
        return await self.cache.run(self.requirements, code, self.sandbox)


class _NoRunner:
    """The replay never runs code (the set stores what it printed); a run here is a bug of the benchmark."""

    async def run(self, code: str) -> ExecutionResult:
        raise ConfigError("the keep-set replay asked to run code; it replays stored outputs only")


class SolveCache:
    """Solves drawn so far, by (record, solver, prompt, temperature, max tokens, index), in a file."""

    def __init__(self, path: str | Path | None) -> None:
        self.path = Path(path) if path else None
        self.solves = {
            key: SolveAttempt.model_validate(row) for key, row in _read_cache(self.path, "solve").items()
        }
        self.drawn = 0

    def add(self, key: str, solve: SolveAttempt) -> None:
        self.solves[key] = solve
        self.drawn += 1
        _append_cache(self.path, key, "solve", solve.model_dump())


async def decide(
    record: SetRecord,
    seed: DataPoint,
    configuration: Configuration,
    rule: KeepRule | None,
    cache: SolveCache,
    *,
    number: int,
    runner: Runner | None = None,
) -> Decision | None:
    """The configuration's decision on one record; None when a solve or perturbed run is needed and
    cannot be had (`rule` None, or `runner` None or answering `Uncached`)."""
    cfg = configuration.config
    if cfg.well_posedness and not (posed := checks.well_posedness(seed.question)).passed:
        return Decision(kept=False, reason="ill_posed", detail=posed.detail)
    if cfg.grounding and not (grounded := checks.grounding(seed.question, record.code)).passed:
        return Decision(kept=False, reason="ungrounded", detail=grounded.detail)
    if cfg.perturbation:
        if runner is None:
            return None
        try:
            moved = await perturbation.sensitivity(
                seed.question,
                record.code,
                record.answer,
                runner,
                max_runs=cfg.perturbation_runs,
                scope=cfg.perturbation_scope,
            )
        except Uncached:
            return None
        if not moved.passed:
            return Decision(kept=False, reason="insensitive", detail=moved.detail)
    if not configuration.solve:
        return Decision(kept=True)
    solves: list[SolveAttempt] = []
    while (step := cfg.decide([s.outcome for s in solves])) == "solve":
        index = len(solves)
        temperature = cfg.solve_temperature_at(index)
        key = "|".join(
            (
                record.key,
                configuration.solver,
                cfg.solve_prompt,
                f"{temperature:g}",
                str(cfg.solve_max_tokens),
            )
            + (str(index),)
        )
        if key not in cache.solves:
            if rule is None:
                return None
            answer_key = rule.answer_key(seed.question, record.answer, seed.domain)
            cache.add(key, await rule.solve_once(seed.question, answer_key, index, number))
        solves.append(cache.solves[key])
    tokens, seconds = sum(s.tokens for s in solves), round(sum(s.seconds for s in solves), 4)
    if step == "keep":
        return Decision(kept=True, tokens=tokens, seconds=seconds)
    agreed = sum(s.outcome == "agree" for s in solves)
    needed = majority_needed(cfg.solve_attempts, cfg.agreement)
    reason, detail = disagreement_reason(solves, agreed, needed, record.answer)
    return Decision(kept=False, reason=reason.value, detail=detail, tokens=tokens, seconds=seconds)


async def replay(
    records: Sequence[SetRecord],
    seeds: Mapping[str, DataPoint],
    configurations: Sequence[Configuration],
    *,
    solvers: Mapping[str, ChatClient] | None,
    cache: SolveCache,
    in_flight: int = 4,
    deadline: float | None = None,
    on_record: Callable[[str, int], None] | None = None,
    runner_for: Callable[[DataPoint], Runner] | None = None,
) -> dict[str, dict[str, Decision]]:
    """Every configuration's decisions, configuration by configuration (the first is measured first).

    Without `solvers` only cached solves are read (records that need a new one are left out). Past
    `deadline` (a time.monotonic() value) no new solve starts. `runner_for(seed)` runs the perturbation
    check's code (a `RunCache.runner`); without it, configurations with that check decide nothing.
    """
    if solvers is not None and (missing := sorted({c.solver for c in configurations} - set(solvers))):
        raise ConfigError(f"configurations name solver(s) {missing}; solvers given: {sorted(solvers)}")
    out: dict[str, dict[str, Decision]] = {}
    gate = asyncio.Semaphore(max(1, in_flight))
    for configuration in configurations:
        decisions: dict[str, Decision] = {}

        async def one(
            number: int,
            record: SetRecord,
            configuration: Configuration = configuration,
            decisions: dict[str, Decision] = decisions,
        ) -> None:
            seed = seeds[record.id]
            rule = None
            if solvers is not None and (deadline is None or time.monotonic() < deadline):
                rule = KeepRule(
                    _NoRunner(),
                    solvers[configuration.solver],
                    config=configuration.config,
                    tolerance=seed.answer_tolerance,
                    requirements=list(seed.required_dependencies),
                )
            async with gate:
                if rule is not None and deadline is not None and time.monotonic() >= deadline:
                    rule = None
                runner = runner_for(seed) if runner_for is not None else None
                decision = await decide(
                    record, seed, configuration, rule, cache, number=number, runner=runner
                )
            if decision is not None:
                decisions[record.key] = decision
            if on_record is not None:
                on_record(configuration.name, len(decisions))

        await asyncio.gather(*(one(i, r) for i, r in enumerate(records)))
        out[configuration.name] = decisions
    return out


def summarize(name: str, records: Sequence[SetRecord], decisions: Mapping[str, Decision]) -> Summary:
    """One configuration's numbers over the records it decided."""
    measured = [r for r in records if r.key in decisions]
    wrong = [r for r in measured if not r.correct]
    right = [r for r in measured if r.correct]
    false = [r for r in wrong if decisions[r.key].kept]
    kept_right = sum(decisions[r.key].kept for r in right)
    kept = len(false) + kept_right
    tokens = sum(decisions[r.key].tokens for r in measured)
    seconds = sum(decisions[r.key].seconds for r in measured)
    rejected = Counter(decisions[r.key].reason or "?" for r in measured if not decisions[r.key].kept)
    return Summary(
        name=name,
        candidates=len(measured),
        wrong=len(wrong),
        right=len(right),
        false_keeps=len(false),
        false_keep_rate=len(false) / len(wrong) if wrong else None,
        false_keep_upper95=wilson_upper(len(false), len(wrong)),
        kept_right=kept_right,
        recall=kept_right / len(right) if right else None,
        kept_per_100=100 * kept / len(measured) if measured else 0.0,
        tokens_per_kept=tokens / kept if kept else None,
        seconds_per_kept=round(seconds / kept, 2) if kept else None,
        rejected=dict(rejected),
        false_keeps_by_kind=dict(Counter(r.kind for r in false)),
        wrong_by_kind=dict(Counter(r.kind for r in wrong)),
        complete=len(measured) == len(records),
    )


def balanced(records: Sequence[SetRecord], seed: int = 0) -> list[SetRecord]:
    """The set with its wrong answers half model-written: every model-written and right record, and a
    seeded draw of as many dropped-condition ones as there are model-written wrong ones (order kept).

    The dropped-condition kind is cheap to make, the model-written kind is what a writer gets wrong; a rate
    over a set where the first outnumbers the second measures mostly the easy kind."""
    written = sum(r.kind == "model_written" and not r.correct for r in records)
    dropped = [r.key for r in records if r.kind == "dropped_condition"]
    drawn = set(random.Random(seed).sample(dropped, min(written, len(dropped))))
    return [r for r in records if r.kind != "dropped_condition" or r.key in drawn]


def load_set(path: str | Path) -> list[SetRecord]:
    """The stored set, one record per line."""
    return [
        SetRecord.model_validate_json(line) for line in Path(path).read_text().splitlines() if line.strip()
    ]
