"""What a tool episode is made of, kept exactly as exchanged, and how a batch of them is saved and loaded.

`Episode.messages` is the conversation in OpenAI chat form, byte for byte what the policy sent and what the
env answered, so a trainer can rebuild token-exact trajectories. A batch is saved as JSON Lines, one
episode per line, written atomically.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from loong_env.errors import ConfigError, NotFoundError
from loong_env.types import DataPoint, StepResult, VerificationResult

EPISODE_FORMAT = "loong-tool-episode/1"
# DataPoint.id is computed from its content: written for readers, recomputed (not read back) on load
_COMPUTED: Any = {"datapoint": {"id"}, "result": {"datapoint": {"id"}}}
End = Literal["answer", "max_turns", "max_tool_calls"]


class ToolCallRecord(BaseModel):
    """One call of the python tool in an episode: what ran, how it ended, how long it took."""

    id: str
    turn: int = Field(description="The policy turn (1-based) that made the call.")
    form: str = Field(description="'tool_calls' or 'fenced'.")
    code: str
    status: str = Field(description="Sandbox status (ok, error, timeout, ...), 'malformed' or 'over_budget'.")
    failed: bool
    duration_s: float = 0.0
    truncated: bool = Field(default=False, description="The output shown was cut to the env's limit.")


class Episode(BaseModel):
    """One conversation: the problem, every message exchanged, every tool call, and (once done) its reward."""

    format: str = EPISODE_FORMAT
    index: int
    datapoint: DataPoint = Field(description="The problem, reference included (for logs, not the policy).")
    messages: list[dict[str, Any]] = Field(description="The conversation exactly as exchanged.")
    turns: int = Field(default=0, description="Policy turns taken (nudged turns included).")
    tool_calls: list[ToolCallRecord] = Field(default_factory=list)
    done: bool = False
    end: End | None = Field(default=None, description="Why the episode ended: an answer or a budget.")
    result: StepResult | None = Field(default=None, description="The reward and its parts, once done.")
    metadata: dict[str, Any] = Field(
        default_factory=dict, description="Whatever the driver adds (tokens, seconds, model)."
    )

    @property
    def truncated(self) -> bool:
        """Ended by a budget (max_turns / max_tool_calls) instead of an answer."""
        return self.done and self.end != "answer"

    @property
    def reward(self) -> float:
        """The total reward (0.0 until done)."""
        return self.result.reward if self.result is not None else 0.0

    @property
    def verification(self) -> VerificationResult | None:
        return self.result.verification if self.result is not None else None

    @property
    def calls_run(self) -> int:
        """Calls that ran in the sandbox (malformed and over-budget calls excluded)."""
        return sum(1 for c in self.tool_calls if c.status not in ("malformed", "over_budget"))


class ToolStepResult(BaseModel):
    """What one step() gives back for one episode: the env's reply, and the reward once the episode ends."""

    index: int
    messages: list[dict[str, Any]] = Field(
        description="The messages the env appended after the policy's turn (tool results or a nudge)."
    )
    text: str = Field(description="The same reply as one text observation (for text-only policies).")
    done: bool
    truncated: bool = Field(description="Ended by max_turns or max_tool_calls rather than an answer.")
    reward: float = 0.0
    rewards: dict[str, float] = Field(default_factory=dict, description="Each reward component, once done.")
    end: End | None = None


def save_episodes(path: str | os.PathLike[str], episodes: Iterable[Episode]) -> Path:
    """Write a batch as JSON Lines, atomically: a crash never leaves half a file."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for episode in episodes:
            f.write(episode.model_dump_json(exclude=_COMPUTED) + "\n")
    os.replace(tmp, target)
    return target


def load_episodes(path: str | os.PathLike[str]) -> list[Episode]:
    """Read what `save_episodes` wrote; a bad line names its number."""
    target = Path(path)
    if not target.is_file():
        raise NotFoundError(f"no saved episodes at {target}")
    episodes = []
    for number, line in enumerate(target.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{target}:{number}: not JSON ({exc.msg})") from exc
        if data.get("format") != EPISODE_FORMAT:
            raise ConfigError(f"{target}:{number}: format {data.get('format')!r} is not {EPISODE_FORMAT!r}")
        episodes.append(Episode.model_validate(data))
    return episodes
