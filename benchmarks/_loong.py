"""The Loong sample next to the repo (../shared/loong_sample, never copied here): held-out questions."""

from __future__ import annotations

import json
import random
from pathlib import Path

from loong_env.seeds.dataset import load_seeds
from loong_env.types import DataPoint

SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "loong_sample"
REQS = ("networkx==3.4.2", "numpy==2.2.6", "scipy==1.15.3", "sympy==1.14.0")  # ours, not upstream pins


def held_out(folder: str | Path, limit: int | None = None, seed: int = 0) -> list[tuple[int, DataPoint]]:
    """(record index in the folder's JSON list, record with our package pins), in a seeded draw.

    A record is named by its index, never by its text: the sample is not ours to store."""
    folder = Path(folder)
    (path,) = folder.glob("*.json")
    order = {rec["question"]: i for i, rec in reversed(list(enumerate(json.loads(path.read_text()))))}
    pool = [
        (order[dp.question], dp.model_copy(update={"required_dependencies": list(REQS)}))
        for dp in load_seeds(folder, on_error="skip")
    ]
    random.Random(seed).shuffle(pool)
    return pool[:limit]


def by_id(sources: set[str]) -> dict[str, tuple[int, DataPoint]]:
    """The held-out records of the named sample folders by id (empty when the sample is absent)."""
    found: dict[str, tuple[int, DataPoint]] = {}
    for name in sorted(sources):
        if (SAMPLE / name).is_dir():
            found |= {dp.id: (index, dp) for index, dp in held_out(SAMPLE / name)}
    return found
