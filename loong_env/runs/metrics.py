"""Live run metrics: a small crash-safe, append-only JSONL writer and the records it writes.

Every generation, validation, CoT or env run can leave `metrics.jsonl` in its run folder while it runs;
`loong report RUN_DIR` turns it into plots and a summary, on a finished, running or killed run. One record
a line, each with `kind` and `t` (unix seconds):

  run    a run (segment) starts: which pipeline, and what it was asked to do
  item   one finished unit of work: a generation attempt, a validated seed, a CoT item
  call   one LLM call or sandbox run: latency, tokens, cost, error kind
  step   one step (an env step(), a TRL reward call, a reward-server batch): mean reward, verdict counts,
         zero-variance groups, verifiers, time, and the curriculum's arm values and draws
  end    the run stopped normally, with its status

Resuming into the same folder appends a new `run` segment. A line is written with one write() and
flushed at once (fsync at most every `fsync_every_s`), so a kill loses at most the line being written;
readers skip a torn last line, and a writer reopening such a file starts on a fresh line.

Wiring a pipeline takes one line per event (the CoT pipeline's way in):

    metrics = MetricsWriter.in_dir(out_dir, run="cot", info={"model": model})
    client = TimedClient(client, metrics)     # every chat() becomes a `call` record (runs.timing)
    metrics.item(ok=kept, outcome="kept" if kept else "rejected", reason=why)
    metrics.close("done")
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Self

from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from loong_env.errors import NotFoundError
from loong_env.runs.diagnostics import ItemOutcome, StepDiagnostics, diagnose

if TYPE_CHECKING:
    from loong_env.types import StepResult

METRICS_FILE = "metrics.jsonl"


class RunRecord(BaseModel):
    """A run (or a resumed segment of one) starts."""

    kind: Literal["run"] = "run"
    t: float = Field(default_factory=time.time)
    run: str = Field(description="generation | validation | cot | env | anything else")
    info: dict[str, Any] = Field(default_factory=dict)


class ItemRecord(BaseModel):
    """One finished unit of work; `ok` is kept / passed, `reason` why not, `error` the kind if it failed."""

    kind: Literal["item"] = "item"
    t: float = Field(default_factory=time.time)
    ok: bool
    outcome: str = Field(description="accepted | rejected | passed | failed | error | ...")
    reason: str | None = None
    error: str | None = Field(default=None, description="Error kind when the item failed by error.")
    tokens: int = Field(0, description="Only when the calls are not recorded: tokens are counted once.")
    seconds: float = 0.0
    domain: str | None = None


class CallRecord(BaseModel):
    """One LLM call or sandbox run."""

    kind: Literal["call"] = "call"
    t: float = Field(default_factory=time.time)
    op: str = Field(description="llm | sandbox")
    seconds: float
    ok: bool = True
    error: str | None = None
    tokens: int = 0
    cost_usd: float | None = None


class StepRecord(BaseModel):
    """One step (env step(), TRL reward call, reward-server batch): diagnostics and the curriculum's view."""

    kind: Literal["step"] = "step"
    t: float = Field(default_factory=time.time)
    step: int
    source: str = Field("env", description="env | trl | reward_server")
    answers: int
    reward_mean: float
    correct_rate: float
    counts: dict[str, int] = Field(default_factory=dict, description="Answers per verdict kind.")
    groups: int = 0
    zero_variance_fraction: float | None = None
    verifiers: dict[str, int] = Field(default_factory=dict)
    dataset_versions: dict[str, int] = Field(default_factory=dict)
    seconds: float = 0.0
    values: dict[str, float] = Field(default_factory=dict)
    probabilities: dict[str, float] = Field(default_factory=dict)
    drawn: dict[str, int] = Field(default_factory=dict)
    gains: dict[str, float] = Field(default_factory=dict)

    @classmethod
    def from_results(
        cls, step: int, results: Sequence[StepResult], *, seconds: float = 0.0, **curriculum: Any
    ) -> StepRecord:
        """The record of one env step; the caller adds what its curriculum learned (values, drawn, ...)."""
        items = [
            ItemOutcome(
                group=r.datapoint.id,
                reward=r.reward,
                status=r.verification.status.value,
                reason=r.verification.reason,
                verifier=r.verifier,
                dataset_version=r.dataset_version,
            )
            for r in results
        ]
        return cls.from_diagnostics(step, diagnose(items, seconds=seconds), source="env", **curriculum)

    @classmethod
    def from_diagnostics(
        cls, step: int, diagnostics: StepDiagnostics, *, source: str, **curriculum: Any
    ) -> StepRecord:
        """The record of one step's diagnostics (`loong_env.runs.diagnostics.diagnose`)."""
        n = diagnostics.answers
        return cls(
            step=step,
            source=source,
            answers=n,
            reward_mean=diagnostics.reward_mean or 0.0,
            correct_rate=diagnostics.counts.get("correct", 0) / n if n else 0.0,
            **diagnostics.model_dump(exclude={"answers", "reward_mean"}),
            **curriculum,
        )


class EndRecord(BaseModel):
    """The run stopped normally (a killed run has none)."""

    kind: Literal["end"] = "end"
    t: float = Field(default_factory=time.time)
    status: str
    info: dict[str, Any] = Field(default_factory=dict)


MetricRecord = Annotated[
    RunRecord | ItemRecord | CallRecord | StepRecord | EndRecord, Field(discriminator="kind")
]
_RECORD = TypeAdapter(MetricRecord)
Listener = Callable[[MetricRecord], None]


def metrics_path(location: str | os.PathLike[str]) -> Path:
    """`location` itself when it names a .jsonl file, else `location/metrics.jsonl` (a run folder)."""
    path = Path(location)
    return path if path.suffix == ".jsonl" else path / METRICS_FILE


class MetricsWriter:
    """Appends metric records to one JSONL file; safe to share between tasks and threads.

    Args:
        path: the .jsonl file (its folder is created).
        run: what kind of run this is (generation, validation, cot, env).
        info: what the run was asked to do; stored in its `run` record.
        on_record: called with every record after it is written (a live display's feed).
        fsync_every_s: durability against power loss; every line is flushed to the OS at once anyway.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        run: str,
        info: Mapping[str, Any] | None = None,
        on_record: Listener | None = None,
        fsync_every_s: float = 1.0,
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.on_record = on_record
        self.fsync_every_s = fsync_every_s
        self._lock = threading.Lock()
        self._fd: int | None = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._last_sync = time.monotonic()
        if _ends_torn(self.path):  # a killed writer left half a line: start ours on a fresh one
            os.write(self._fd, b"\n")
        self.write(RunRecord(run=run, info=dict(info or {})))

    @classmethod
    def in_dir(cls, run_dir: str | os.PathLike[str], *, run: str, **kwargs: Any) -> MetricsWriter:
        """A writer on `run_dir/metrics.jsonl` (or on `run_dir` itself if it is a .jsonl path)."""
        return cls(metrics_path(run_dir), run=run, **kwargs)

    @property
    def closed(self) -> bool:
        return self._fd is None

    def write(self, record: BaseModel) -> None:
        """Append one record as one line; a closed writer drops records silently (a run is ending)."""
        line = (record.model_dump_json() + "\n").encode("utf-8")
        with self._lock:
            if self._fd is None:
                return
            os.write(self._fd, line)
            if time.monotonic() - self._last_sync >= self.fsync_every_s:
                os.fsync(self._fd)
                self._last_sync = time.monotonic()
        if self.on_record is not None:
            self.on_record(record)  # type: ignore[arg-type]

    def item(self, *, ok: bool, outcome: str | None = None, **fields: Any) -> None:
        """Record one finished unit of work (see ItemRecord for the fields)."""
        self.write(ItemRecord(ok=ok, outcome=outcome or ("ok" if ok else "failed"), **fields))

    def call(self, op: str, seconds: float, **fields: Any) -> None:
        """Record one LLM call or sandbox run (see CallRecord for the fields)."""
        self.write(CallRecord(op=op, seconds=seconds, **fields))

    def close(self, status: str = "done", **info: Any) -> None:
        """Write the `end` record and close the file; later calls do nothing."""
        if self._fd is None:
            return
        self.write(EndRecord(status=status, info=info))
        with self._lock:
            fd, self._fd = self._fd, None
        if fd is not None:
            os.fsync(fd)
            os.close(fd)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        if exc_type is None:
            self.close("done")
            return
        status = "interrupted" if issubclass(exc_type, KeyboardInterrupt) else "error"
        self.close(status, error=exc_type.__name__)


def _ends_torn(path: Path) -> bool:
    size = path.stat().st_size
    if size == 0:
        return False
    with path.open("rb") as fh:
        fh.seek(size - 1)
        return fh.read(1) != b"\n"


class MetricsLog(BaseModel):
    """What a metrics file holds: its records in order, and how many lines could not be read."""

    path: Path
    records: list[MetricRecord]
    skipped: int = Field(0, description="Torn or unknown lines left out (a killed writer's last line).")


def read_metrics(location: str | os.PathLike[str]) -> MetricsLog:
    """Every readable record of a metrics file or run folder; never modifies the file (it may be live)."""
    path = metrics_path(location)
    if not path.is_file():
        raise NotFoundError(
            f"no metrics at {path} (a run folder holds {METRICS_FILE} once a run has started)"
        )
    records: list[MetricRecord] = []
    skipped = 0
    for raw in path.read_bytes().split(b"\n"):
        if not raw.strip():
            continue
        try:
            records.append(_RECORD.validate_python(json.loads(raw)))
        except (json.JSONDecodeError, UnicodeDecodeError, ValidationError):
            skipped += 1
    return MetricsLog(path=path, records=records, skipped=skipped)
