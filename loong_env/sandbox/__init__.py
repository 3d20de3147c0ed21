"""Isolated, fast execution of untrusted Python: bubblewrap jails, warm forked workers, cached uv envs.

    from loong_env.sandbox import Sandbox
    async with Sandbox(["sympy==1.14.0"], timeout_s=10) as sb:
        result = await sb.run("import sympy; print(sympy.factor('x**2-1'))")

See docs/sandbox.md for the threat model and what is isolated how.
"""

from loong_env.sandbox.bwrap import SandboxUnavailableError
from loong_env.sandbox.envs import EnvCreationError, cache_root, ensure_env, normalize_requirements
from loong_env.sandbox.pool import Sandbox, SandboxLimits

__all__ = [
    "EnvCreationError",
    "Sandbox",
    "SandboxLimits",
    "SandboxUnavailableError",
    "cache_root",
    "ensure_env",
    "normalize_requirements",
]
