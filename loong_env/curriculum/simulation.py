"""Synthetic learners with known learning curves: what a curriculum does, seen in seconds without an LLM.

A learner answers a problem of category c correctly with probability p(c). Training on a problem moves
p(c) by `rate * p * (1 - p)` (the expected GRPO signal of a 0/1 reward: none when every answer agrees),
so a category is learnable now when p is in between, saturated near 1, and too hard at 0. A category
with `requires` stays at 0 until every prerequisite reaches `unlock_at`; then it starts at `start`.

    result = await simulate(default_curves(), strategy="sec", steps=120, seed=0)
    result.total_gain, result.shares, result.values
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Literal

from pydantic import BaseModel, Field

from loong_env import bridge
from loong_env.curriculum.bandit import CurriculumConfig
from loong_env.curriculum.categories import domain_difficulty
from loong_env.curriculum.sampler import CurriculumSampler
from loong_env.errors import ConfigError
from loong_env.runs.metrics import MetricsWriter, StepRecord
from loong_env.types import DataPoint

Strategy = Literal["sec", "uniform"]


class CategoryCurve(BaseModel):
    """One synthetic category: where the learner starts, how fast it learns, what it needs first."""

    domain: str
    difficulty: int = Field(ge=1, le=5)
    start: float = Field(ge=0, le=1, description="Success probability once unlocked.")
    rate: float = Field(0.03, ge=0, description="Learning speed: dp = rate * p * (1 - p) per problem.")
    requires: list[str] = Field(default_factory=list, description="Categories that must reach unlock_at.")
    unlock_at: float = Field(0.75, ge=0, le=1)

    @property
    def category(self) -> str:
        return f"{self.domain}/d{self.difficulty}"


class SyntheticLearner:
    """Per-category success probabilities that rise with training, some behind prerequisites."""

    def __init__(self, curves: list[CategoryCurve]) -> None:
        self.curves = {c.category: c for c in curves}
        self.skill = {c.category: c.start for c in curves}

    def unlocked(self, category: str) -> bool:
        curve = self.curves[category]
        return all(self.success(r) >= curve.unlock_at for r in curve.requires)

    def success(self, category: str) -> float:
        """The probability of a correct answer now (0 while a prerequisite is unmet)."""
        return self.skill[category] if self.unlocked(category) else 0.0

    def answer(self, category: str, n: int, rng: random.Random) -> list[float]:
        """n independent 0/1 rewards for answers to one problem of `category`."""
        p = self.success(category)
        return [1.0 if rng.random() < p else 0.0 for _ in range(n)]

    def train(self, category: str) -> None:
        """One problem's worth of learning: nothing while locked, saturated or hopeless."""
        p = self.success(category)
        if p > 0:
            self.skill[category] = min(1.0, p + self.curves[category].rate * p * (1 - p))

    def successes(self) -> dict[str, float]:
        return {c: self.success(c) for c in self.curves}


class SimulationResult(BaseModel):
    """A run's story: per step, problems drawn per category, success per category, and arm values (SEC)."""

    strategy: Strategy
    steps: int
    problems_per_step: int
    categories: list[str]
    drawn: list[dict[str, int]] = Field(default_factory=list)
    success: list[dict[str, float]] = Field(default_factory=list, description="After each step.")
    values: list[dict[str, float]] = Field(
        default_factory=list, description="Arm values after each step (SEC)."
    )
    initial: dict[str, float] = Field(default_factory=dict)

    @property
    def final(self) -> dict[str, float]:
        return self.success[-1] if self.success else self.initial

    @property
    def total_gain(self) -> float:
        """Sum over categories of the rise in success probability: what the run taught."""
        return sum(self.final[c] - self.initial[c] for c in self.categories)

    def shares(self, start: int = 0, stop: int | None = None) -> dict[str, float]:
        """Fraction of problems drawn per category over steps [start, stop)."""
        counts: Counter[str] = Counter()
        for step in self.drawn[start:stop]:
            counts.update(step)
        total = sum(counts.values()) or 1
        return {c: counts[c] / total for c in self.categories}


def default_curves() -> list[CategoryCurve]:
    """Eight categories: two learnable now, two unlocked by them, two saturated, two hopeless."""
    return [
        CategoryCurve(domain="arithmetic", difficulty=1, start=0.97),
        CategoryCurve(domain="logic", difficulty=1, start=0.95),
        CategoryCurve(domain="arithmetic", difficulty=2, start=0.3),
        CategoryCurve(domain="logic", difficulty=2, start=0.25),
        CategoryCurve(domain="arithmetic", difficulty=3, start=0.2, requires=["arithmetic/d2"]),
        CategoryCurve(domain="logic", difficulty=3, start=0.2, requires=["logic/d2", "arithmetic/d2"]),
        CategoryCurve(domain="arithmetic", difficulty=5, start=0.0),
        CategoryCurve(domain="logic", difficulty=5, start=0.0),
    ]


def synthetic_items(curves: list[CategoryCurve], per_category: int = 4) -> list[DataPoint]:
    """Placeholder problems, `per_category` of each category, for a sampler to draw."""
    return [
        DataPoint(
            question=f"{c.category} problem {i}",
            final_answer=str(i),
            domain=c.domain,
            difficulty=c.difficulty,
        )
        for c in curves
        for i in range(per_category)
    ]


async def simulate(
    curves: list[CategoryCurve],
    *,
    strategy: Strategy = "sec",
    steps: int = 120,
    problems_per_step: int = 8,
    group_size: int = 8,
    seed: int = 0,
    config: CurriculumConfig | None = None,
    metrics: MetricsWriter | None = None,
) -> SimulationResult:
    """Train a learner for `steps` batches drawn by SEC, or uniformly over items (the env default).

    With `metrics`, each step is written as an env `step` record, so `loong report` can plot the run.
    """
    if strategy not in ("sec", "uniform"):
        raise ConfigError(f"strategy must be 'sec' or 'uniform', got {strategy!r}")
    learner = SyntheticLearner(curves)
    items = synthetic_items(curves)
    rng = random.Random(seed)
    cfg = (config or CurriculumConfig()).model_copy(update={"group_size": group_size, "seed": seed})
    sampler = CurriculumSampler(items, config=cfg) if strategy == "sec" else None
    result = SimulationResult(
        strategy=strategy,
        steps=steps,
        problems_per_step=problems_per_step,
        categories=[c.category for c in curves],
        initial=learner.successes(),
    )
    for step in range(1, steps + 1):
        if sampler is not None:
            batch = await sampler.draw(problems_per_step * group_size, seed=rng.getrandbits(63))
            problems = batch[::group_size]
        else:
            problems = rng.sample(items, problems_per_step)
        rewards: list[tuple[str, float]] = []
        for dp in problems:
            category = domain_difficulty(dp)
            rewards.extend((dp.id, r) for r in learner.answer(category, group_size, rng))
        if sampler is not None:
            sampler.record_rewards(rewards)
            result.values.append(sampler.values)
        for dp in problems:
            learner.train(domain_difficulty(dp))
        result.drawn.append(dict(Counter(domain_difficulty(dp) for dp in problems)))
        if metrics is not None:
            mean = sum(r for _, r in rewards) / len(rewards)
            metrics.write(
                StepRecord(
                    step=step,
                    answers=len(rewards),
                    reward_mean=mean,
                    correct_rate=mean,
                    drawn=result.drawn[-1],
                    values=sampler.values if sampler else {},
                    probabilities=sampler.probabilities() if sampler else {},
                )
            )
        result.success.append(learner.successes())
    return result


def simulate_sync(curves: list[CategoryCurve], **kwargs: object) -> SimulationResult:
    """Blocking twin of `simulate`; safe inside a running event loop (Jupyter)."""
    return bridge.run(simulate(curves, **kwargs))  # type: ignore[arg-type]
