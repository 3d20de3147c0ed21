"""Choosing demonstrations: short items first, as a 0.5B model's context is small and split across slots."""

from __future__ import annotations

import random
from collections.abc import Sequence

from loong_env.types import DataPoint

DEMO_CHAR_LIMIT = 600


def short_enough(items: Sequence[DataPoint], limit: int = DEMO_CHAR_LIMIT) -> list[DataPoint]:
    """Items whose question + code fit in `limit` characters, or all items if none do."""
    fitting = [dp for dp in items if len(dp.question) + len(dp.rationale) <= limit]
    return fitting or list(items)


def pick(rng: random.Random, items: Sequence[DataPoint], k: int) -> list[DataPoint]:
    """k distinct items (fewer if there are fewer), in random order."""
    return rng.sample(list(items), min(k, len(items)))
