"""PythonVerifier: code from a response runs in the sandbox; its printed answer is graded against the reference."""

from __future__ import annotations

import pytest

from loong_env.sandbox import Sandbox
from loong_env.types import Tolerance, VerificationStatus
from loong_env.verifiers import PythonVerifier
from loong_env.verifiers.python import extract_code

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def verifier():
    with Sandbox([], timeout_s=2.0, workers=2) as sandbox:
        yield PythonVerifier(sandbox=sandbox, concurrency=3)


async def test_correct_code_is_correct(verifier):
    res = await verifier.verify("print(sum(range(10)))", "45")
    assert res.status is VerificationStatus.correct
    assert res.reward == 1.0
    assert res.extracted == "45"


async def test_equivalent_forms_count_as_correct(verifier):
    res = await verifier.verify("print(1/2)", "\\frac{1}{2}")
    assert res.status is VerificationStatus.correct


async def test_wrong_output_is_incorrect(verifier):
    res = await verifier.verify("print(44)", "45")
    assert res.status is VerificationStatus.incorrect
    assert res.reward == 0.0


async def test_tolerance_is_respected(verifier):
    close = await verifier.verify("print(3.14159)", "3.1416", tolerance=Tolerance(rel=1e-4))
    exact = await verifier.verify("print(3.14159)", "3.1416")
    assert close.status is VerificationStatus.correct
    assert exact.status is VerificationStatus.incorrect


async def test_last_python_block_of_an_llm_reply_is_run(verifier):
    reply = (
        "First try:\n```python\nprint(1)\n```\nOops, fixed:\n```python\nprint([1, 2, 3])\n```\n"
        "Output block:\n```text\n[1, 2, 3]\n```"
    )
    res = await verifier.verify(reply, "[1,2,3]")
    assert res.status is VerificationStatus.correct


async def test_prose_without_code_is_no_answer(verifier):
    res = await verifier.verify("The answer is clearly 45, trust me.", "45")
    assert res.status is VerificationStatus.no_answer


async def test_timeout_is_an_error_with_the_reason(verifier):
    res = await verifier.verify("while True: pass", "1")
    assert res.status is VerificationStatus.error
    assert res.reason == "timeout after 2 s"


async def test_exception_is_an_error_with_the_last_line(verifier):
    res = await verifier.verify("```python\nraise ValueError('bad input')\n```", "1")
    assert res.status is VerificationStatus.error
    assert "ValueError: bad input" in res.reason


async def test_batch_keeps_order_and_isolates_bad_items(verifier):
    responses = ["print(2)", "while True: pass", "no code here", "print(4)", "import os; os._exit(9)"]
    results = await verifier.verify_many(responses, ["2", "3", "4", "4", "5"])
    assert [r.status for r in results] == [
        VerificationStatus.correct,
        VerificationStatus.error,
        VerificationStatus.no_answer,
        VerificationStatus.correct,
        VerificationStatus.error,
    ]


def test_sync_verify_works_twice_on_the_same_sandbox(verifier):
    assert verifier.verify_sync("print(7)", "7").correct
    assert verifier.verify_sync("print(8)", "8").correct


def test_extract_code_prefers_python_blocks():
    assert extract_code("```py\nprint(1)\n```") == "print(1)\n"
    assert extract_code("```\nprint(2)\n```") == "print(2)\n"
    assert extract_code("```bash\nls\n```") is None
    assert extract_code("import math\nprint(math.pi)") == "import math\nprint(math.pi)"
    assert extract_code("So the result is print-worthy: 42.") is None


async def test_sympy_requirement_set_runs_seed_style_code():
    verifier = PythonVerifier(["sympy==1.14.0"], timeout_s=60)
    res = await verifier.verify(
        "import sympy as sp\nx = sp.symbols('x')\nprint(sp.factor(x**2 - 1))", "(x-1)*(x+1)"
    )
    assert res.status is VerificationStatus.correct, res


async def test_code_that_prints_a_log_then_the_answer_is_graded_on_its_last_line(verifier):
    res = await verifier.verify("for i in range(3):\n    print('step', i)\nprint(45)", "45")
    assert res.status is VerificationStatus.correct and res.extracted == "45"
    assert "last line" in res.reason


async def test_code_that_prints_a_boxed_answer_is_graded_on_the_box(verifier):
    res = await verifier.verify("print('so the answer is \\\\boxed{45}')", "45")
    assert res.status is VerificationStatus.correct and res.extracted == "45"
