"""The contract every verifier meets, so the env, trainers' reward functions and plug-ins hold any of them.

Async is the core: `verify` is a coroutine and `verify_sync` its blocking twin through `loong_env.bridge`.
A verifier whose work is plain CPU (most are) subclasses `SyncVerifier` and writes `verify_sync` only; the
base gives it the async face by running it in a thread. The direction is one way per class: async verifiers
get their sync face from the bridge, sync verifiers their async face from a thread.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Sequence

from loong_env import bridge
from loong_env.errors import ConfigError
from loong_env.types import Tolerance, VerificationResult


def _package_version() -> str:
    """loong_env's installed version: the default version of its verifiers."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"loong-env {version('loong-env')}"
    except PackageNotFoundError:
        return "loong-env (source)"


LOONG_VERSION = _package_version()


class Verifier(ABC):
    """Judges one response against one reference answer; a bad item is a result, never an exception.

    Subclasses implement `verify` (async). Implementations must be safe to call concurrently from one
    event loop. Give the class a `name` and a `version` (bump it when verdicts change): step results and
    logs carry both.
    """

    name: str = "verifier"
    version: str = LOONG_VERSION

    @abstractmethod
    async def verify(
        self, response: str, reference: str, *, tolerance: Tolerance | None = None
    ) -> VerificationResult:
        """Verdict on one response, bounded in time."""

    def verify_sync(
        self, response: str, reference: str, *, tolerance: Tolerance | None = None
    ) -> VerificationResult:
        """Blocking twin of `verify` for scripts and notebooks; safe inside a running event loop."""
        return bridge.run(self.verify(response, reference, tolerance=tolerance))

    async def verify_many(
        self,
        responses: Sequence[str],
        references: Sequence[str],
        *,
        tolerances: Sequence[Tolerance | None] | None = None,
    ) -> list[VerificationResult]:
        """Verdicts in input order; one item's failure never touches another's verdict."""
        if len(responses) != len(references):
            raise ConfigError(f"got {len(responses)} responses but {len(references)} references")
        tols = list(tolerances) if tolerances is not None else [None] * len(responses)
        pairs = zip(responses, references, tols, strict=True)
        return list(await asyncio.gather(*(self.verify(r, ref, tolerance=t) for r, ref, t in pairs)))

    async def start(self) -> None:
        """Pay start-up costs (worker pools, registries) now, so the first real check is not an outlier."""

    def start_sync(self) -> None:
        """Blocking twin of `start`."""
        bridge.run(self.start())


class SyncVerifier(Verifier):
    """A verifier whose check is plain blocking work: write `verify_sync`; `verify` runs it in a thread."""

    @abstractmethod
    def verify_sync(
        self, response: str, reference: str, *, tolerance: Tolerance | None = None
    ) -> VerificationResult:
        """Verdict on one response; a plain call, safe from any thread."""

    async def verify(
        self, response: str, reference: str, *, tolerance: Tolerance | None = None
    ) -> VerificationResult:
        """The same verdict without blocking the event loop."""
        return await asyncio.to_thread(self.verify_sync, response, reference, tolerance=tolerance)
