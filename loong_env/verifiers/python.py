"""PythonVerifier: run the response's code in the sandbox and compare what it prints with the reference.

Code-as-answer is how Loong checks its own rationales, and how a policy that answers in Python is graded.
"""

from __future__ import annotations

import ast
import asyncio
import re
import time
from collections.abc import Iterable, Sequence

from loong_env.sandbox import Sandbox
from loong_env.types import Tolerance, VerificationResult, VerificationStatus
from loong_env.verifiers.base import Verifier
from loong_env.verifiers.code_output import OutputStatus, judge_output

_FENCE_RE = re.compile(r"```[ \t]*(?P<lang>[A-Za-z0-9_+\-]*)[^\n]*\n(?P<body>.*?)```", re.DOTALL)
_PYTHON_TAGS = {"python", "py", "python3"}


def extract_code(response: str) -> str | None:
    """The code to run: the last ```python block, else the last untagged block, else the response if it
    looks like code; None when there is no code at all (plain prose)."""
    blocks = [(m["lang"].lower(), m["body"]) for m in _FENCE_RE.finditer(response)]
    tagged = [body for lang, body in blocks if lang in _PYTHON_TAGS]
    if tagged:
        return tagged[-1]
    untagged = [body for lang, body in blocks if not lang]
    if untagged:
        return untagged[-1]
    if blocks:
        return None  # only blocks in other languages
    return response if _looks_like_code(response) else None


def _looks_like_code(text: str) -> bool:
    """Unfenced text counts as code when it parses as Python and is more than a bare name or number."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return False
    return any(
        not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant | ast.Name))
        for node in tree.body
    )


class PythonVerifier(Verifier):
    """Runs code from a response in an isolated sandbox and grades what it printed against the reference.

    The printed answer is read by the shared rule of `loong_env.verifiers.code_output` (a box, else the
    whole output, else its last line). Tri-state per item: correct / incorrect, `no_answer` when the
    response has no code, and `error` (with the reason) when the code failed, timed out or printed nothing.
    """

    name = "python"

    def __init__(
        self,
        requirements: Iterable[str] = (),
        *,
        sandbox: Sandbox | None = None,
        timeout_s: float = 10.0,
        concurrency: int | None = None,
        compare_timeout_s: float = 1.5,
        warmup: Sequence[str] = (),
    ) -> None:
        if sandbox is None:
            sandbox = Sandbox.shared(list(requirements), timeout_s=timeout_s, warmup=list(warmup))
        self.sandbox = sandbox
        self.concurrency = concurrency or self.sandbox.n_workers * 2
        self.compare_timeout_s = compare_timeout_s
        self._limit: asyncio.Semaphore | None = None
        self._limit_loop: asyncio.AbstractEventLoop | None = None

    def _semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if self._limit is None or self._limit_loop is not loop:  # semaphores belong to one loop
            self._limit, self._limit_loop = asyncio.Semaphore(self.concurrency), loop
        return self._limit

    async def verify(
        self, response: str, reference: str, *, tolerance: Tolerance | None = None
    ) -> VerificationResult:
        """Run the code, compare the printed answer; never raises for one bad item."""
        t0 = time.monotonic()

        def result(
            status: VerificationStatus, reason: str, extracted: str | None = None
        ) -> VerificationResult:
            reward = 1.0 if status is VerificationStatus.correct else 0.0
            return VerificationResult(
                status=status,
                reward=reward,
                extracted=extracted,
                reference=reference,
                reason=reason,
                duration_s=time.monotonic() - t0,
            )

        code = extract_code(response)
        if code is None:
            return result(VerificationStatus.no_answer, "no Python code found in the response")
        try:
            async with self._semaphore():
                run = await self.sandbox.run(code)
        except Exception as exc:  # noqa: BLE001 - the sandbox itself failed (e.g. unavailable): report it
            return result(VerificationStatus.error, f"sandbox error: {exc}")
        try:
            verdict = await asyncio.to_thread(
                judge_output,
                run,
                reference,
                tolerance=tolerance,
                limits=self.sandbox.limits,
                timeout_s=self.compare_timeout_s,
            )
        except Exception as exc:  # noqa: BLE001
            return result(VerificationStatus.error, f"comparison failed: {exc}", run.stdout.strip() or None)
        if verdict.passed:
            return result(VerificationStatus.correct, verdict.reason, verdict.answer)
        if verdict.status is OutputStatus.wrong_answer:
            return result(VerificationStatus.incorrect, verdict.reason, verdict.answer)
        if verdict.status is OutputStatus.undecided:
            return result(VerificationStatus.error, f"could not compare: {verdict.error}", verdict.answer)
        return result(VerificationStatus.error, verdict.reason, verdict.answer)

    async def start(self) -> None:
        """Build the environment and start the warm workers now, not on the first answer."""
        await self.sandbox.start()
