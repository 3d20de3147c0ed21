"""Reward = is the response's final \\boxed{} answer the same as the reference (see loong_env.equivalence).

Extraction and grading are separate steps with separate settings, as in Math-Verify: `extract_boxed` reads
the answer, `loong_env.equivalence.compare` judges it.
"""

from __future__ import annotations

import asyncio
import re
import time

from pydantic import BaseModel, ConfigDict, Field

from loong_env.equivalence import compare
from loong_env.equivalence.normalize import normalize
from loong_env.equivalence.structure import Node, ShapeError, parse_shape
from loong_env.types import Tolerance, VerificationResult, VerificationStatus
from loong_env.verifiers.base import SyncVerifier

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


def _box_starts(text: str, commands: tuple[str, ...]) -> list[int]:
    """Positions just after `\\boxed` / `\\fbox` where an argument follows."""
    pattern = re.compile(r"\\(?:" + "|".join(map(re.escape, commands)) + r")(?![A-Za-z])")
    return [m.end() for m in pattern.finditer(text)]


def _argument(text: str, i: int) -> str | None:
    """The braced argument at i (nested braces, escaped braces respected), or `\\boxed 5` style one token."""
    while i < len(text) and text[i] in " \t\n":
        i += 1
    if i >= len(text):
        return None
    if text[i] != "{":
        m = re.match(r"[^\s$\\]+", text[i:])
        return m.group(0) if m else None
    depth = 0
    j = i
    while j < len(text):
        ch = text[j]
        if ch == "\\":
            j += 2
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1 : j]
        j += 1
    return None


def extract_all_boxed(text: str, commands: tuple[str, ...] = ("boxed", "fbox")) -> list[str]:
    """Every complete boxed answer in order of appearance (boxes inside a box are part of the outer one)."""
    out: list[str] = []
    end = -1
    for start in _box_starts(text, commands):
        if start < end:
            continue
        arg = _argument(text, start)
        if arg is not None:
            out.append(arg.strip())
            end = text.find(arg, start) + len(arg)
    return out


def extract_boxed(text: str, commands: tuple[str, ...] = ("boxed", "fbox")) -> str | None:
    """The LAST complete `\\boxed{...}` / `\\boxed {..}` / `\\fbox{...}` answer, or None if there is none."""
    for start in reversed(_box_starts(text, commands)):
        arg = _argument(text, start)
        if arg is not None:
            return arg.strip()
    return None


def _reference_parts(reference: str) -> int:
    """How many answers a reference holds: the items of a bare list or a braced set (`{1, 2, 3}`), else 1."""
    try:
        shape = parse_shape(normalize(reference))
    except (ShapeError, RecursionError):
        return 1
    return len(shape.items) if isinstance(shape, Node) and shape.kind in ("bare", "set") else 1


class BoxedAnswerVerifier(SyncVerifier):
    """Judges the final boxed answer of a response against a reference answer; never raises for one item."""

    name = "boxed"

    def __init__(self, config: BoxedConfig | None = None) -> None:
        self.config = config or BoxedConfig()

    def extract(self, response: str, reference: str) -> str | None:
        """The answer the response gives: the last box, or one per box for multi-part references."""
        cfg = self.config
        boxes = extract_all_boxed(response, cfg.commands)
        if not boxes:
            if cfg.fallback_last_number:
                numbers = _NUMBER_RE.findall(response)
                return numbers[-1] if numbers else None
            return None
        parts = _reference_parts(reference) if cfg.multi_box and len(boxes) > 1 else 1
        if parts > 1 and len(boxes) >= parts and _reference_parts(boxes[-1]) < parts:
            return ", ".join(boxes[-parts:])  # one answer per box; a last box holding them all is read alone
        return boxes[-1]

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
