"""The machinery of ToolEnv (loong_env.tool_env): reading tool calls, the python tool, episodes, rollouts.

    from loong_env.tool_env import ToolEnv
    env = ToolEnv(load_seeds("physics"), max_turns=6, max_tool_calls=4)

`calls` reads a policy's turn (OpenAI `tool_calls` or a fenced ```python block), `python_tool` runs one
call in the shared sandbox and words its result, `episode` holds what was exchanged (and saves/loads it),
`rollout` drives an LLMClient through the env, `gym` is the gymnasium face.
"""

from loong_env.tools.calls import PYTHON_TOOL, ToolCall, Turn, TurnKind, parse_turn
from loong_env.tools.episode import Episode, ToolCallRecord, ToolStepResult, load_episodes, save_episodes

__all__ = [
    "PYTHON_TOOL",
    "Episode",
    "ToolCall",
    "ToolCallRecord",
    "ToolStepResult",
    "Turn",
    "TurnKind",
    "load_episodes",
    "parse_turn",
    "save_episodes",
]
