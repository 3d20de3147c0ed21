"""THE keep rule, in one place: a candidate is kept only when two independent routes agree.

Route 1: the candidate's code runs in the sandbox with its domain's packages and prints a non-empty answer.
         When it crashes or prints nothing, the writer gets one repair round (its code + the traceback).
Route 2: an independent chain-of-thought solve (without the code) boxes an equivalent answer.
Before either, cheap checks reject malformed, degenerate, scaffold-copying and non-novel questions.
Every candidate ends with exactly one Verdict: accepted, or rejected with one specific RejectReason.
"""

from __future__ import annotations

import asyncio
import re
import time

from loong_env.generators import prompts
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
)
from loong_env.runs.timing import usage_tokens
from loong_env.types import DataPoint, ExecutionResult, Tolerance, normalize_question
from loong_env.verifiers.code_output import OutputStatus, execution_problem, read_answer

__all__ = [  # the vocabulary is re-exported: `from loong_env.generators.keep import Verdict` keeps working
    "Candidate",
    "ChatClient",
    "KeepConfig",
    "KeepRule",
    "RejectReason",
    "RepairAttempt",
    "Runner",
    "SolveAttempt",
    "Verdict",
    "disagreement_reason",
    "novelty_check",
    "novelty_floor",
    "novelty_problem",
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
    pool: NoveltyIndex, config: KeepConfig, question: str, parent_id: str | None = None
) -> tuple[tuple[RejectReason, str, float] | None, float]:
    """The novelty problem (None if new) and the nearest pool item's similarity, from one index lookup."""
    parent_bar = config.novelty_threshold if config.parent_threshold is None else config.parent_threshold
    if parent_id is not None and (sim := pool.similarity_to(question, parent_id)) > parent_bar:
        detail = f"ROUGE-L {sim:.3f} > {parent_bar} to its parent {parent_id}"
        return (RejectReason.no_information_gain, detail, sim), sim
    if pool.contains(question):
        return (RejectReason.duplicate, "normalised question equals one already held", 1.0), 1.0
    nearest = pool.nearest(question, exclude=parent_id)
    if nearest.similarity > config.novelty_threshold:
        bar, sim = config.novelty_threshold, nearest.similarity
        detail = f"ROUGE-L {sim:.3f} > {bar} to {nearest.kind} {nearest.item_id}"
        return (RejectReason.too_similar, detail, nearest.similarity), nearest.similarity
    return None, nearest.similarity


class KeepRule:
    """Judges candidates; holds the novelty pool (seeds + kept) so every method is checked against it.

    `sandbox` runs code with the domain's packages; `solver` answers without the code; `writer` (default:
    the solver's client) gets the repair request when code fails, with the JSON schema unless
    `json_mode=False`. The pool is updated only at acceptance, with no await between the last check and
    the update, so concurrent candidates cannot both be kept as duplicates.
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
    ) -> None:
        self.sandbox = sandbox
        self.solver = solver
        self.writer = writer if writer is not None else solver
        self.json_mode = json_mode
        self.config = config or KeepConfig()
        self.tolerance = tolerance
        self.requirements = list(requirements or [])
        self.pool = NoveltyIndex(floor=novelty_floor(self.config))

    def add_to_pool(self, dp: DataPoint, kind: str) -> None:
        """Make a seed or an already-kept item count against future candidates."""
        self.pool.add(dp.question, dp.id, kind)

    def novelty(self, question: str, parent_id: str | None = None) -> tuple[RejectReason, str, float] | None:
        """Duplicate or too-similar to the pool; an evol rewrite close to its parent adds nothing."""
        return novelty_problem(self.pool, self.config, question, parent_id)

    async def screen(self, candidate: Candidate, verdict: Verdict) -> tuple[RejectReason, str] | None:
        """The early novelty check, before sandbox and solver time is spent; records the nearest one."""
        question, parent = candidate.question, candidate.parent_id
        found, verdict.similarity = novelty_check(self.pool, self.config, question, parent)
        return None if found is None else (found[0], found[1])

    def parent_similarity(self, candidate: Candidate) -> float | None:
        """ROUGE-L of an evol rewrite to its parent (None without a parent), for the kept item's record."""
        if not candidate.parent_id:
            return None
        return self.pool.similarity_to(candidate.question, candidate.parent_id)

    async def claim(
        self, candidate: Candidate, verdict: Verdict, datapoint: DataPoint
    ) -> tuple[RejectReason, str] | None:
        """The last novelty check and the pool update as one step: concurrent near-twins cannot both be kept.

        Here there is no await between check and add; a pool shared across processes does both in one call.
        """
        if found := self.novelty(candidate.question, candidate.parent_id):
            verdict.similarity = found[2]
            return found[0], found[1]
        self.add_to_pool(datapoint, "kept")
        return None

    async def judge(self, candidate: Candidate, verdict: Verdict) -> Verdict:
        """Fill `verdict` for a parsed candidate: shape, novelty, sandbox, then the independent solve(s)."""
        cfg = self.config
        verdict.question, verdict.code = candidate.question, candidate.code
        if found := shape_problem(candidate.question, cfg):
            return _reject(verdict, *found)
        if found := await self.screen(candidate, verdict):
            return _reject(verdict, *found)

        if found := await self.run_code(candidate, verdict):
            return _reject(verdict, *found)
        answer = verdict.answer
        assert answer is not None

        started = time.perf_counter()
        while (step := cfg.decide([s.outcome for s in verdict.solves])) == "solve":
            solve = await self.solve_once(candidate.question, answer, len(verdict.solves), candidate.attempt)
            verdict.solves.append(solve)
            verdict.tokens += solve.tokens
        verdict.timings["solve_s"] = round(time.perf_counter() - started, 4)
        agreed = sum(s.outcome == "agree" for s in verdict.solves)
        if step == "reject":
            needed = majority_needed(cfg.solve_attempts, cfg.agreement)
            return _reject(verdict, *disagreement_reason(verdict.solves, agreed, needed, answer))

        datapoint = self._datapoint(candidate, verdict, agreed)
        if found := await self.claim(candidate, verdict, datapoint):
            return _reject(verdict, *found)
        verdict.datapoint = datapoint
        verdict.accepted = True
        return verdict

    async def run_code(self, candidate: Candidate, verdict: Verdict) -> tuple[RejectReason, str] | None:
        """Route 1: run the code, repaired up to `repair_attempts` times; sets `verdict.answer`, or returns
        why there is none (reject reason, detail)."""
        cfg = self.config
        result = await self._run(candidate.code, verdict)
        found = _execution_problem(result, cfg)
        while found and found[0] in REPAIRABLE and len(verdict.repairs) < cfg.repair_attempts:
            repair = await self._repair(candidate, verdict.code, result, found[0], verdict)
            verdict.repairs.append(repair)
            if repair.code is None:  # no usable reply: the code's own failure stays the reason
                found = (
                    found[0],
                    f"{found[1]}; repair {len(verdict.repairs)}: {repair.outcome}, {repair.detail}",
                )
                break
            verdict.code = repair.code
            result = await self._run(repair.code, verdict)
            found = _execution_problem(result, cfg)
            repair.outcome = "still_failing" if found else "fixed"
            repair.detail = f"{found[0]}: {found[1]}" if found else "ran and printed an answer"
            if found:
                found = (found[0], f"after {len(verdict.repairs)} repair(s): {found[1]}")
        if found:
            return found
        # The shared reading rule (a box, else the whole output, else its last line after a log): the kept
        # item's final_answer is then exactly what seed validation compares.
        read = read_answer(result.stdout)
        assert read is not None  # _execution_problem rejects silent runs
        answer = read.answer
        verdict.answer, verdict.answer_rule = answer, read.rule.value
        return None

    async def _run(self, code: str, verdict: Verdict) -> ExecutionResult:
        """Run code in the sandbox; the verdict remembers the code that ran last and the time spent."""
        started = time.perf_counter()
        result = await self.sandbox.run(code)
        verdict.code = code
        spent = verdict.timings.get("sandbox_s", 0.0) + time.perf_counter() - started
        verdict.timings["sandbox_s"] = round(spent, 4)
        return result

    async def _repair(
        self,
        candidate: Candidate,
        code: str | None,
        result: ExecutionResult,
        reason: RejectReason,
        verdict: Verdict,
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
        messages = prompts.repair(
            candidate.question, code or candidate.code, failure, candidate.domain, self.requirements
        )
        started = time.perf_counter()
        try:
            completion = await self.writer.chat(
                messages,
                temperature=cfg.repair_temperature,
                max_tokens=cfg.repair_max_tokens,
                response_format=candidate_response_format() if self.json_mode else None,
                seed=candidate.attempt * 1000 + 500 + len(verdict.repairs),
            )
        except LLMError as exc:
            repair.detail = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
            return repair
        finally:
            repair.seconds = round(time.perf_counter() - started, 4)
            spent = verdict.timings.get("repair_s", 0.0) + repair.seconds
            verdict.timings["repair_s"] = round(spent, 4)
        repair.tokens = usage_tokens(completion)
        verdict.tokens += repair.tokens
        try:
            repair.code = parse_code(completion.text or "")
        except ParseFailure as exc:
            truncated = completion.finish_reason == "length"
            repair.outcome = "truncated" if truncated else "unparsable"
            repair.detail = f"hit max_tokens={cfg.repair_max_tokens}" if truncated else str(exc)[:300]
        return repair

    async def solve_once(self, question: str, answer: str, index: int, attempt: int) -> SolveAttempt:
        """Route 2, once: the `index`-th independent solve of `question`, compared with the code's answer."""
        # imported here so `loong --help` does not pay for sympy and the openai client
        from loong_env.equivalence import compare
        from loong_env.llm import LLMError
        from loong_env.verifiers.boxed import extract_boxed

        cfg = self.config
        temperature = cfg.solve_temperature_at(index)
        started = time.perf_counter()
        try:
            completion = await self.solver.chat(
                prompts.solve(question),
                temperature=temperature,
                max_tokens=cfg.solve_max_tokens,
                seed=attempt * 1000 + index,
            )
        except LLMError as exc:
            return SolveAttempt(
                outcome="llm_error", reason=str(exc)[:300], seconds=time.perf_counter() - started
            )
        seconds = round(time.perf_counter() - started, 4)
        tokens = usage_tokens(completion)
        text = completion.text or ""
        boxed = extract_boxed(text)
        common = {
            "finish_reason": completion.finish_reason,
            "tokens": tokens,
            "seconds": seconds,
            "boxed": boxed,
        }
        if boxed is None:
            if completion.finish_reason == "length":
                return SolveAttempt(
                    outcome="truncated", reason=f"hit max_tokens={cfg.solve_max_tokens}", **common
                )
            if match := _GIVE_UP.search(text):
                return SolveAttempt(outcome="gave_up", reason=f"solver wrote {match.group(0)!r}", **common)
            return SolveAttempt(outcome="no_answer", reason="finished without \\boxed{}", **common)
        comparison = await asyncio.to_thread(compare, boxed, answer, tolerance=self.tolerance)
        if comparison.equal:
            return SolveAttempt(outcome="agree", reason=comparison.reason, **common)
        reason = comparison.reason + (f" ({comparison.error})" if comparison.error else "")
        return SolveAttempt(outcome="disagree", reason=reason, **common)

    def _datapoint(self, candidate: Candidate, verdict: Verdict, agreed: int) -> DataPoint:
        assert verdict.answer is not None
        metadata = {
            "generator": candidate.method,
            "model": candidate.model,
            "seed_ids": candidate.seed_ids,
            "parent_id": candidate.parent_id,
            "attempt": candidate.attempt,
            "parsed_by": candidate.parsed_by,
            "answer_read_by": verdict.answer_rule,
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


def _reject(verdict: Verdict, reason: RejectReason, detail: str) -> Verdict:
    verdict.accepted = False
    verdict.reason = reason
    verdict.detail = detail
    return verdict


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
