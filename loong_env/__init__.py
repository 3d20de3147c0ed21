"""loong_env: verifiable reasoning problems for RL on LLMs, grown from small hand-checked seeds.

    from loong_env import SingleStepEnv, Action, load_seeds
    env = SingleStepEnv(load_seeds("graph_discrete_math"))
    observations = await env.reset(batch_size=8)          # or env.reset_sync(...) without a loop

Async is the core; every coroutine method has a blocking twin named `<name>_sync` (see loong_env.bridge).
"""

from __future__ import annotations

from importlib import import_module
from pathlib import Path
from typing import Any

# public name -> module that defines it; imported on first use so `import loong_env` stays light
_EXPORTS = {
    "SingleStepEnv": "loong_env.env",
    "ToolEnv": "loong_env.tool_env",
    "Action": "loong_env.types",
    "AnswerKey": "loong_env.types",
    "DataPoint": "loong_env.types",
    "Observation": "loong_env.types",
    "StepResult": "loong_env.types",
    "Tolerance": "loong_env.types",
    "VerificationResult": "loong_env.types",
    "LoongError": "loong_env.errors",
    "load_seeds": "loong_env.seeds.dataset",
    "SeedDataset": "loong_env.seeds.dataset",
    "Verifier": "loong_env.verifiers.base",
    "SyncVerifier": "loong_env.verifiers.base",
    "BoxedAnswerVerifier": "loong_env.verifiers.boxed",
    "PythonVerifier": "loong_env.verifiers.python",
    # Prime Intellect `verifiers` finds environments by module name: `vf-eval loong-env` imports this package
    "load_environment": "loong_env.integrations.verifiers_env",
    # ... and verifiers >= 0.4 takes the one Taskset subclass this package's `__all__` exports
    "LoongTaskset": "loong_env.integrations.verifiers_taskset",
}
__all__ = [  # noqa: RUF022 - the order of _EXPORTS, grouped by module
    "SingleStepEnv",
    "ToolEnv",
    "Action",
    "AnswerKey",
    "DataPoint",
    "Observation",
    "StepResult",
    "Tolerance",
    "VerificationResult",
    "LoongError",
    "load_seeds",
    "SeedDataset",
    "Verifier",
    "SyncVerifier",
    "BoxedAnswerVerifier",
    "PythonVerifier",
]


def _has_verifiers_v1() -> bool:
    """`verifiers.v1` is installed (0.4, or 0.3.1's preview), found without importing verifiers."""
    from importlib.util import find_spec

    spec = find_spec("verifiers")
    origin = spec.origin if spec is not None else None
    return origin is not None and (Path(origin).parent / "v1").is_dir()


if _has_verifiers_v1():  # `vf-eval loong-env` (0.4) finds the taskset here
    __all__.append("LoongTaskset")


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'loong_env' has no attribute {name!r}")


def _register_gym() -> None:
    """`gymnasium.make("loong_env/SingleStep-v0")` and `"loong_env/Tool-v0"` work on import."""
    from gymnasium.envs.registration import register, registry

    if "loong_env/SingleStep-v0" not in registry:
        register(id="loong_env/SingleStep-v0", entry_point="loong_env.gym:LoongEnv")
    if "loong_env/Tool-v0" not in registry:
        register(id="loong_env/Tool-v0", entry_point="loong_env.tools.gym:LoongToolEnv")


_register_gym()
