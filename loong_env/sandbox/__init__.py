"""Isolated, fast execution of untrusted Python: bubblewrap jails, warm forked workers, cached uv envs.

    from loong_env.sandbox import Sandbox
    async with Sandbox(["sympy==1.14.0"], timeout_s=10) as sb:
        result = await sb.run("import sympy; print(sympy.factor('x**2-1'))")

See docs/sandbox.md for the threat model and what is isolated how.
"""

from loong_env.sandbox.envs import cache_root, ensure_env, normalize_requirements
from loong_env.sandbox.errors import (
    EnvCreationError,
    InstallRefusedError,
    SandboxClosedError,
    SandboxUnavailableError,
)
from loong_env.sandbox.install_policy import InstallPolicy
from loong_env.sandbox.pool import Sandbox, SandboxLimits

__all__ = [
    "EnvCreationError",
    "InstallPolicy",
    "InstallRefusedError",
    "Sandbox",
    "SandboxClosedError",
    "SandboxLimits",
    "SandboxUnavailableError",
    "cache_root",
    "ensure_env",
    "normalize_requirements",
]
