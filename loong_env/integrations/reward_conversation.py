"""The reward server's conversation route: a finished ToolEnv-style conversation, its final answer judged
by the same scorer as `/v1/score`, plus the tool env's shaping terms (docs/tool_env.md).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from loong_env.integrations.reward_models import ItemScore, ScoreItem, ScoreRequest
from loong_env.integrations.reward_scoring import RewardScorer
from loong_env.tools.scoring import read_conversation, shaping
from loong_env.types import Tolerance


class ConversationRequest(BaseModel):
    """One finished conversation in OpenAI chat form and what its answer is judged against."""

    model_config = ConfigDict(extra="forbid")

    messages: list[dict[str, Any]] = Field(min_length=1, description="The conversation, as exchanged.")
    reference: str | int | float
    domain: str | None = None
    tolerance: Tolerance | float | None = None
    tool_call_cost: float = Field(default=0.0, ge=0, description="Subtracted per tool call made.")
    failed_call_penalty: float = Field(default=0.0, ge=0, description="Subtracted per failed tool call.")


class ConversationScore(BaseModel):
    """The reward of a conversation, each component apart, and the verdict on its final answer."""

    reward: float
    rewards: dict[str, float] = Field(description="correctness, tool_calls, failed_calls.")
    answered: bool = Field(description="The last assistant turn was an answer (\\boxed{}, no call).")
    tool_calls: int
    failed_calls: int
    verdict: ItemScore


async def score_conversation(scorer: RewardScorer, request: ConversationRequest) -> ConversationScore:
    """Judge the conversation's final answer with `scorer` (its bounds apply) and add the shaping terms."""
    facts = read_conversation(request.messages)
    item = ScoreItem(
        response=facts.answer or "",
        reference=request.reference,
        domain=request.domain,
        tolerance=request.tolerance,
    )
    [verdict] = (await scorer.score(ScoreRequest(items=[item], format_weight=0.0))).results
    rewards = {
        "correctness": verdict.correctness,
        **shaping(
            facts.tool_calls,
            facts.failed_calls,
            cost=request.tool_call_cost,
            penalty=request.failed_call_penalty,
        ),
    }
    return ConversationScore(
        reward=sum(rewards.values()),
        rewards=rewards,
        answered=facts.answer is not None,
        tool_calls=facts.tool_calls,
        failed_calls=facts.failed_calls,
        verdict=verdict,
    )
