"""Reward = is the response's final \\boxed{} answer the same as the reference (see loong_env.equivalence).

Extraction and grading are separate steps with separate settings, as in Math-Verify: `read_boxed`
(loong_env.verifiers.extract, the one reading every caller shares) reads the answer,
`loong_env.equivalence.compare` judges it.
"""

from __future__ import annotations

import asyncio
import re
import time

from pydantic import BaseModel, ConfigDict, Field

from loong_env.equivalence import compare
from loong_env.types import Tolerance, VerificationResult, VerificationStatus
from loong_env.verifiers.base import SyncVerifier
from loong_env.verifiers.extract import extract_all_boxed, extract_boxed, read_boxed

__all__ = ["BoxedAnswerVerifier", "BoxedConfig", "extract_all_boxed", "extract_boxed", "read_boxed"]

_NUMBER_RE = re.compile(r"-?\d[\d,]*(?:\.\d+)?(?:[eE][-+]?\d+)?")


class BoxedConfig(BaseModel):
    """How answers are read and judged; the defaults are strict (a box is required, exact numbers)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    commands: tuple[str, ...] = Field(
        default=("boxed", "fbox"), description="LaTeX commands that hold the answer."
    )
    multi_box: bool = Field(
        default=True, description="Read one answer per box when the reference has several parts."
    )
    fallback_last_number: bool = Field(
        default=False, description="Without a box, use the last number (lenient)."
    )
    timeout_s: float = Field(default=1.5, gt=0, description="Compute bound for one comparison.")


class BoxedAnswerVerifier(SyncVerifier):
    """Judges the final boxed answer of a response against a reference answer; never raises for one item."""

    name = "boxed"

    def __init__(self, config: BoxedConfig | None = None) -> None:
        self.config = config or BoxedConfig()

    def extract(self, response: str, reference: str) -> str | None:
        """The answer the response gives: the last box, or one per box for multi-part references."""
        cfg = self.config
        found = read_boxed(response, reference, commands=cfg.commands, multi_box=cfg.multi_box)
        if found is None and cfg.fallback_last_number:
            numbers = _NUMBER_RE.findall(response)
            return numbers[-1] if numbers else None
        return found

    def verify_sync(
        self, response: str, reference: str, *, tolerance: Tolerance | None = None
    ) -> VerificationResult:
        """Plain call: safe from any thread, including one running an event loop (sympy runs in a worker)."""
        t0 = time.perf_counter()
        try:
            extracted = self.extract(response, reference)
        except RecursionError:
            extracted = None
        if extracted is None:
            return VerificationResult(
                status=VerificationStatus.no_answer,
                reward=0.0,
                reference=reference,
                reason="no \\boxed{} answer in the response",
                duration_s=time.perf_counter() - t0,
            )
        verdict = compare(extracted, reference, tolerance=tolerance, timeout_s=self.config.timeout_s)
        if verdict.error is not None:
            status = VerificationStatus.error
            reason = f"{verdict.reason}: {verdict.error}"
        else:
            status = VerificationStatus.correct if verdict.equal else VerificationStatus.incorrect
            reason = verdict.reason
        return VerificationResult(
            status=status,
            reward=1.0 if status is VerificationStatus.correct else 0.0,
            extracted=extracted if len(extracted) <= 10_000 else extracted[:10_000] + "...",
            reference=reference,
            reason=reason,
            duration_s=time.perf_counter() - t0,
        )

    async def start(self) -> None:
        """Start the sympy workers and unit registry now: the first check then costs what any check does."""
        from loong_env.equivalence import warm_up

        await asyncio.to_thread(warm_up)
