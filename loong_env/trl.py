"""TRL's reward functions and prompt datasets, kept at their first import path (see `integrations.trl`)."""

from loong_env.integrations.trl import (
    RewardConfig,
    areward_fn,
    completion_text,
    curriculum_prompts,
    format_reward_fn,
    make_async_reward_fn,
    make_reward_fn,
    reward_fn,
    to_grpo_dataset,
)

__all__ = [
    "RewardConfig",
    "areward_fn",
    "completion_text",
    "curriculum_prompts",
    "format_reward_fn",
    "make_async_reward_fn",
    "make_reward_fn",
    "reward_fn",
    "to_grpo_dataset",
]
