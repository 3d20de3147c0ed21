"""Whether a step's rewards can teach anything: GRPO groups whose answers all scored the same carry no signal.

A *group* is what the curriculum and GRPO already call one: the answers to one datapoint id within one
step (one `env.step()` call, one TRL reward call, one reward-server batch). This is the one place the
zero-variance fraction is computed; metrics, trainers and the env's filter all read it from here, and the
one place a step's verdicts are added up (`diagnose`: counts by kind, groups, verifiers, time).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence

from pydantic import BaseModel, ConfigDict, Field


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


# -- a step's verdicts, added up --------------------------------------------------------------------------

VERDICTS = ("correct", "incorrect", "no_answer", "timeout", "error")
_TIMEOUT_WORDS = ("timeout", "timed out")


def verdict_kind(status: str, reason: str = "") -> str:
    """The diagnostic kind of one verdict: its status, with errors that ran out of time told apart."""
    status = str(status)
    if status == "error" and any(word in reason.lower() for word in _TIMEOUT_WORDS):
        return "timeout"
    return status if status in VERDICTS else "error"  # e.g. the reward server's `invalid` item


class ItemOutcome(BaseModel):
    """What a step's diagnostics need of one judged answer (an env StepResult, a TRL row, a server item)."""

    model_config = ConfigDict(frozen=True)

    group: str = Field(description="The datapoint id: answers to one datapoint in one step are a group.")
    reward: float | None = Field(description="None: the item was not rewarded (TRL skips it).")
    status: str
    reason: str = ""
    verifier: str | None = None
    dataset_version: str | None = None


class StepDiagnostics(BaseModel):
    """One step added up: verdict counts, signal-free groups, who judged, which data, how long."""

    answers: int
    reward_mean: float | None = None
    counts: dict[str, int] = Field(
        description="Answers per verdict kind (every kind of VERDICTS, 0 included)."
    )
    groups: int = Field(0, description="Groups of two or more rewarded answers.")
    zero_variance_fraction: float | None = None
    verifiers: dict[str, int] = Field(default_factory=dict, description="Answers judged per verifier name.")
    dataset_versions: dict[str, int] = Field(default_factory=dict)
    seconds: float = 0.0


def diagnose(items: Sequence[ItemOutcome], *, seconds: float = 0.0) -> StepDiagnostics:
    """The diagnostics of one step's judged answers (in any order)."""
    counts = dict.fromkeys(VERDICTS, 0)
    counts.update(Counter(verdict_kind(item.status, item.reason) for item in items))
    rewarded = [(item.group, item.reward) for item in items if item.reward is not None]
    groups = reward_groups(rewarded)
    return StepDiagnostics(
        answers=len(items),
        reward_mean=sum(r for _, r in rewarded) / len(rewarded) if rewarded else None,  # type: ignore[misc]
        counts=counts,
        groups=sum(len(rewards) >= 2 for rewards in groups.values()),
        zero_variance_fraction=zero_variance_fraction(groups),
        verifiers=dict(Counter(item.verifier for item in items if item.verifier)),
        dataset_versions=dict(Counter(item.dataset_version for item in items if item.dataset_version)),
        seconds=seconds,
    )
