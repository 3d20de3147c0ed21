"""The Self-Evolving Curriculum bandit (Chen et al., 2025): which category to train on next.

Each category is an arm of a non-stationary multi-armed bandit. After a batch, an arm's reward is the
batch's learning-gain proxy for that category: the mean absolute advantage |r - mean of its group| of its
answers, where a group is several answers to the same problem (GRPO-style). The arm's value follows it by
TD(0), an exponential moving average with step size `alpha`:

    Q(c) <- Q(c) + alpha * (gain(c) - Q(c))          for every category c answered in the batch

and categories are drawn from the Boltzmann policy P(c) ~ exp(Q(c) / temperature). A category whose
answers all agree (all right: saturated; all wrong: too hard for now) has gain 0, so the draw moves to what
is learnable now, and moves on again once that saturates. The Boltzmann spread keeps every arm drawn now
and then, so a category that becomes learnable later is found.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence

from pydantic import BaseModel, ConfigDict, Field

from loong_env.errors import ConfigError


class CurriculumConfig(BaseModel):
    """The knobs of the curriculum: bandit step size and temperature, batch grouping, generator refills."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    alpha: float = Field(
        0.5, gt=0, le=1, description="TD(0) step size: weight of the newest gain in a value."
    )
    temperature: float = Field(
        0.1, gt=0, description="Boltzmann temperature tau, in units of the gain (<= 0.5 for 0/1 rewards)."
    )
    initial_value: float = Field(0.0, description="Value of an arm before it was ever answered.")
    group_size: int = Field(
        1, ge=1, description="Copies of each drawn problem in a batch, so one step() call holds GRPO groups."
    )
    min_items: int = Field(
        4, ge=1, description="With a CategorySource: a category holding fewer asks for more."
    )
    seed: int | None = Field(0, description="Seeds draws made without their own seed.")


class CurriculumStep(BaseModel):
    """One update of the bandit: what was drawn and answered since the last one, and the values after it."""

    step: int
    drawn: dict[str, int] = Field(
        default_factory=dict, description="Problems drawn per category (not copies)."
    )
    answers: dict[str, int] = Field(default_factory=dict, description="Answers recorded per category.")
    gains: dict[str, float] = Field(
        default_factory=dict, description="Mean |advantage| per answered category."
    )
    mean_reward: float = 0.0
    values: dict[str, float] = Field(default_factory=dict, description="Every arm's value after the update.")


def boltzmann(values: Mapping[str, float], temperature: float) -> dict[str, float]:
    """P(arm) proportional to exp(value / temperature), computed stably."""
    if not values:
        return {}
    top = max(values.values())
    weights = {arm: math.exp((v - top) / temperature) for arm, v in values.items()}
    total = sum(weights.values())
    return {arm: w / total for arm, w in weights.items()}


def category_gains(
    answers: Iterable[tuple[str, str, float]], baselines: Mapping[str, float]
) -> dict[str, float]:
    """Per category, the mean |r - mean of its group| over its answers (category, group id, reward).

    Answers sharing a group id form a group. A lone answer has no siblings: it is compared with its
    category's running mean reward in `baselines` instead, and counts for nothing while there is none.
    """
    groups: dict[tuple[str, str], list[float]] = defaultdict(list)
    for category, group, reward in answers:
        groups[(category, group)].append(float(reward))
    deviations: dict[str, list[float]] = defaultdict(list)
    for (category, _), rewards in groups.items():
        if len(rewards) > 1:
            mean = sum(rewards) / len(rewards)
        elif category in baselines:
            mean = baselines[category]
        else:
            continue
        deviations[category].extend(abs(r - mean) for r in rewards)
    return {c: sum(d) / len(d) for c, d in deviations.items()}


class SECBandit:
    """Arm values by TD(0) on the learning-gain proxy, and Boltzmann draws over them.

    Arms are kept sorted so a draw depends only on the values and the random stream, never on the order
    categories were first seen.
    """

    def __init__(self, arms: Iterable[str], config: CurriculumConfig) -> None:
        self.config = config
        self.values: dict[str, float] = {}
        self.pulls: dict[str, int] = {}
        self.updates: dict[str, int] = {}
        self.reward_means: dict[str, float] = {}
        for arm in arms:
            self.add_arm(arm)

    @property
    def arms(self) -> list[str]:
        return sorted(self.values)

    def add_arm(self, arm: str) -> None:
        """A new category starts at the initial value, never drawn."""
        if arm not in self.values:
            self.values[arm] = self.config.initial_value
            self.pulls[arm] = 0
            self.updates[arm] = 0

    def probabilities(self, arms: Sequence[str] | None = None) -> dict[str, float]:
        """The Boltzmann policy over `arms` (default: all), in sorted order."""
        chosen = sorted(arms) if arms is not None else self.arms
        return boltzmann({a: self.values[a] for a in chosen}, self.config.temperature)

    def choose(self, n: int, rng: random.Random, arms: Sequence[str] | None = None) -> list[str]:
        """n categories drawn independently from the Boltzmann policy over `arms` (default: all)."""
        policy = self.probabilities(arms)
        if not policy:
            raise ConfigError("the curriculum has no category to draw from (no items and no CategorySource)")
        return rng.choices(list(policy), weights=list(policy.values()), k=n)

    def count(self, drawn: Sequence[str]) -> None:
        """Count the problems actually drawn per arm."""
        for arm in drawn:
            self.pulls[arm] += 1

    def update(self, answers: Sequence[tuple[str, str, float]]) -> dict[str, float]:
        """TD(0)-update every answered arm with its gain; returns the gains. Unknown arms are ignored."""
        known = [a for a in answers if a[0] in self.values]
        gains = category_gains(known, self.reward_means)
        alpha = self.config.alpha
        for arm, gain in gains.items():
            self.values[arm] += alpha * (gain - self.values[arm])
            self.updates[arm] += 1
        by_category: dict[str, list[float]] = defaultdict(list)
        for category, _, reward in known:
            by_category[category].append(reward)
        for arm, rewards in by_category.items():  # the baseline of lone answers, updated after it was used
            mean = sum(rewards) / len(rewards)
            old = self.reward_means.get(arm)
            self.reward_means[arm] = mean if old is None else old + alpha * (mean - old)
        return gains

    def state(self) -> dict[str, dict[str, float] | dict[str, int]]:
        """The arms' numbers as plain JSON-able dicts."""
        return {
            "values": dict(self.values),
            "pulls": dict(self.pulls),
            "updates": dict(self.updates),
            "reward_means": dict(self.reward_means),
        }

    def load(self, state: Mapping[str, Mapping[str, float]]) -> None:
        """Restore what `state()` returned (arms named there are added)."""
        for arm in state.get("values", {}):
            self.add_arm(arm)
        self.values.update({k: float(v) for k, v in state.get("values", {}).items()})
        self.pulls.update({k: int(v) for k, v in state.get("pulls", {}).items()})
        self.updates.update({k: int(v) for k, v in state.get("updates", {}).items()})
        self.reward_means = {k: float(v) for k, v in state.get("reward_means", {}).items()}
