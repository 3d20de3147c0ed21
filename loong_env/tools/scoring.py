"""Reading a finished tool conversation: its final answer, how many calls it made, how many failed; and the
shaping terms those counts earn. One reading for ToolEnv.score (replay) and the reward server.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, Field

from loong_env.tools.calls import TurnKind, parse_turn
from loong_env.tools.python_tool import FAILED_PREFIX


class ConversationFacts(BaseModel):
    """What a finished conversation says, read by the ToolEnv turn rule."""

    answer: str | None = Field(description="The last assistant turn when it is an answer (boxed, no call).")
    tool_calls: int = Field(description="Calls the assistant turns asked for (tool_calls, or python blocks).")
    failed_calls: int = Field(
        description="The env's observations that start a failed call (`[python] failed`)."
    )


def read_conversation(messages: Sequence[Mapping[str, Any]]) -> ConversationFacts:
    """The facts of a conversation in OpenAI chat form (never raises on odd messages)."""
    assistant = [m for m in messages if isinstance(m, Mapping) and m.get("role") == "assistant"]
    turns = [parse_turn(m) for m in assistant]
    replies = [
        str(m.get("content") or "")
        for m in messages
        if isinstance(m, Mapping) and m.get("role") in ("tool", "user")
    ]
    last = turns[-1] if turns else None
    return ConversationFacts(
        answer=last.content if last is not None and last.kind is TurnKind.answer else None,
        tool_calls=sum(len(t.calls) for t in turns),
        failed_calls=sum(r.count(FAILED_PREFIX) for r in replies),
    )


def shaping(tool_calls: int, failed_calls: int, *, cost: float, penalty: float) -> dict[str, float]:
    """The shaping reward components: -cost per call made, -penalty per failed call."""
    return {"tool_calls": -cost * tool_calls, "failed_calls": -penalty * failed_calls}
