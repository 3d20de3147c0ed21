"""Extra rewards beside correctness, and how a step combines them into one number.

A reward function is `f(response, datapoint, verification) -> float`, sync or async; `format_reward` is
built in. A function that raises scores 0 for that item and its error is kept in the step result, as in
Prime Intellect's `verifiers` rubrics: one bad reward function never fails the batch.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping, Sequence

from loong_env.errors import ConfigError
from loong_env.routing import count_boxes, is_code_response
from loong_env.types import DataPoint, VerificationResult

RewardFn = Callable[[str, DataPoint, VerificationResult], float | Awaitable[float]]


def is_well_formatted(response: str) -> bool:
    """The response commits to exactly one \\boxed{} answer, or is runnable code."""
    return is_code_response(response) or count_boxes(response) == 1


def format_reward(response: str, datapoint: DataPoint, verification: VerificationResult) -> float:
    """Extra reward: 1.0 for a well-formatted answer (one \\boxed{}, or code), else 0.0."""
    return 1.0 if is_well_formatted(response) else 0.0


def named_reward_fns(fns: Mapping[str, RewardFn] | Sequence[RewardFn] | None) -> dict[str, RewardFn]:
    """Extra reward functions by name; 'correctness' is reserved for the verifier's reward."""
    if fns is None:
        return {}
    if isinstance(fns, Mapping):
        named = dict(fns)
    else:
        named = {getattr(f, "__name__", f"reward_{i}"): f for i, f in enumerate(fns)}
    if "correctness" in named:
        raise ConfigError("'correctness' is the verifier's reward; give your reward function another name")
    for name, fn in named.items():
        if not callable(fn):
            raise ConfigError(f"reward function {name!r} is not callable")
    return named


async def score_extras(
    fns: Mapping[str, RewardFn], response: str, datapoint: DataPoint, verification: VerificationResult
) -> tuple[dict[str, float], dict[str, str]]:
    """(rewards, errors) of the extra reward functions for one item; a failing one scores 0."""
    rewards: dict[str, float] = {}
    errors: dict[str, str] = {}
    for name, fn in fns.items():
        try:
            value = fn(response, datapoint, verification)
            if inspect.isawaitable(value):
                value = await value
            rewards[name] = float(value)
        except Exception as exc:  # noqa: BLE001  (a user reward fn failing stays in its item)
            rewards[name] = 0.0
            errors[name] = f"{type(exc).__name__}: {exc}"
    return rewards, errors
