"""Problems for trainer datasets: n questions drawn like `env.reset(seed=...)`, each with its answer key."""

from __future__ import annotations

from typing import TYPE_CHECKING

from loong_env import bridge
from loong_env.env import BOXED_INSTRUCTION, SingleStepEnv, Source
from loong_env.errors import ConfigError
from loong_env.types import AnswerKey, DataPoint, Observation

if TYPE_CHECKING:
    from loong_env.curriculum import CurriculumSampler

Keyed = tuple[str, AnswerKey, DataPoint]


def keyed(env: SingleStepEnv, observations: list[Observation]) -> list[Keyed]:
    """(question as the policy sees it, answer key, datapoint) for each item of the env's current batch."""
    return [
        (obs.question, env.router.key(dp), dp) for obs, dp in zip(observations, env.datapoints, strict=True)
    ]


def draw_keyed(
    source: Source,
    n: int,
    *,
    seed: int = 0,
    instruction: str | None = BOXED_INSTRUCTION,
    sampler: CurriculumSampler | None = None,
) -> list[Keyed]:
    """n draws as (question, answer key, datapoint); the same seed and curriculum state give the same rows."""
    if n < 1:
        raise ConfigError(f"n must be >= 1, got {n}")
    env = SingleStepEnv(source, route=False, instruction=instruction, sampler=sampler)
    return keyed(env, bridge.run(env.reset(batch_size=n, seed=seed)))
