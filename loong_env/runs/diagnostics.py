"""Whether a step's rewards can teach anything: GRPO groups whose answers all scored the same carry no signal.

A *group* is what the curriculum and GRPO already call one: the answers to one datapoint id within one
step (one `env.step()` call, one TRL reward call, one reward-server batch). This is the one place the
zero-variance fraction is computed; metrics, trainers and the env's filter all read it from here.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence


def reward_groups(pairs: Iterable[tuple[str, float]]) -> dict[str, list[float]]:
    """(datapoint id, reward) pairs of one step -> rewards per datapoint id, in arrival order."""
    groups: dict[str, list[float]] = defaultdict(list)
    for key, reward in pairs:
        groups[key].append(float(reward))
    return dict(groups)


def has_zero_variance(rewards: Sequence[float], *, atol: float = 1e-9) -> bool:
    """A group of two or more answers that all scored the same (its advantages are all zero)."""
    return len(rewards) >= 2 and max(rewards) - min(rewards) <= atol


def zero_variance_fraction(groups: Mapping[str, Sequence[float]]) -> float | None:
    """Of the groups of two or more answers, the fraction whose rewards are all equal (None: no group)."""
    sized = [rewards for rewards in groups.values() if len(rewards) >= 2]
    if not sized:
        return None
    return sum(has_zero_variance(rewards) for rewards in sized) / len(sized)
