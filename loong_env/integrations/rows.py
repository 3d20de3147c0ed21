"""Problems for trainer datasets: n questions drawn like `env.reset(seed=...)`, each with its answer key."""

from __future__ import annotations

from loong_env import bridge
from loong_env.env import BOXED_INSTRUCTION, SingleStepEnv, Source
from loong_env.errors import ConfigError
from loong_env.types import AnswerKey, DataPoint


def draw_keyed(
    source: Source, n: int, *, seed: int = 0, instruction: str | None = BOXED_INSTRUCTION
) -> list[tuple[str, AnswerKey, DataPoint]]:
    """(question as the policy sees it, answer key, datapoint) for n draws; the same seed gives the same rows."""
    if n < 1:
        raise ConfigError(f"n must be >= 1, got {n}")
    env = SingleStepEnv(source, route=False, instruction=instruction)
    observations = bridge.run(env.reset(batch_size=n, seed=seed))
    return [(obs.question, env.router.key(dp), dp) for obs, dp in zip(observations, env.datapoints, strict=True)]
