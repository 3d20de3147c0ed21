"""StaticGenerator: serves the seeds themselves, so an env can run before any generation happens."""

from __future__ import annotations

import random
from collections.abc import Sequence

from loong_env.generators.base import BaseGenerator, GenerationError
from loong_env.types import DataPoint


class StaticGenerator(BaseGenerator):
    """Seeds in a seeded shuffled order, reshuffled after each full pass (every seed once per pass)."""

    name = "static"

    def __init__(self, seeds: Sequence[DataPoint], *, seed: int | None = 0, buffer_size: int = 4) -> None:
        super().__init__(seed=seed, buffer_size=buffer_size)
        if not seeds:
            raise GenerationError("StaticGenerator needs at least one seed, got none")
        self.seeds = list(seeds)
        self._rng = random.Random(seed)
        self._order: list[int] = []

    def _next(self) -> DataPoint:
        if not self._order:
            self._order = list(range(len(self.seeds)))
            self._rng.shuffle(self._order)
        return self.seeds[self._order.pop()]

    async def generate(self, n: int) -> list[DataPoint]:
        """The next n seeds of the shuffled stream."""
        return [self._next() for _ in range(n)]

    async def sample(self) -> DataPoint:
        """One seed; no buffer needed since nothing is computed."""
        return self._next()
