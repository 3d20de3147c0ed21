"""The one output judge: how a run's printed answer is read, and the verdict every caller shares."""

from __future__ import annotations

import pytest

from loong_env.types import ExecutionResult, ExecutionStatus, Tolerance
from loong_env.verifiers.code_output import (
    OutputStatus,
    ReadingRule,
    execution_problem,
    judge_output,
    read_answer,
)


def ran(stdout: str) -> ExecutionResult:
    return ExecutionResult(status=ExecutionStatus.ok, stdout=stdout, exit_code=0)


def test_a_boxed_answer_is_read_from_the_box():
    verdict = judge_output(ran("solving...\nthe answer is \\boxed{\\frac{1}{2}}\n"), "0.5")
    assert verdict.status is OutputStatus.passed and verdict.rule is ReadingRule.boxed
    assert verdict.answer == "\\frac{1}{2}"


def test_a_plain_output_is_read_whole():
    verdict = judge_output(ran("[1, 2, 3]\n"), "[1,2,3]")
    assert verdict.passed and verdict.rule is ReadingRule.whole and verdict.answer == "[1, 2, 3]"


def test_a_solver_log_then_the_answer_matches_on_the_last_line():
    verdict = judge_output(ran("iteration 1: residual 0.3\niteration 2: residual 0.01\n42\n"), "42")
    assert verdict.passed and verdict.rule is ReadingRule.last_line and verdict.answer == "42"
    assert "last line" in verdict.reason


def test_a_wrong_answer_quotes_the_whole_output_and_the_reference():
    verdict = judge_output(ran("log line\n41\n"), "42")
    assert verdict.status is OutputStatus.wrong_answer and verdict.rule is ReadingRule.whole
    assert "expected '42'" in verdict.reason and "41" in verdict.reason


def test_the_tolerance_is_applied():
    assert judge_output(ran("3.14159\n"), "3.1416", tolerance=Tolerance(rel=1e-4)).passed
    assert not judge_output(ran("3.14159\n"), "3.1416").passed


@pytest.mark.parametrize(
    ("result", "status", "said"),
    [
        (ExecutionResult(status=ExecutionStatus.ok, stdout="  \n"), OutputStatus.no_output, "nothing"),
        (
            ExecutionResult(status=ExecutionStatus.error, stderr="Trace\nZeroDivisionError: x", exit_code=1),
            OutputStatus.code_error,
            "ZeroDivisionError",
        ),
        (ExecutionResult(status=ExecutionStatus.timeout, duration_s=2.0), OutputStatus.timeout, "after 2 s"),
        (ExecutionResult(status=ExecutionStatus.memory_limit), OutputStatus.memory_limit, "memory limit"),
        (ExecutionResult(status=ExecutionStatus.output_limit), OutputStatus.output_limit, "output limit"),
        (ExecutionResult(status=ExecutionStatus.killed, exit_code=-9), OutputStatus.killed, "exit code -9"),
    ],
    ids=["silent", "raised", "timeout", "memory", "output", "killed"],
)
def test_runs_without_an_answer_say_why(result, status, said):
    verdict = judge_output(result, "1")
    assert verdict.status is status and said in verdict.reason and not verdict.ran
    assert execution_problem(result) == verdict


@pytest.mark.parametrize(
    "stdout",
    [
        "42\n",
        "step 1\nstep 2\n42\n",
        "log\nresult: \\boxed{x^2 + 1}\n",
        "[[1 2]\n [3 4]]\n",  # a matrix printed over two lines is one answer
        "x = 3\ny = 4\n(3, 4)\n",
    ],
)
def test_the_answer_read_without_a_reference_is_what_validation_accepts(stdout):
    read = read_answer(stdout)
    assert read is not None
    assert judge_output(ran(stdout), read.answer).passed


def test_read_answer_rules():
    assert read_answer("   ") is None
    assert read_answer("7\n").rule is ReadingRule.whole
    assert read_answer("log\n7\n").rule is ReadingRule.last_line
    assert read_answer("[[1 2]\n [3 4]]").rule is ReadingRule.whole
    assert read_answer("\\boxed{7}").rule is ReadingRule.boxed
