"""RunStats: the live numbers of a CoT run, updated by one call per finished problem.

A metrics writer (or the live display) reads a snapshot after each `record`; nothing else updates them.
"""

from __future__ import annotations

import time

from pydantic import BaseModel, Field

from loong_env.pipeline.records import Outcome, ProblemFailure


class RunStats(BaseModel):
    """Problems done, passes, tokens and latencies of one run (problems resumed from disk are not counted)."""

    mode: str = "refine"
    total: int = Field(default=0, description="Problems this run set out to finish.")
    resumed: int = Field(default=0, description="Problems already finished on disk when the run started.")
    done: int = 0
    failed: int = 0
    first_correct: int = 0
    solved: int = Field(default=0, description="Problems with a verified unhinted trace.")
    rationalized: int = Field(default=0, description="Problems given a hinted (STaR) round.")
    rationalized_correct: int = 0
    traces: int = 0
    samples: int = 0
    correct_samples: int = 0
    pass_at_sum: dict[int, float] = Field(default_factory=dict, description="k -> sum of per-problem pass@k.")
    tokens: int = 0
    problem_seconds_sum: float = 0.0
    trace_latency_s_sum: float = 0.0
    concurrency: float | None = Field(
        default=None, description="The adaptive request limit at the last record."
    )
    started: float = Field(default_factory=time.monotonic)

    def record(self, outcome: Outcome) -> None:
        """Count one finished problem (a result or a failure)."""
        self.tokens += sum(t.tokens for t in outcome.traces)
        self.trace_latency_s_sum += sum(t.latency_s for t in outcome.traces)
        self.traces += len(outcome.traces)
        self.problem_seconds_sum += outcome.seconds
        if isinstance(outcome, ProblemFailure):
            self.failed += 1
            return
        self.done += 1
        self.first_correct += outcome.first_correct
        self.solved += outcome.solved
        self.rationalized += outcome.tried_rationalization
        self.rationalized_correct += outcome.rationalized is not None
        self.samples += outcome.samples
        self.correct_samples += outcome.correct_samples
        for k, value in outcome.pass_at.items():
            self.pass_at_sum[k] = self.pass_at_sum.get(k, 0.0) + value

    @property
    def finished(self) -> int:
        return self.done + self.failed

    @property
    def elapsed_s(self) -> float:
        return time.monotonic() - self.started

    @property
    def first_pass_rate(self) -> float:
        return self.first_correct / self.done if self.done else 0.0

    @property
    def pass_rate(self) -> float:
        """Share of finished problems with a verified unhinted trace."""
        return self.solved / self.done if self.done else 0.0

    def pass_at(self) -> dict[int, float]:
        """Mean pass@k over the problems finished so far."""
        return {k: v / self.done for k, v in sorted(self.pass_at_sum.items())} if self.done else {}

    @property
    def tokens_per_problem(self) -> float:
        return self.tokens / self.finished if self.finished else 0.0

    @property
    def seconds_per_problem(self) -> float:
        return self.problem_seconds_sum / self.finished if self.finished else 0.0
