"""TRL's reward functions and prompt datasets, kept at their first import path (see `integrations.trl`)."""

from loong_env.integrations.trl import (
    RewardConfig,
    completion_text,
    curriculum_prompts,
    format_reward_fn,
    make_async_reward_fn,
    make_reward_fn,
    to_grpo_dataset,
)

__all__ = [
    "RewardConfig",
    "completion_text",
    "curriculum_prompts",
    "format_reward_fn",
    "make_async_reward_fn",
    "make_reward_fn",
    "to_grpo_dataset",
]
