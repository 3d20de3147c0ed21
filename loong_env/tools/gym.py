"""The gymnasium face of ToolEnv: `gymnasium.make("loong_env/Tool-v0", domains=[...])`.

Text in, text out: reset() gives the question; step(text) takes one assistant turn. A turn with a
```python block runs it and the observation is what it printed; a \\boxed{} answer with no block ends the
episode with its reward; anything else gets a nudge. `info["messages"]` is the conversation so far, exactly
as exchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import gymnasium

from loong_env import bridge
from loong_env.env import Source
from loong_env.errors import InvalidActionError, NotResetError
from loong_env.gym import MAX_ANSWER_CHARS, MAX_QUESTION_CHARS, checked_render_mode, gym_source, text_space
from loong_env.tool_env import TOOL_INSTRUCTION, ToolEnv

ENV_ID = "loong_env/Tool-v0"


class LoongToolEnv(gymnasium.Env[str, str]):
    """One problem per episode, several turns: run Python, read its output, then answer in \\boxed{}.

    Args:
        domains: seed domains to draw from (None: every domain under the seeds root).
        source: use this SeedDataset / generator instead of loading seeds.
        seeds_root: where seed folders live.
        step_timeout: seconds one step may take before the call gives up (None: no bound).
        **options: ToolEnv options (max_turns, max_tool_calls, tool_call_cost, failed_call_penalty, ...).
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["ansi"]}

    def __init__(
        self,
        domains: Sequence[str] | str | None = None,
        *,
        source: Source | None = None,
        seeds_root: str | None = None,
        instruction: str | None = TOOL_INSTRUCTION,
        step_timeout: float | None = 300.0,
        render_mode: str | None = None,
        **options: Any,
    ) -> None:
        source = gym_source(domains, source, seeds_root)
        self.render_mode = checked_render_mode(render_mode, self.metadata["render_modes"])
        self.core = ToolEnv(source, instruction=instruction, **options)
        self.step_timeout = step_timeout
        self.observation_space = text_space(MAX_QUESTION_CHARS, min_length=1)
        self.action_space = text_space(MAX_ANSWER_CHARS)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        """Draw a problem; the same seed always gives the same problem."""
        super().reset(seed=seed)
        core_seed = int(self.np_random.integers(0, 2**63 - 1))
        [obs] = bridge.run(self.core.reset(batch_size=1, seed=core_seed), timeout=self.step_timeout)
        info = {"datapoint_id": obs.datapoint_id, "domain": obs.domain, "messages": self._messages()}
        return obs.question, info

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        """One turn: (the env's reply or '' at the end, reward, terminated, truncated, info)."""
        if not self.core.episodes:
            raise NotResetError("step() called before reset(): call env.reset() first")
        if not isinstance(action, str):
            raise InvalidActionError(f"the action is the model's turn as a str, got {type(action).__name__}")
        [result] = bridge.run(self.core.step({0: action}), timeout=self.step_timeout)
        episode = self.core.episodes[0]
        info: dict[str, Any] = {
            "messages": self._messages(),
            "rewards": dict(result.rewards),
            "tool_calls": len(episode.tool_calls),
            "end": result.end,
        }
        if episode.result is not None:
            verification = episode.result.verification
            info |= {
                "status": str(verification.status),
                "extracted": verification.extracted,
                "reason": verification.reason,
                "reference": episode.datapoint.final_answer,
            }
        terminated = result.done and not result.truncated
        return result.text, float(result.reward), terminated, result.truncated, info

    def _messages(self) -> list[dict[str, Any]]:
        return [dict(m) for m in self.core.episodes[0].messages]

    def render(self) -> str | None:
        """ansi: the conversation so far."""
        if self.render_mode != "ansi" or not self.core.episodes:
            return None
        return "\n\n".join(f"[{m['role']}] {m.get('content') or ''}" for m in self.core.episodes[0].messages)
