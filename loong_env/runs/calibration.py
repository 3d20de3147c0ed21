"""The calibration file: one measured pass rate per item, its reader, and the binning into levels.

A calibration run (`loong calibrate`, `loong_env.calibration.calibrate`) asks a policy k times per item and
writes one `ItemCalibration` line per datapoint id to `calibration.jsonl` in its run folder. This module is
the file's format, read by `loong seeds list --calibration`, `loong report` and the dataset card; it lives
in runs/ so those readers need no feature package.

Calibrated difficulty (kept beside the author's 1-5 label, never over it) bins the pass rate p into fifths:

    level = 1 + min(4, floor((1 - p) * 5))       p >= 0.8 -> 1, [0.6, 0.8) -> 2, [0.4, 0.6) -> 3,
                                                  [0.2, 0.4) -> 4, p < 0.2 -> 5

With k = 4 samples the five possible pass rates 1, 3/4, 1/2, 1/4, 0 land on levels 1..5 one each.
"""

from __future__ import annotations

import math
import os
from collections import defaultdict
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from loong_env.errors import NotFoundError
from loong_env.runs.durable import read_jsonl

CALIBRATION = "calibration.jsonl"


def calibrated_difficulty(pass_rate: float) -> int:
    """The 1-5 level of a measured pass rate (fifths, see the module docstring): 1 easiest, 5 hardest."""
    p = min(1.0, max(0.0, float(pass_rate)))
    return 1 + min(4, max(0, math.floor((1.0 - p) * 5 - 1e-9)))  # a rate on a bin edge goes to the easier bin


class ItemCalibration(BaseModel):
    """One item's pass rate under one policy: k samples judged by the env's router."""

    model_config = ConfigDict(extra="ignore")

    id: str = Field(description="The datapoint id (the file's key: one line per id).")
    domain: str
    difficulty: int | None = Field(default=None, description="The author's label, as given (untouched).")
    model: str = Field(description="The policy's model id, as the endpoint named it.")
    samples: int = Field(description="Answers sampled and judged.")
    correct: int = Field(description="Answers judged correct.")
    pass_rate: float = Field(description="Mean reward of the samples (correct / samples for 0/1 rewards).")
    calibrated_difficulty: int = Field(description="pass_rate binned into 1-5 (see calibrated_difficulty).")
    rewards: list[float] = Field(default_factory=list)
    statuses: list[str] = Field(default_factory=list)
    tokens: int = 0


def calibration_path(path: str | os.PathLike[str]) -> Path:
    """A calibration run folder or its calibration.jsonl -> the file's path."""
    target = Path(path)
    return target / CALIBRATION if target.is_dir() else target


def read_calibration(path: str | os.PathLike[str]) -> dict[str, ItemCalibration]:
    """Datapoint id -> its calibration, from a run folder or a calibration.jsonl (complete lines only)."""
    file = calibration_path(path)
    if not file.is_file():
        raise NotFoundError(f"no calibration file at {file} (expected a `loong calibrate --out` folder)")
    return {rec.id: rec for rec in (ItemCalibration.model_validate(r) for r in read_jsonl(file))}


def pass_rates_by_domain(calibration: dict[str, ItemCalibration]) -> dict[str, list[float]]:
    """Domain -> the pass rates of its calibrated items (for distribution plots)."""
    out: dict[str, list[float]] = defaultdict(list)
    for rec in calibration.values():
        out[rec.domain].append(rec.pass_rate)
    return dict(sorted(out.items()))


class DomainCalibration(BaseModel):
    """A domain's calibration at a glance (for `loong seeds list --calibration` and the dataset card)."""

    domain: str
    items: int
    mean_pass_rate: float
    levels: dict[int, int] = Field(description="Items per calibrated level 1-5.")
    same_as_author: int = Field(description="Items whose calibrated level equals the author's label.")
    models: list[str]


def summarize_by_domain(
    calibration: dict[str, ItemCalibration], ids: set[str] | None = None
) -> list[DomainCalibration]:
    """Per domain: calibrated items, mean pass rate, items per level; only `ids` when given."""
    by_domain: dict[str, list[ItemCalibration]] = defaultdict(list)
    for rec in calibration.values():
        if ids is None or rec.id in ids:
            by_domain[rec.domain].append(rec)
    return [
        DomainCalibration(
            domain=domain,
            items=len(recs),
            mean_pass_rate=sum(r.pass_rate for r in recs) / len(recs),
            levels={level: sum(r.calibrated_difficulty == level for r in recs) for level in range(1, 6)},
            same_as_author=sum(r.calibrated_difficulty == r.difficulty for r in recs),
            models=sorted({r.model for r in recs}),
        )
        for domain, recs in sorted(by_domain.items())
    ]


def calibration_fields(datapoint_id: str, calibration: dict[str, ItemCalibration]) -> dict[str, object]:
    """The columns an item gains from a calibration (None when it was not calibrated), e.g. for a card."""
    rec = calibration.get(datapoint_id)
    return {
        "calibrated_difficulty": rec.calibrated_difficulty if rec else None,
        "pass_rate": rec.pass_rate if rec else None,
        "pass_samples": rec.samples if rec else None,
        "calibration_model": rec.model if rec else None,
    }
