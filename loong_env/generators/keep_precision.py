"""Measuring the keep rule on problems whose answers are known: how often is a kept answer right?

Each seed is treated as a freshly written problem: the writer model writes code for the seed's question
(the generation prompt's code part), the keep rule's code route runs it (sandbox, one repair), and every
agreement setting decides from independent solves. Solves are drawn once per question and shared: the
`index`-th solve at a given solver and temperature is the same request whatever setting asks for it
(exactly the request the live keep rule would send), and each setting reads them through the keep rule's
own `KeepConfig.decide`. The known answer then tells which kept answers are right.

precision = kept answers equivalent to the known answer / kept;
recall = kept and right / questions whose code printed the known answer (the only ones a keep rule can
keep correctly); acceptance = kept / questions.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence

from pydantic import BaseModel, ConfigDict, Field

from loong_env.errors import ConfigError
from loong_env.generators import prompts
from loong_env.generators.agreement import majority_needed
from loong_env.generators.keep import (
    Candidate,
    ChatClient,
    KeepConfig,
    KeepRule,
    RejectReason,
    Runner,
    SolveAttempt,
    disagreement_reason,
    usage_tokens,
)
from loong_env.types import DataPoint

METHOD = "keep-precision"
CODE_ONLY = "code only (no solve)"


class KeepSetting(BaseModel):
    """One configuration under measurement: a name, the keep rule's knobs, and which solver answers."""

    model_config = ConfigDict(extra="forbid")

    name: str
    config: KeepConfig
    solver: str = Field("default", description="Key of the solver client in `measure_keep(solvers=...)`.")


def standard_settings(
    base: KeepConfig | None = None, *, alt_temperature: float | None = 1.0, alt_solver: str | None = None
) -> list[KeepSetting]:
    """1/any, 3/majority and 3/all; again with every solve at `alt_temperature`, and with `alt_solver`."""
    base = base or KeepConfig()
    rules = [(1, "any"), (3, "majority"), (3, "all")]

    def family(suffix: str, solver: str = "default", **update: object) -> list[KeepSetting]:
        return [
            KeepSetting(
                name=f"{n}/{rule}{suffix}",
                config=base.model_copy(update={"solve_attempts": n, "agreement": rule, **update}),
                solver=solver,
            )
            for n, rule in rules
        ]

    settings = family("")
    if alt_temperature is not None:
        temps = {"solve_temperature": alt_temperature, "retry_temperature": alt_temperature}
        settings += family(f" T={alt_temperature:g}", **temps)
    if alt_solver is not None:
        settings += family(f" {alt_solver}", solver=alt_solver)
    return settings


class CodeRoute(BaseModel):
    """What the code route gave for one question: an answer and whether it is the known one, or why not."""

    status: str = Field(description="'ran', or the keep rule's reject reason for the code.")
    detail: str = ""
    code: str | None = None
    answer: str | None = None
    correct: bool | None = Field(None, description="The printed answer is equivalent to the known answer.")
    repaired: bool = False
    tokens: int = 0
    seconds: float = 0.0


class SettingDecision(BaseModel):
    """One setting's verdict on one question, and the solves it read."""

    kept: bool
    reason: str | None = None
    outcomes: list[str] = Field(default_factory=list)
    boxed: list[str | None] = Field(default_factory=list)
    tokens: int = 0
    seconds: float = 0.0


class QuestionResult(BaseModel):
    """One seed through the keep rule: its code route and every setting's decision."""

    id: str
    domain: str
    question: str
    known_answer: str
    code: CodeRoute
    decisions: dict[str, SettingDecision] = Field(default_factory=dict)
    solve_requests: int = Field(0, description="Solves actually drawn for this question (shared).")


class FalseKeep(BaseModel):
    """A kept answer that is not the known one: what RL training would be taught wrongly."""

    id: str
    domain: str
    question: str
    kept_answer: str
    known_answer: str


class SettingSummary(BaseModel):
    """Per setting: acceptance, precision, recall, false keeps, and the cost of one kept item."""

    name: str
    questions: int
    kept: int
    kept_correct: int
    code_correct: int = Field(
        description="Recall denominator: questions whose code printed the known answer."
    )
    code_wrong: int = Field(description="Questions whose code printed an answer other than the known one.")
    acceptance: float
    precision: float | None
    recall: float | None
    false_keep_rate: float | None = Field(
        None,
        description="False keeps / code_wrong: how often a wrong answer gets through, whatever the writer.",
    )
    false_keeps: list[FalseKeep] = Field(default_factory=list)
    solves_read: int = 0
    tokens_per_kept: float | None = None
    seconds_per_kept: float | None = Field(None, description="Summed request and sandbox seconds per kept.")
    rejected: dict[str, int] = Field(default_factory=dict)


class PrecisionReport(BaseModel):
    """The whole measurement: per-setting summaries (the code route alone first) and per-question rows."""

    settings: list[SettingSummary]
    questions: list[QuestionResult]
    solve_requests: int = Field(description="Solve requests sent; settings share them.")
    solves_read: int = Field(description="Solves the settings read in total: what separate runs would send.")
    elapsed_s: float = 0.0


async def write_and_run(
    dp: DataPoint, rule: KeepRule, writer: ChatClient | None, *, number: int, max_tokens: int
) -> CodeRoute:
    """The writer's code (or, with no writer, the seed's own) through the keep rule's code route, checked."""
    from loong_env.equivalence import compare

    started = time.perf_counter()
    if writer is None:
        code, tokens = dp.rationale, 0
    else:
        written = await _write(dp, rule, writer, number=number, max_tokens=max_tokens)
        if isinstance(written, CodeRoute):
            written.seconds = round(time.perf_counter() - started, 4)
            return written
        code, tokens = written
    candidate = Candidate(
        question=dp.question, code=code, domain=dp.domain, method=METHOD, attempt=number, seed_ids=[dp.id]
    )
    run = await rule.run_code(candidate)
    route = CodeRoute(
        status="ran" if run.problem is None else run.problem[0].value,
        detail="" if run.problem is None else run.problem[1],
        code=run.code,
        answer=run.answer,
        repaired=bool(run.repairs),
        tokens=tokens + run.tokens,
    )
    if route.answer is not None:
        tolerance = rule.tolerance
        route.correct = (
            await asyncio.to_thread(compare, route.answer, dp.final_answer, tolerance=tolerance)
        ).equal
    route.seconds = round(time.perf_counter() - started, 4)
    return route


async def _write(
    dp: DataPoint, rule: KeepRule, writer: ChatClient, *, number: int, max_tokens: int
) -> tuple[str, int] | CodeRoute:
    """(code, tokens) the writer wrote for the question at temperature 0, or the route's failure."""
    from loong_env.generators.parsing import ParseFailure, candidate_response_format, parse_code
    from loong_env.llm import LLMError

    try:
        completion = await writer.chat(
            prompts.write_code(dp.question, dp.domain, rule.requirements),
            temperature=0.0,
            max_tokens=max_tokens,
            response_format=candidate_response_format(),
            seed=number * 1000 + 900,
        )
    except LLMError as exc:
        return CodeRoute(status=RejectReason.llm_error.value, detail=str(exc)[:300])
    tokens = usage_tokens(completion)
    try:
        code = parse_code(completion.text or "")
    except ParseFailure as exc:
        truncated = completion.finish_reason == "length"
        status = RejectReason.truncated if truncated else RejectReason.unparsable
        return CodeRoute(status=status.value, detail=str(exc)[:300], tokens=tokens)
    return code, tokens


async def decide_all(
    dp: DataPoint, answer: str, rules: Mapping[str, tuple[KeepSetting, KeepRule]], *, number: int
) -> tuple[dict[str, SettingDecision], int]:
    """Every setting's decision from solves drawn once: (decisions by setting, solve requests sent)."""
    drawn: dict[tuple[str, str, float, int, int], SolveAttempt] = {}
    decisions: dict[str, SettingDecision] = {}
    for name, (setting, rule) in rules.items():
        cfg = setting.config
        solves: list[SolveAttempt] = []
        answer_key = rule.answer_key(dp.question, answer, dp.domain)
        while (step := cfg.decide([s.outcome for s in solves])) == "solve":
            index = len(solves)
            temperature = cfg.solve_temperature_at(index)
            key = (setting.solver, cfg.solve_prompt, temperature, cfg.solve_max_tokens, index)
            if key not in drawn:
                drawn[key] = await rule.solve_once(dp.question, answer_key, index, number)
            solves.append(drawn[key])
        reason = None
        if step == "reject":
            agreed = sum(s.outcome == "agree" for s in solves)
            needed = majority_needed(cfg.solve_attempts, cfg.agreement)
            reason = disagreement_reason(solves, agreed, needed, answer)[0].value
        decisions[name] = SettingDecision(
            kept=step == "keep",
            reason=reason,
            outcomes=[s.outcome for s in solves],
            boxed=[s.boxed for s in solves],
            tokens=sum(s.tokens for s in solves),
            seconds=round(sum(s.seconds for s in solves), 4),
        )
    return decisions, len(drawn)


async def measure_keep(
    seeds: Sequence[DataPoint],
    *,
    writer: ChatClient,
    solvers: Mapping[str, ChatClient],
    settings: Sequence[KeepSetting],
    sandbox_for: Callable[[DataPoint], Runner],
    code_config: KeepConfig | None = None,
    code_max_tokens: int = 512,
    seed_code: bool = False,
    in_flight: int = 8,
    on_question: Callable[[QuestionResult], None] | None = None,
) -> PrecisionReport:
    """Run every seed through the keep rule under every setting; the known answers say which keeps are right.

    `code_config` sets the code route's knobs (repairs); `seed_code=True` runs each seed's own rationale
    instead of writing code (its answers are right, so only recall and cost are measured). `in_flight`
    questions run at once (the clients' own concurrency limits bound the requests). Results keep the seeds'
    order.
    """
    if missing := sorted({s.solver for s in settings} - set(solvers)):
        raise ConfigError(f"settings name solver(s) {missing}; solvers given: {sorted(solvers)}")
    started = time.perf_counter()
    gate = asyncio.Semaphore(max(1, in_flight))

    async def one(number: int, dp: DataPoint) -> QuestionResult:
        async with gate:
            runner, requirements = sandbox_for(dp), list(dp.required_dependencies)

            def rule(config: KeepConfig | None, solver: ChatClient) -> KeepRule:
                return KeepRule(
                    runner,
                    solver,
                    writer=writer,
                    config=config,
                    tolerance=dp.answer_tolerance,
                    requirements=requirements,
                )

            code = await write_and_run(
                dp,
                rule(code_config, writer),
                None if seed_code else writer,
                number=number,
                max_tokens=code_max_tokens,
            )
            result = QuestionResult(
                id=dp.id, domain=dp.domain, question=dp.question, known_answer=dp.final_answer, code=code
            )
            if code.answer is not None:
                rules = {s.name: (s, rule(s.config, solvers[s.solver])) for s in settings}
                result.decisions, result.solve_requests = await decide_all(
                    dp, code.answer, rules, number=number
                )
            if on_question is not None:
                on_question(result)
            return result

    questions = list(await asyncio.gather(*(one(i, dp) for i, dp in enumerate(seeds))))
    return PrecisionReport(
        settings=summarize_all(questions, [s.name for s in settings]),
        questions=questions,
        solve_requests=sum(q.solve_requests for q in questions),
        solves_read=sum(len(d.outcomes) for q in questions for d in q.decisions.values()),
        elapsed_s=round(time.perf_counter() - started, 3),
    )


def summarize_all(questions: Sequence[QuestionResult], names: Sequence[str]) -> list[SettingSummary]:
    """The code route alone first (the no-solve baseline), then each named setting."""
    return [summarize(CODE_ONLY, questions, None)] + [summarize(n, questions, n) for n in names]


def summarize(name: str, questions: Sequence[QuestionResult], setting: str | None) -> SettingSummary:
    """One setting's numbers over all questions; `setting=None` scores the code route alone (no solve)."""
    kept = kept_correct = code_correct = code_wrong = solves_read = tokens = 0
    seconds = 0.0
    false_keeps: list[FalseKeep] = []
    rejected: Counter[str] = Counter()
    for q in questions:
        code_correct += q.code.correct is True
        code_wrong += q.code.correct is False
        tokens += q.code.tokens
        seconds += q.code.seconds
        if q.code.answer is None:
            rejected[q.code.status] += 1
            continue
        if setting is not None:
            decision = q.decisions.get(setting)
            if decision is None:
                measured = sorted(q.decisions)
                raise ConfigError(
                    f"question {q.id} has no decision for setting {setting!r}; measured: {measured}"
                )
            solves_read += len(decision.outcomes)
            tokens += decision.tokens
            seconds += decision.seconds
            if not decision.kept:
                rejected[decision.reason or "rejected"] += 1
                continue
        kept += 1
        if q.code.correct:
            kept_correct += 1
        else:
            false_keeps.append(
                FalseKeep(
                    id=q.id,
                    domain=q.domain,
                    question=q.question,
                    kept_answer=q.code.answer,
                    known_answer=q.known_answer,
                )
            )
    return SettingSummary(
        name=name,
        questions=len(questions),
        kept=kept,
        kept_correct=kept_correct,
        code_correct=code_correct,
        code_wrong=code_wrong,
        acceptance=kept / len(questions) if questions else 0.0,
        precision=kept_correct / kept if kept else None,
        recall=kept_correct / code_correct if code_correct else None,
        false_keep_rate=len(false_keeps) / code_wrong if code_wrong else None,
        false_keeps=false_keeps,
        solves_read=solves_read,
        tokens_per_kept=tokens / kept if kept else None,
        seconds_per_kept=round(seconds / kept, 2) if kept else None,
        rejected=dict(rejected),
    )
