"""THE keep rule, in one place: a candidate is kept only when two independent routes agree.

Route 1: the candidate's code runs in the sandbox with its domain's packages and prints a non-empty answer.
         When it crashes or prints nothing, the writer gets one repair round (its code + the traceback).
Route 2: an independent chain-of-thought solve (without the code) boxes an answer that the reward's own
         judge (the env's `VerifierRouter` for the domain) calls equal to the code's answer.
Before either, cheap checks reject malformed, degenerate, scaffold-copying, non-novel and ill-posed
questions; after the code runs, the grounding check rejects code that never uses a stated condition, and
the perturbation check rejects code whose answer does not move when a stated number it holds does.
Every candidate ends with exactly one Verdict, built by `judge` alone: accepted, or rejected with one
specific RejectReason; `Verdict.checks` lists the checks it passed.
"""

from __future__ import annotations

import re
import time

from pydantic import BaseModel, Field

from loong_env.generators import checks, perturbation, prompts
from loong_env.generators.agreement import majority_needed
from loong_env.generators.novelty import DEFAULT_FLOOR, NoveltyIndex
from loong_env.generators.verdict import (
    Candidate,
    ChatClient,
    KeepConfig,
    RejectReason,
    RepairAttempt,
    Runner,
    SolveAttempt,
    Verdict,
    reject,
)
from loong_env.routing import VerifierRouter
from loong_env.runs.timing import usage_tokens
from loong_env.types import (
    AnswerKey,
    DataPoint,
    ExecutionResult,
    Tolerance,
    VerificationStatus,
    normalize_question,
)
from loong_env.verifiers.code_output import OutputStatus, execution_problem, read_answer
from loong_env.verifiers.extract import read_boxed

__all__ = [  # the vocabulary is re-exported: `from loong_env.generators.keep import Verdict` keeps working
    "Candidate",
    "ChatClient",
    "CodeRun",
    "KeepConfig",
    "KeepRule",
    "NoveltyCheck",
    "RejectReason",
    "RepairAttempt",
    "Runner",
    "SolveAttempt",
    "Verdict",
    "disagreement_reason",
    "novelty_check",
    "novelty_floor",
    "novelty_problem",
    "reject",
    "shape_problem",
    "usage_tokens",
]


_GIVE_UP = re.compile(
    r"cannot be (?:determined|solved|computed)|can ?not solve|unable to (?:solve|determine)"
    r"|not enough information|insufficient information|no (?:unique |valid )?solution"
    r"|impossible to (?:solve|determine)|is undefined",
    re.IGNORECASE,
)


def shape_problem(question: str, config: KeepConfig) -> tuple[RejectReason, str] | None:
    """Cheap text checks (length, repetition, copied scaffolding) before spending sandbox or LLM time."""
    text = question.strip()
    words = text.split()
    if len(text) < config.min_question_chars or len(words) < config.min_question_words:
        need = f"need >= {config.min_question_chars} chars and >= {config.min_question_words} words"
        return RejectReason.too_short, f"question has {len(text)} chars / {len(words)} words; {need}"
    if len(text) > config.max_question_chars:
        return RejectReason.too_long, f"question has {len(text)} chars; limit {config.max_question_chars}"
    lowered = normalize_question(text)
    for marker in prompts.SCAFFOLD_MARKERS:
        if marker in lowered:
            return RejectReason.scaffold_copy, f"question contains prompt scaffolding {marker!r}"
    tokens = re.findall(r"\w+", lowered)
    if len(tokens) >= 20 and len(set(tokens)) / len(tokens) < config.degenerate_unique_ratio:
        ratio = len(set(tokens)) / len(tokens)
        return RejectReason.degenerate, f"only {ratio:.0%} of {len(tokens)} words are distinct (repetition)"
    letters = sum(ch.isalpha() for ch in text)
    if letters < 0.3 * len(text):
        return RejectReason.degenerate, f"only {letters} of {len(text)} characters are letters"
    return None


# Failures the writer may fix from a traceback; timeouts and limits are left alone (a rewrite rarely helps).
REPAIRABLE = (RejectReason.code_error, RejectReason.empty_output)


def novelty_floor(config: KeepConfig) -> float:
    """The index floor for a keep config: exact similarities at and above the novelty bar, so the verdict
    is always the exact rule's (a kept item's recorded `max_rouge_l` is a lower bound below the floor)."""
    return max(0.0, min(DEFAULT_FLOOR, config.novelty_threshold))


def novelty_problem(
    pool: NoveltyIndex, config: KeepConfig, question: str, parent_id: str | None = None
) -> tuple[RejectReason, str, float] | None:
    """(reason, detail, similarity) when `question` repeats, or is too close to, a pool item or its parent."""
    return novelty_check(pool, config, question, parent_id)[0]


def novelty_check(
    pool: NoveltyIndex,
    config: KeepConfig,
    question: str,
    parent_id: str | None = None,
    *,
    since: int | None = None,
) -> tuple[tuple[RejectReason, str, float] | None, float]:
    """The novelty problem (None if new) and the nearest pool item's similarity, from one index lookup.

    `since`: the pool's `slots` when this question last passed the check; only items added after it can
    have made it too similar (removals only lower similarity), so only those are compared.
    """
    parent_bar = config.novelty_threshold if config.parent_threshold is None else config.parent_threshold
    if parent_id is not None and (sim := pool.similarity_to(question, parent_id)) > parent_bar:
        detail = f"ROUGE-L {sim:.3f} > {parent_bar} to its parent {parent_id}"
        return (RejectReason.no_information_gain, detail, sim), sim
    if pool.contains(question):
        return (RejectReason.duplicate, "normalised question equals one already held", 1.0), 1.0
    if since is None:
        nearest = pool.nearest(question, exclude=parent_id)
    else:
        nearest = pool.nearest_since(question, since, exclude=parent_id)
    if nearest.similarity > config.novelty_threshold:
        bar, sim = config.novelty_threshold, nearest.similarity
        detail = f"ROUGE-L {sim:.3f} > {bar} to {nearest.kind} {nearest.item_id}"
        return (RejectReason.too_similar, detail, nearest.similarity), nearest.similarity
    return None, nearest.similarity


class NoveltyCheck(BaseModel):
    """The novelty check's answer: a reject reason with its detail, or none; and the nearest similarity."""

    reason: RejectReason | None = None
    detail: str = ""
    similarity: float | None = None
    slots: int | None = Field(
        None, description="The pool's slots when the question passed; the claim compares only newer items."
    )


class CodeRun(BaseModel):
    """What the code route gave: the code that ran last, its answer (or why none), its repairs and cost."""

    code: str
    answer: str | None = None
    answer_rule: str | None = None
    problem: tuple[RejectReason, str] | None = None
    repairs: list[RepairAttempt] = Field(default_factory=list)
    tokens: int = 0
    sandbox_s: float = 0.0
    repair_s: float = 0.0


class KeepRule:
    """Judges candidates; holds the novelty pool (seeds + kept) so every method is checked against it.

    `sandbox` runs code with the domain's packages; `solver` answers without the code; `writer` (default:
    the solver's client) gets the repair request when code fails, with the JSON schema unless
    `json_mode=False`. `router` is the reward's judge (default: the seed library's domains): a solve agrees
    with the code exactly when the env would reward it against the code's answer. The pool is updated only
    at acceptance, with no await between the last check and the update, so concurrent candidates cannot
    both be kept as duplicates.
    """

    def __init__(
        self,
        sandbox: Runner,
        solver: ChatClient,
        *,
        writer: ChatClient | None = None,
        json_mode: bool = True,
        config: KeepConfig | None = None,
        tolerance: Tolerance | None = None,
        requirements: list[str] | None = None,
        router: VerifierRouter | None = None,
    ) -> None:
        self.sandbox = sandbox
        self.solver = solver
        self.writer = writer if writer is not None else solver
        self.json_mode = json_mode
        self.config = config or KeepConfig()
        self.tolerance = tolerance
        self.requirements = list(requirements or [])
        self.router = router or VerifierRouter()
        self.pool = NoveltyIndex(floor=novelty_floor(self.config))

    def add_to_pool(self, dp: DataPoint, kind: str) -> None:
        """Make a seed or an already-kept item count against future candidates."""
        self.pool.add(dp.question, dp.id, kind)

    def novelty(self, question: str, parent_id: str | None = None) -> tuple[RejectReason, str, float] | None:
        """Duplicate or too-similar to the pool; an evol rewrite close to its parent adds nothing."""
        return novelty_problem(self.pool, self.config, question, parent_id)

    async def screen(self, candidate: Candidate) -> NoveltyCheck:
        """The early novelty check, before sandbox and solver time is spent; says the nearest similarity."""
        slots = self.pool.slots
        found, similarity = novelty_check(self.pool, self.config, candidate.question, candidate.parent_id)
        if found is not None:
            return NoveltyCheck(reason=found[0], detail=found[1], similarity=found[2])
        return NoveltyCheck(similarity=similarity, slots=slots)

    def parent_similarity(self, candidate: Candidate) -> float | None:
        """ROUGE-L of an evol rewrite to its parent (None without a parent), for the kept item's record."""
        if not candidate.parent_id:
            return None
        return self.pool.similarity_to(candidate.question, candidate.parent_id)

    async def claim(
        self, candidate: Candidate, datapoint: DataPoint, *, since: int | None = None
    ) -> NoveltyCheck:
        """The last novelty check and the pool update as one step: concurrent near-twins cannot both be kept.

        Here there is no await between check and add; a pool shared across processes does both in one call.
        `since` (the screen's `slots`) limits the similarity check to items added after the screen.
        """
        found, _ = novelty_check(self.pool, self.config, candidate.question, candidate.parent_id, since=since)
        if found is not None:
            return NoveltyCheck(reason=found[0], detail=found[1], similarity=found[2])
        self.add_to_pool(datapoint, "kept")
        return NoveltyCheck()

    def answer_key(self, question: str, answer: str, domain: str) -> AnswerKey:
        """The key the env will reward this item by, once kept: the router's, from the item's own fields."""
        item = DataPoint(
            question=question,
            final_answer=answer,
            domain=domain,
            answer_tolerance=self.tolerance,
            required_dependencies=self.requirements,
        )
        return self.router.key(item)

    async def judge(self, candidate: Candidate) -> Verdict:
        """The Verdict on a candidate: shape, novelty, posedness, sandbox, grounding, perturbation, solves."""
        cfg = self.config
        verdict = Verdict(
            attempt=candidate.attempt,
            method=candidate.method,
            accepted=False,
            question=candidate.question,
            code=candidate.code,
            seed_ids=candidate.seed_ids,
            tokens=candidate.tokens,
            timings=dict(candidate.timings),
            raw_reply=candidate.raw_reply,
        )
        passed: list[str] = []

        def stop(reason: RejectReason, detail: str, **update: object) -> Verdict:
            return reject(verdict.model_copy(update={"checks": list(passed), **update}), reason, detail)

        if found := shape_problem(candidate.question, cfg):
            return stop(*found)
        passed.append("shape")
        screened = await self.screen(candidate)
        verdict = verdict.model_copy(update={"similarity": screened.similarity})
        if screened.reason is not None:
            return stop(screened.reason, screened.detail)
        passed.append("novelty")
        if cfg.well_posedness:
            if not (posed := checks.well_posedness(candidate.question)).passed:
                return stop(RejectReason.ill_posed, posed.detail)
            passed.append("well_posed")

        run = await self.run_code(candidate)
        timings = {**verdict.timings, "sandbox_s": run.sandbox_s}
        if run.repairs:
            timings["repair_s"] = run.repair_s
        verdict = verdict.model_copy(
            update={
                "code": run.code,
                "answer": run.answer,
                "answer_rule": run.answer_rule,
                "repairs": run.repairs,
                "tokens": verdict.tokens + run.tokens,
                "timings": timings,
            }
        )
        if run.problem is not None:
            return stop(*run.problem)
        answer = run.answer
        assert answer is not None
        passed.append("code_ran")
        if cfg.grounding:
            if not (grounded := checks.grounding(candidate.question, run.code)).passed:
                return stop(RejectReason.ungrounded, grounded.detail)
            passed.append("grounded")
        if cfg.perturbation:
            moved = await perturbation.sensitivity(
                candidate.question,
                run.code,
                answer,
                self.sandbox,
                max_runs=cfg.perturbation_runs,
                scope=cfg.perturbation_scope,
            )
            verdict = verdict.model_copy(update={"timings": {**verdict.timings, "perturb_s": moved.seconds}})
            if not moved.passed:
                return stop(RejectReason.insensitive, moved.detail)
            passed.append("sensitive")

        key = self.answer_key(candidate.question, answer, candidate.domain)
        started = time.perf_counter()
        solves: list[SolveAttempt] = []
        while (step := cfg.decide([s.outcome for s in solves])) == "solve":
            solves.append(await self.solve_once(candidate.question, key, len(solves), candidate.attempt))
        verdict = verdict.model_copy(
            update={
                "solves": solves,
                "tokens": verdict.tokens + sum(s.tokens for s in solves),
                "timings": {**verdict.timings, "solve_s": round(time.perf_counter() - started, 4)},
            }
        )
        agreed = sum(s.outcome == "agree" for s in solves)
        if step == "reject":
            needed = majority_needed(cfg.solve_attempts, cfg.agreement)
            return stop(*disagreement_reason(solves, agreed, needed, answer))
        passed.append("solve_agreed")

        datapoint = self._datapoint(candidate, verdict, agreed, passed)
        claimed = await self.claim(candidate, datapoint, since=screened.slots)
        if claimed.reason is not None:
            return stop(claimed.reason, claimed.detail, similarity=claimed.similarity)
        return verdict.model_copy(update={"accepted": True, "datapoint": datapoint, "checks": passed})

    async def run_code(self, candidate: Candidate) -> CodeRun:
        """Route 1: run the code, repaired up to `repair_attempts` times: its answer, or why there is none."""
        cfg = self.config
        run = CodeRun(code=candidate.code)
        result = await self._run(run, candidate.code)
        found = _execution_problem(result, cfg)
        while found and found[0] in REPAIRABLE and len(run.repairs) < cfg.repair_attempts:
            repair = await self._repair(candidate, run.code, result, found[0], len(run.repairs))
            run.repair_s = round(run.repair_s + repair.seconds, 4)
            run.tokens += repair.tokens
            if repair.code is None:  # no usable reply: the code's own failure stays the reason
                run.repairs.append(repair)
                found = (
                    found[0],
                    f"{found[1]}; repair {len(run.repairs)}: {repair.outcome}, {repair.detail}",
                )
                break
            result = await self._run(run, repair.code)
            found = _execution_problem(result, cfg)
            outcome = "still_failing" if found else "fixed"
            detail = f"{found[0]}: {found[1]}" if found else "ran and printed an answer"
            run.repairs.append(repair.model_copy(update={"outcome": outcome, "detail": detail}))
            if found:
                found = (found[0], f"after {len(run.repairs)} repair(s): {found[1]}")
        if found:
            run.problem = found
            return run
        # The shared reading rule (a box, else the whole output, else its last line after a log): the kept
        # item's final_answer is then exactly what seed validation compares.
        read = read_answer(result.stdout)
        assert read is not None  # _execution_problem rejects silent runs
        run.answer, run.answer_rule = read.answer, read.rule.value
        return run

    async def _run(self, run: CodeRun, code: str) -> ExecutionResult:
        """Run code in the sandbox; the code run remembers the code that ran last and the time spent."""
        started = time.perf_counter()
        result = await self.sandbox.run(code)
        run.code = code
        run.sandbox_s = round(run.sandbox_s + time.perf_counter() - started, 4)
        return result

    async def _repair(
        self, candidate: Candidate, code: str, result: ExecutionResult, reason: RejectReason, round_: int
    ) -> RepairAttempt:
        """Show the writer its failing code and the traceback tail; read back corrected code (not yet run)."""
        from loong_env.generators.parsing import ParseFailure, candidate_response_format, parse_code
        from loong_env.llm import LLMError

        cfg = self.config
        if reason is RejectReason.empty_output:
            failure = "It ran without errors but printed nothing."
        else:
            lines = (result.stderr or "").strip().splitlines()[-cfg.repair_traceback_lines :]
            failure = prompts.clean_traceback(lines) or f"exit code {result.exit_code}, no error message"
            if hint := prompts.failure_hint(failure):
                failure = f"{failure}\n{hint}"
        repair = RepairAttempt(failed_with=str(reason), failure=failure, outcome="llm_error")
        messages = prompts.repair(candidate.question, code, failure, candidate.domain, self.requirements)
        started = time.perf_counter()
        try:
            completion = await self.writer.chat(
                messages,
                temperature=cfg.repair_temperature,
                max_tokens=cfg.repair_max_tokens,
                response_format=candidate_response_format() if self.json_mode else None,
                seed=candidate.attempt * 1000 + 500 + round_,
            )
        except LLMError as exc:
            repair.detail = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
            repair.seconds = round(time.perf_counter() - started, 4)
            return repair
        repair.seconds = round(time.perf_counter() - started, 4)
        repair.tokens = usage_tokens(completion)
        try:
            repair.code = parse_code(completion.text or "")
        except ParseFailure as exc:
            truncated = completion.finish_reason == "length"
            repair.outcome = "truncated" if truncated else "unparsable"
            repair.detail = f"hit max_tokens={cfg.repair_max_tokens}" if truncated else str(exc)[:300]
        return repair

    def solve_messages(self, question: str) -> list[dict[str, str]]:
        """The solve prompt under this configuration: plain, or with the question's conditions listed."""
        listed = checks.conditions(question) if self.config.solve_prompt == "conditions" else []
        return prompts.solve(question, listed)

    async def solve_once(self, question: str, key: AnswerKey, index: int, attempt: int) -> SolveAttempt:
        """Route 2, once: the `index`-th independent solve of `question`, judged against the code's answer.

        The judge is the env's: the router's verifier for the item's domain reads the solve (one reading of
        a boxed answer, several boxes for a multi-part answer) exactly as it will read a policy's response.
        """
        from loong_env.llm import LLMError

        cfg = self.config
        temperature = cfg.solve_temperature_at(index)
        started = time.perf_counter()
        try:
            completion = await self.solver.chat(
                self.solve_messages(question),
                temperature=temperature,
                max_tokens=cfg.solve_max_tokens,
                seed=attempt * 1000 + index,
            )
        except LLMError as exc:
            return SolveAttempt(
                outcome="llm_error", reason=str(exc)[:300], seconds=time.perf_counter() - started
            )
        seconds = round(time.perf_counter() - started, 4)
        text = completion.text or ""
        return await self.read_solve(
            text, completion.finish_reason, key, tokens=usage_tokens(completion), seconds=seconds
        )

    async def read_solve(
        self, text: str, finish_reason: str | None, key: AnswerKey, *, tokens: int = 0, seconds: float = 0.0
    ) -> SolveAttempt:
        """One solve's outcome: agree exactly when the env's judge would reward `text` against the key."""
        boxed = read_boxed(text, key.reference)
        common = {"finish_reason": finish_reason, "tokens": tokens, "seconds": seconds, "boxed": boxed}
        if boxed is None:
            if finish_reason == "length":
                return SolveAttempt(
                    outcome="truncated", reason=f"hit max_tokens={self.config.solve_max_tokens}", **common
                )
            if match := _GIVE_UP.search(text):
                return SolveAttempt(outcome="gave_up", reason=f"solver wrote {match.group(0)!r}", **common)
            return SolveAttempt(outcome="no_answer", reason="finished without \\boxed{}", **common)
        result, verifier = await self.router.judge(text, key)
        common["boxed"] = result.extracted or boxed
        if result.status is VerificationStatus.correct:
            return SolveAttempt(outcome="agree", reason=f"{verifier}: {result.reason}", **common)
        return SolveAttempt(outcome="disagree", reason=f"{verifier}: {result.reason}", **common)

    def _datapoint(self, candidate: Candidate, verdict: Verdict, agreed: int, passed: list[str]) -> DataPoint:
        assert verdict.answer is not None
        metadata = {
            "generator": candidate.method,
            "model": candidate.model,
            "seed_ids": candidate.seed_ids,
            "parent_id": candidate.parent_id,
            "attempt": candidate.attempt,
            "parsed_by": candidate.parsed_by,
            "answer_read_by": verdict.answer_rule,
            "checks": list(passed),
            "repair": (
                {
                    "repaired": True,
                    "original_code": candidate.code,
                    "rounds": [r.model_dump(exclude={"seconds"}) for r in verdict.repairs],
                }
                if verdict.repairs
                else {"repaired": False}
            ),
            "timings": verdict.timings,
            "novelty": {
                "max_rouge_l": verdict.similarity,
                "threshold": self.config.novelty_threshold,
                "parent_rouge_l": self.parent_similarity(candidate),
            },
            "agreement": {
                "rule": self.config.agreement,
                "unanswered_retries": self.config.unanswered_retries,
                "agreed": agreed,
                "attempts": len(verdict.solves),
                "solves": [s.model_dump(exclude={"seconds"}) for s in verdict.solves],
            },
            **candidate.extra,
        }
        return DataPoint(
            question=candidate.question.strip(),
            final_answer=verdict.answer,
            rationale=verdict.code or candidate.code,
            domain=candidate.domain,
            source=f"loong_env:{candidate.method}",
            required_dependencies=self.requirements,
            answer_tolerance=self.tolerance,
            metadata=metadata,
        )


_REJECT_FOR = {
    OutputStatus.code_error: RejectReason.code_error,
    OutputStatus.timeout: RejectReason.code_timeout,
    OutputStatus.no_output: RejectReason.empty_output,
}


def _execution_problem(result: ExecutionResult, cfg: KeepConfig) -> tuple[RejectReason, str] | None:
    """(reject reason, detail) for a run that gave no usable answer, judged by the shared output rule."""
    if (problem := execution_problem(result)) is not None:
        return _REJECT_FOR.get(problem.status, RejectReason.code_limit), problem.reason
    read = read_answer(result.stdout)
    if read is not None and len(read.answer) > cfg.max_answer_chars:
        return (
            RejectReason.answer_too_long,
            f"code printed {len(read.answer)} chars; an answer is <= {cfg.max_answer_chars}",
        )
    return None


def disagreement_reason(
    solves: list[SolveAttempt], agreed: int, needed: int, answer: str
) -> tuple[RejectReason, str]:
    """The one reject reason of a candidate the agreement rule turned down: the strongest evidence wins."""
    outcomes = [s.outcome for s in solves]
    summary = f"{agreed}/{len(solves)} solves agreed, needed {needed}; code printed {answer[:60]!r}"
    if "disagree" in outcomes:
        boxed = [s.boxed for s in solves if s.outcome == "disagree"]
        return RejectReason.disagreement, f"{summary}; solver boxed {boxed}"
    if "gave_up" in outcomes:
        return (
            RejectReason.solver_gave_up,
            f"{summary}; {next(s.reason for s in solves if s.outcome == 'gave_up')}",
        )
    if "no_answer" in outcomes:
        return RejectReason.no_boxed_answer, summary
    if "truncated" in outcomes:
        return RejectReason.solve_truncated, f"{summary}; every solve hit max_tokens"
    return RejectReason.llm_error, f"{summary}; {solves[-1].reason if solves else ''}"
