"""loong_env: verifiable reasoning problems for RL on LLMs, grown from small hand-checked seeds."""

from __future__ import annotations

from typing import Any

__all__ = ["Action", "DataPoint", "LoongError", "Observation", "SingleStepEnv", "StepResult"]


def __getattr__(name: str) -> Any:  # lazy: `import loong_env` stays light
    if name == "SingleStepEnv":
        from loong_env.env import SingleStepEnv

        return SingleStepEnv
    if name in {"Action", "Observation", "StepResult", "DataPoint"}:
        from loong_env import types

        return getattr(types, name)
    if name == "LoongError":
        from loong_env.errors import LoongError

        return LoongError
    raise AttributeError(f"module 'loong_env' has no attribute {name!r}")


def _register_gym() -> None:
    """`gymnasium.make("loong_env/SingleStep-v0")` works after `import loong_env` (gymnasium has no plug-in hook)."""
    from gymnasium.envs.registration import register, registry

    if "loong_env/SingleStep-v0" not in registry:
        register(id="loong_env/SingleStep-v0", entry_point="loong_env.gym:LoongEnv")


_register_gym()
