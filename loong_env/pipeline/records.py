"""What the CoT pipeline keeps per problem: every trace, every evaluation of it, and how the problem ended.

One `ProblemResult` is one line of results.jsonl; a problem that could not be finished is a
`ProblemFailure` (one line of failed.jsonl) that says why. Nothing here talks to a model or a file.
"""

from __future__ import annotations

from statistics import fmean
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field

from loong_env.types import AnswerKey, DataPoint, VerificationStatus

Mode = Literal["refine", "rejection"]
TraceKind = Literal["initial", "refined", "sample", "rationalized"]
StopReason = Literal["thresholds_met", "max_iterations", "evaluation_failed", "sampled"]
Messages = list[dict[str, str]]


class Problem(BaseModel):
    """One problem to reason about: its place in the input, the datapoint, and the key it is judged by."""

    model_config = ConfigDict(frozen=True)

    index: int = Field(description="Position in the input; results are reported in this order.")
    datapoint: DataPoint
    key: AnswerKey

    @property
    def id(self) -> str:
        return self.datapoint.id

    @property
    def question(self) -> str:
        return self.datapoint.question


class Evaluation(BaseModel):
    """One evaluator's verdict on one trace: named scores, written feedback, or why there is none."""

    evaluator: str
    scores: dict[str, float] = Field(default_factory=dict, description="Score name (no prefix) -> value.")
    feedback: str = ""
    error: str | None = Field(
        default=None, description="Why this evaluation has no scores (recorded, not raised)."
    )
    attempts: int = 1
    tokens: int = 0
    raw: str | None = Field(default=None, description="The unusable reply when a judge answered garbage.")
    status: VerificationStatus | None = Field(default=None, description="Set by the verifier evaluator only.")
    extracted: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class Trace(BaseModel):
    """One reasoning trace and everything known about it."""

    kind: TraceKind
    round: int = Field(description="Refinement iteration (0 = first trace) or sample number.")
    text: str
    hinted: bool = Field(default=False, description="The reference answer was shown to the model (STaR).")
    status: VerificationStatus = Field(description="The verifier's verdict against the reference answer.")
    extracted: str | None = None
    evaluations: list[Evaluation] = Field(default_factory=list)
    finish_reason: str | None = None
    tokens: int = 0
    tokens_estimated: bool = Field(default=False, description="Split from a shared n>1 usage record.")
    latency_s: float = 0.0

    @property
    def correct(self) -> bool:
        return self.status is VerificationStatus.correct

    def scores(self) -> dict[str, float]:
        """Every score as `evaluator.name` (what thresholds refer to)."""
        return {f"{e.evaluator}.{k}": v for e in self.evaluations for k, v in e.scores.items()}

    def rank_score(self) -> float | None:
        """Mean of the scores of every evaluator but the verifier (None when there are none)."""
        values = [v for e in self.evaluations if e.status is None for v in e.scores.values()]
        return fmean(values) if values else None


class ProblemResult(BaseModel):
    """A finished problem: the prompt its traces answer, the whole trace history, and the outcome."""

    index: int
    id: str
    question: str
    reference: str
    domain: str
    difficulty: int | None = None
    mode: Mode
    prompt: Messages = Field(description="The unhinted messages every trace answers (what exports train on).")
    traces: list[Trace] = Field(default_factory=list)
    stop_reason: StopReason | None = None
    samples: int = Field(default=0, description="Unhinted samples drawn (rejection mode).")
    correct_samples: int = 0
    pass_at: dict[int, float] = Field(default_factory=dict, description="k -> unbiased pass@k estimate.")
    best: int | None = Field(
        default=None, description="Index in `traces` of the best verified unhinted trace."
    )
    rationalized: int | None = Field(
        default=None, description="Index in `traces` of the verified hinted trace."
    )
    tokens: int = 0
    seconds: float = 0.0

    @classmethod
    def of(
        cls, problem: Problem, *, mode: Mode, prompt: Messages, traces: list[Trace], **fields: object
    ) -> Self:
        """A result for `problem` with its identifying fields filled in from the problem itself."""
        dp = problem.datapoint
        return cls(
            index=problem.index,
            id=problem.id,
            question=problem.question,
            reference=problem.key.reference,
            domain=dp.domain,
            difficulty=dp.difficulty,
            mode=mode,
            prompt=prompt,
            traces=list(traces),
            **fields,
        )  # type: ignore[arg-type]

    @property
    def first_correct(self) -> bool:
        """The very first unhinted trace was verified correct."""
        return bool(self.traces) and self.traces[0].correct and not self.traces[0].hinted

    @property
    def solved(self) -> bool:
        """Some unhinted trace was verified correct."""
        return self.best is not None

    @property
    def tried_rationalization(self) -> bool:
        return any(t.hinted for t in self.traces)


class ProblemFailure(BaseModel):
    """A problem that could not be finished in this run, and why (it is tried again on resume)."""

    index: int
    id: str
    question: str
    error: str
    traces: list[Trace] = Field(default_factory=list, description="What was made before the failure.")
    tokens: int = 0
    seconds: float = 0.0


Outcome = ProblemResult | ProblemFailure
