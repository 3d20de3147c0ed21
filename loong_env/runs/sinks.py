"""Where a run's step records go: one small interface (`write(record)`, `close()`), many destinations.

`MetricsWriter` (the run's `metrics.jsonl`) already is a sink; `TrackioSink` and `WandbSink` send each
`step` record's numbers to trackio (local-first: a SQLite file under `$TRACKIO_DIR`, its dashboard with
`trackio show`) or Weights & Biases; `Sinks` fans out to several. `open_sinks` builds the usual set:

    sinks = open_sinks("runs/rl", project="loong-grpo")    # metrics.jsonl + trackio/W&B when installed
    env = SingleStepEnv(seeds, metrics=sinks)               # or make_reward_fn(metrics=sinks) for TRL
    ...
    sinks.close()

Trackers get flat scalars named `loong/...` (`step_scalars`), the same numbers `loong report` plots.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from importlib.util import find_spec
from typing import Any, Protocol, Self, runtime_checkable

from pydantic import BaseModel

from loong_env.errors import ConfigError
from loong_env.runs.metrics import MetricsWriter, StepRecord

PREFIX = "loong/"


@runtime_checkable
class Sink(Protocol):
    """Takes a run's records one at a time (a `MetricsWriter` is one)."""

    def write(self, record: BaseModel) -> None: ...

    def close(self, status: str = "done") -> None: ...


def step_scalars(record: StepRecord) -> dict[str, float]:
    """A step record as flat numbers for a tracker: reward, counts by verdict, zero-variance, time."""
    out: dict[str, float] = {
        f"{PREFIX}reward_mean": record.reward_mean,
        f"{PREFIX}correct_rate": record.correct_rate,
        f"{PREFIX}answers": float(record.answers),
        f"{PREFIX}seconds": record.seconds,
    }
    if record.zero_variance_fraction is not None:
        out[f"{PREFIX}zero_variance_fraction"] = record.zero_variance_fraction
    for kind, count in record.counts.items():
        out[f"{PREFIX}count/{kind}"] = float(count)
    for name, count in record.verifiers.items():
        out[f"{PREFIX}verifier/{name}"] = float(count)
    return out


class TrackioSink:
    """Each `step` record's scalars to a trackio run (local unless trackio is pointed at a Space)."""

    def __init__(self, project: str, *, name: str | None = None, config: Mapping[str, Any] | None = None):
        import trackio

        self._trackio = trackio
        self.run = trackio.init(
            project=project,
            name=name,
            config=dict(config or {}),
            embed=False,
            auto_log_cpu=False,
            auto_log_gpu=False,
        )
        self._open = True

    def write(self, record: BaseModel) -> None:
        """Log a step record (other records are the metrics file's business)."""
        if self._open and isinstance(record, StepRecord):
            self.run.log(step_scalars(record), step=record.step)

    def close(self, status: str = "done") -> None:
        """Finish the trackio run (flushes its pending logs); later calls do nothing."""
        if self._open:
            self._open = False
            self.run.finish()


class WandbSink:
    """Each `step` record's scalars to a Weights & Biases run (its own settings: WANDB_MODE, login...)."""

    def __init__(self, project: str, *, name: str | None = None, config: Mapping[str, Any] | None = None):
        import wandb

        self.run = wandb.init(project=project, name=name, config=dict(config or {}))
        self._open = True

    def write(self, record: BaseModel) -> None:
        """Log a step record's scalars at its step."""
        if self._open and isinstance(record, StepRecord):
            self.run.log(step_scalars(record), step=record.step)

    def close(self, status: str = "done") -> None:
        """Finish the W&B run; later calls do nothing."""
        if self._open:
            self._open = False
            self.run.finish(exit_code=0 if status == "done" else 1)


class Sinks:
    """Several sinks as one: each record goes to every sink, in order."""

    def __init__(self, sinks: Iterable[Sink]) -> None:
        self.sinks: list[Sink] = list(sinks)

    def write(self, record: BaseModel) -> None:
        """Hand the record to every sink."""
        for sink in self.sinks:
            sink.write(record)

    def close(self, status: str = "done") -> None:
        """Close every sink (the metrics file writes its `end` record)."""
        for sink in self.sinks:
            sink.close(status)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        self.close("done" if exc_type is None else "error")


def open_sinks(
    run_dir: str | os.PathLike[str] | None = None,
    *,
    run: str = "env",
    project: str | None = None,
    name: str | None = None,
    trackers: Sequence[str] = ("trackio", "wandb"),
    info: Mapping[str, Any] | None = None,
) -> Sinks:
    """The run's metrics file (when `run_dir` is given) plus each named tracker that is installed, logging
    to `project` (no project: no tracker). W&B is skipped unless `WANDB_PROJECT` or `project` is set."""
    sinks: list[Sink] = []
    if run_dir is not None:
        sinks.append(MetricsWriter.in_dir(run_dir, run=run, info=info))
    project = project or os.environ.get("LOONG_TRACKER_PROJECT")
    for tracker in trackers:
        if tracker == "trackio" and project and find_spec("trackio") is not None:
            sinks.append(TrackioSink(project, name=name, config=info))
        elif tracker == "wandb" and (project or os.environ.get("WANDB_PROJECT")) and find_spec("wandb"):
            sinks.append(WandbSink(project or os.environ["WANDB_PROJECT"], name=name, config=info))
        elif tracker not in ("trackio", "wandb"):
            raise ConfigError(f"unknown tracker {tracker!r}; expected 'trackio' or 'wandb'")
    return Sinks(sinks)
