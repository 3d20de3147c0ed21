"""The contract every verifier meets, so the env can hold any of them."""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Sequence

from loong_env.types import Tolerance, VerificationResult


class Verifier(ABC):
    """Judges one response against one reference answer; a bad item is a result, never an exception.

    Subclasses implement `averify`; `verify` and `averify_many` come for free. Implementations must be
    safe to call concurrently from one event loop.
    """

    name: str = "verifier"

    @abstractmethod
    async def averify(
        self, response: str, reference: str, *, tolerance: Tolerance | None = None
    ) -> VerificationResult:
        """Verdict on one response, bounded in time."""

    def verify(self, response: str, reference: str, *, tolerance: Tolerance | None = None) -> VerificationResult:
        """Sync form for notebooks and scripts that have no event loop running."""
        return asyncio.run(self.averify(response, reference, tolerance=tolerance))

    async def averify_many(
        self,
        responses: Sequence[str],
        references: Sequence[str],
        *,
        tolerances: Sequence[Tolerance | None] | None = None,
    ) -> list[VerificationResult]:
        """Verdicts in input order; one item's failure never touches another's verdict."""
        if len(responses) != len(references):
            raise ValueError(f"got {len(responses)} responses but {len(references)} references")
        tols = list(tolerances) if tolerances is not None else [None] * len(responses)
        return list(
            await asyncio.gather(
                *(self.averify(r, ref, tolerance=t) for r, ref, t in zip(responses, references, tols, strict=True))
            )
        )
