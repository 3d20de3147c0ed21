"""PythonVerifier: run the response's code in the sandbox and compare what it prints with the reference.

Code-as-answer is how Loong checks its own rationales, and how a policy that answers in Python is graded.
"""

from __future__ import annotations

import ast
import asyncio
import re
import time
from collections.abc import Iterable

from loong_env.sandbox import Sandbox
from loong_env.types import ExecutionStatus, Tolerance, VerificationResult, VerificationStatus
from loong_env.verifiers.base import Verifier

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


def _seconds(value: float) -> str:
    return f"{value:g} s"


class PythonVerifier(Verifier):
    """Runs code from a response in an isolated sandbox and grades its stripped stdout against the reference.

    Tri-state per item: correct / incorrect, `no_answer` when the response has no code, and `error` (with
    the reason) when the code failed, timed out or printed nothing.
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
    ) -> None:
        self.sandbox = (
            sandbox if sandbox is not None else Sandbox.shared(list(requirements), timeout_s=timeout_s)
        )
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
            return VerificationResult(status=status, reward=reward, extracted=extracted, reference=reference,
                                      reason=reason, duration_s=time.monotonic() - t0)  # fmt: skip

        code = extract_code(response)
        if code is None:
            return result(VerificationStatus.no_answer, "no Python code found in the response")
        try:
            async with self._semaphore():
                run = await self.sandbox.run(code)
        except Exception as exc:  # noqa: BLE001 - the sandbox itself failed (e.g. unavailable): report it
            return result(VerificationStatus.error, f"sandbox error: {exc}")
        if run.status is not ExecutionStatus.ok:
            return result(VerificationStatus.error, self._why(run.status, run.stderr, run.exit_code))
        printed = run.stdout.strip()
        if not printed:
            return result(VerificationStatus.error, "the code ran but printed nothing")
        try:
            from loong_env.equivalence import compare

            verdict = await asyncio.to_thread(
                compare, printed, reference, tolerance=tolerance, timeout_s=self.compare_timeout_s
            )
        except Exception as exc:  # noqa: BLE001
            return result(VerificationStatus.error, f"comparison failed: {exc}", printed)
        if verdict.equal:
            return result(VerificationStatus.correct, verdict.reason, printed)
        if verdict.error:
            return result(VerificationStatus.error, f"could not compare: {verdict.error}", printed)
        return result(VerificationStatus.incorrect, verdict.reason, printed)

    async def start(self) -> None:
        """Build the environment and start the warm workers now, not on the first answer."""
        await self.sandbox.start()

    def _why(self, status: ExecutionStatus, stderr: str, exit_code: int | None) -> str:
        lim = self.sandbox.limits
        last = next((ln for ln in reversed(stderr.strip().splitlines()) if ln.strip()), "")
        match status:
            case ExecutionStatus.timeout:
                return f"timeout after {_seconds(lim.timeout_s)}"
            case ExecutionStatus.memory_limit:
                return f"memory limit of {lim.memory_mb} MB exceeded"
            case ExecutionStatus.output_limit:
                return f"output limit of {lim.max_output_bytes} bytes exceeded"
            case ExecutionStatus.killed:
                return f"killed (exit code {exit_code})" + (f": {last}" if last else "")
            case _:
                return f"the code raised an error (exit code {exit_code})" + (f": {last}" if last else "")
