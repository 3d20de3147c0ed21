"""The sandbox's errors: what cannot be isolated here, what cannot be installed, and what is refused."""

from __future__ import annotations

from loong_env.errors import LoongError


class SandboxUnavailableError(LoongError, RuntimeError):
    """The requested isolation cannot be provided on this machine; the message says how to fix it."""


class SandboxClosedError(LoongError, RuntimeError):
    """The Sandbox was closed; its workers are gone and it takes no more runs."""


class WorkerGone(LoongError):
    """The worker was dead before it took the request: not the snippet's fault."""


class EnvCreationError(LoongError, RuntimeError):
    """uv could not create the environment; the message carries uv's own output (host paths removed)."""


class InstallRefusedError(EnvCreationError):
    """A requirement set asks for what the installer does not do unless the operator allows it: building a
    source distribution (which runs its build backend on this host) or a direct URL / file reference.

    `setting` names the `[sandbox]` setting of loong.toml that would allow it.
    """

    def __init__(self, message: str, *, requirements: list[str], setting: str) -> None:
        super().__init__(message)
        self.requirements = requirements
        self.setting = setting
