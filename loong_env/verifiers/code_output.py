"""One judge for "this code ran; does what it printed match the reference?", shared by every caller.

Seed validation, `PythonVerifier` and the generators' keep rule all read a run through this module, so a
kept item's `final_answer` is exactly what validation later compares and a code answer earns its reward by
the same rule a seed is proven by.

Reading rule (`read_answer`, `judge_output`): the content of the last `\\boxed{...}` when the output has
one; else the whole stripped output; and when the whole output does not match the reference, its last
non-empty line (code that prints a solver log and then the answer). Every verdict says which rule matched.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol

from pydantic import BaseModel

from loong_env.types import ExecutionResult, ExecutionStatus, Tolerance
from loong_env.verifiers.extract import read_boxed

_SHOWN = 80  # characters of an answer quoted in a reason


class OutputStatus(StrEnum):
    """What happened to one run, judged against a reference (or, for `read`, without one)."""

    passed = "passed"
    wrong_answer = "wrong_answer"  # it printed an answer that is not the reference
    undecided = "undecided"  # the comparison could not decide (parse failure, time bound)
    code_error = "code_error"  # it raised / exited non-zero
    timeout = "timeout"
    memory_limit = "memory_limit"
    output_limit = "output_limit"
    killed = "killed"
    no_output = "no_output"  # it ran to completion and printed nothing


class ReadingRule(StrEnum):
    """Which part of the output was taken as the answer."""

    boxed = "boxed"  # the last \\boxed{...} in the output
    whole = "whole"  # the whole stripped output
    last_line = "last_line"  # the last non-empty line (after a log)


class ReadAnswer(BaseModel):
    """The answer a run printed and the rule that read it."""

    answer: str
    rule: ReadingRule


class OutputVerdict(BaseModel):
    """The verdict on one run: its status, the answer it read, which rule matched, and why."""

    status: OutputStatus
    answer: str | None = None
    rule: ReadingRule | None = None
    reason: str = ""
    error: str | None = None  # set when the comparison itself could not decide

    @property
    def passed(self) -> bool:
        return self.status is OutputStatus.passed

    @property
    def ran(self) -> bool:
        """True when the code ran to completion and printed something (the answer may still be wrong)."""
        return self.status in (OutputStatus.passed, OutputStatus.wrong_answer, OutputStatus.undecided)


class RunLimits(Protocol):
    """The limits a run was held to (loong_env.sandbox.SandboxLimits fits); used only to word reasons."""

    timeout_s: float
    memory_mb: int
    max_output_bytes: int


_RUN_STATUS = {
    ExecutionStatus.error: OutputStatus.code_error,
    ExecutionStatus.timeout: OutputStatus.timeout,
    ExecutionStatus.memory_limit: OutputStatus.memory_limit,
    ExecutionStatus.output_limit: OutputStatus.output_limit,
    ExecutionStatus.killed: OutputStatus.killed,
}


def execution_problem(result: ExecutionResult, limits: RunLimits | None = None) -> OutputVerdict | None:
    """Why a run gave no answer to compare (crash, limit, silence), or None when it printed one."""
    if result.status is ExecutionStatus.ok:
        if result.stdout.strip():
            return None
        return OutputVerdict(status=OutputStatus.no_output, reason="the code ran but printed nothing")
    status = _RUN_STATUS.get(result.status, OutputStatus.code_error)
    last = next((ln.strip() for ln in reversed(result.stderr.strip().splitlines()) if ln.strip()), "")
    match status:
        case OutputStatus.timeout:
            bound = limits.timeout_s if limits is not None else result.duration_s
            reason = f"timeout after {bound:g} s"
        case OutputStatus.memory_limit:
            bound = f" of {limits.memory_mb} MB" if limits else ""
            reason = f"memory limit{bound} exceeded"
        case OutputStatus.output_limit:
            bound = f" of {limits.max_output_bytes} bytes" if limits else ""
            reason = f"output limit{bound} exceeded"
        case OutputStatus.killed:
            reason = f"killed (exit code {result.exit_code})" + (f": {last[:200]}" if last else "")
        case _:
            reason = f"the code raised an error (exit code {result.exit_code})"
            reason += f": {last[:200]}" if last else ""
    return OutputVerdict(status=status, reason=reason)


def _boxed(output: str) -> str | None:
    """The boxed answer a program printed, read as every other boxed answer is (the last box)."""
    return read_boxed(output)


def _last_line(output: str) -> str | None:
    """The last non-empty line when the output has more than one, else None."""
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    return lines[-1] if len(lines) > 1 else None


def _balanced(text: str) -> bool:
    depth = 0
    for ch in text:
        depth += ch in "([{"
        depth -= ch in ")]}"
        if depth < 0:
            return False
    return depth == 0


def read_answer(stdout: str) -> ReadAnswer | None:
    """The answer code printed when nothing is known about it yet (the code defines it), or None if silent.

    The boxed content when there is a box; else a one-line output as a whole; else, after a log, the last
    line - unless that line is only the tail of a value printed over several lines (an unbalanced bracket,
    as numpy prints a matrix), when the whole output is the answer. `judge_output` against this answer
    always passes, so what a kept item's `final_answer` says is what validation compares.
    """
    output = stdout.strip()
    if not output:
        return None
    if (boxed := _boxed(output)) is not None:
        return ReadAnswer(answer=boxed, rule=ReadingRule.boxed)
    last = _last_line(output)
    if last is not None and _balanced(last):
        return ReadAnswer(answer=last, rule=ReadingRule.last_line)
    return ReadAnswer(answer=output, rule=ReadingRule.whole)


def _quote(text: str) -> str:
    return repr(text if len(text) <= _SHOWN else text[:_SHOWN] + "...")


def judge_output(
    result: ExecutionResult,
    reference: str,
    *,
    tolerance: Tolerance | None = None,
    limits: RunLimits | None = None,
    timeout_s: float = 1.5,
) -> OutputVerdict:
    """Verdict on one run against its reference; blocking (sympy may run), so async callers use a thread."""
    from loong_env.equivalence import compare

    if (problem := execution_problem(result, limits)) is not None:
        return problem
    output = result.stdout.strip()
    boxed = _boxed(output)
    first = (boxed, ReadingRule.boxed) if boxed is not None else (output, ReadingRule.whole)
    tries = [first]
    if boxed is None and (last := _last_line(output)) is not None:
        tries.append((last, ReadingRule.last_line))
    primary = None
    for answer, rule in tries:
        verdict = compare(answer, reference, tolerance=tolerance, timeout_s=timeout_s)
        if verdict.equal:
            how = "" if rule is ReadingRule.whole else f"{rule.value.replace('_', ' ')} of the output: "
            reason = how + verdict.reason
            return OutputVerdict(status=OutputStatus.passed, answer=answer, rule=rule, reason=reason)
        primary = primary or (answer, rule, verdict)
    assert primary is not None
    answer, rule, verdict = primary
    why = verdict.error or verdict.reason
    reason = f"printed {_quote(answer)}, expected {_quote(reference)}" + (f" ({why})" if why else "")
    status = OutputStatus.undecided if verdict.error else OutputStatus.wrong_answer
    return OutputVerdict(status=status, answer=answer, rule=rule, reason=reason, error=verdict.error)
