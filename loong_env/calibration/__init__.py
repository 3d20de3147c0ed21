"""Difficulty measured against a policy: per-item pass rates of k sampled answers judged by the env's router.

    from loong_env.calibration import calibrate
    summary = await calibrate(load_seeds("logic"), out="runs/cal", k=4)     # `loong calibrate` does this
    read_calibration("runs/cal")  # id -> ItemCalibration (pass rate, samples, model, calibrated level)

Rooms: `run` (the resumable, crash-safe calibration run). The file's format, reader and the binning of a pass
rate into a 1-5 level are `loong_env.runs.calibration`'s, so report code reads it without this package; the
running pass rates the env keeps during training are `loong_env.curriculum.pass_rates`.
"""

from loong_env.calibration.run import (
    CalibrationConfig,
    CalibrationManifest,
    CalibrationSummary,
    calibrate,
    calibrate_sync,
)
from loong_env.runs.calibration import ItemCalibration, calibrated_difficulty, read_calibration

__all__ = [
    "CalibrationConfig",
    "CalibrationManifest",
    "CalibrationSummary",
    "ItemCalibration",
    "calibrate",
    "calibrate_sync",
    "calibrated_difficulty",
    "read_calibration",
]
