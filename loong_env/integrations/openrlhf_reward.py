"""OpenRLHF's reward *file*: `reward_func(queries, prompts, labels)`, so OpenRLHF needs no reward server.

    python -m openrlhf.cli.train_ppo_ray ... --data.label_key label \
        --reward.remote_url "$(python -m loong_env.integrations.openrlhf_reward)"   # prints this file's path

OpenRLHF (0.11) loads a `--reward.remote_url` ending in `.py` as a module and calls its `reward_func` in a
worker thread, one sample at a time (`queries` = [prompt + response], `prompts` = [prompt], `labels` =
[label]). The answer is what `loong serve-reward` sends on `/get_reward`: `rewards` (advantages),
`scores` (0..1, for `--algo.dynamic_filtering_enable`) and numeric `extra_logs`, judged by the same scorer.
"""

from __future__ import annotations

from typing import Any

from loong_env.integrations.reward_models import OpenRLHFRequest
from loong_env.integrations.reward_scoring import RewardScorer

_SCORER: RewardScorer | None = None


def reward_func(
    queries: list[str], prompts: list[str] | None = None, labels: list[Any] | None = None
) -> dict:
    """OpenRLHF's reward answer {"rewards", "scores", "extra_logs"} (lists, like /get_reward); thread-safe."""
    global _SCORER
    if _SCORER is None:
        _SCORER = RewardScorer()
    request = OpenRLHFRequest(query=list(queries), prompts=list(prompts or []), labels=list(labels or []))
    response = _SCORER.score_openrlhf_sync(request)
    return response.model_dump(include={"rewards", "scores", "extra_logs"})


if (
    __name__ == "__main__"
):  # `python -m loong_env.integrations.openrlhf_reward`: the path for --reward.remote_url
    print(__file__)
