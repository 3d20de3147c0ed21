"""Crash-safe run directories: what was written survives kill -9, and a re-run resumes where it stopped.

The primitives every run folder uses (generation output, the CoT pipeline's output):
  - `RunDirectory.open()` takes an exclusive lock (`.lock`, flock) so two runs never write one folder;
  - `JsonlLog` appends one JSON record per line with write + flush + fsync, and on open cuts a torn last
    line (a kill in the middle of a write) so every line left is complete;
  - `write_json_atomic` replaces a small JSON file (a manifest) with tmp + fsync + rename: readers see the
    old or the new file, never a torn one;
  - `read_jsonl` reads complete lines without repairing anything (for readers while a run is going).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Self

from pydantic import BaseModel, Field

from loong_env.errors import LoongError

LOCK = ".lock"


class OutputError(LoongError):
    """An output directory cannot be used as asked (another run holds it, or it belongs to another job)."""


def fsync_dir(path: Path) -> None:
    """Make a directory's entries (new files, renames) durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def repair_jsonl(path: Path, each: Callable[[dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
    """Records of a JSONL file; a torn tail (no final newline, or an unparsable last line) is cut away.

    With `each`, every record goes to it as it is read and none are kept (a large file is streamed).
    """
    if not path.exists():
        return []
    records: list[dict[str, Any]] = []
    take = records.append if each is None else each
    keep = 0  # bytes of complete, readable lines
    with path.open("rb") as fh:
        for raw in fh:
            if not raw.endswith(b"\n"):
                break  # never completed
            try:
                record = json.loads(raw)
            except json.JSONDecodeError:
                break  # a garbled line can only be the last one written before a crash; cut from here
            take(record)
            keep += len(raw)
    if keep != path.stat().st_size:
        with path.open("r+b") as fh:
            fh.truncate(keep)
            fh.flush()
            os.fsync(fh.fileno())
    return records


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The complete lines of a JSONL file as dicts, read-only (a torn last line is ignored, not cut)."""
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines(keepends=True):
        if not line.endswith("\n"):
            break
        out.append(json.loads(line))
    return out


def write_json_atomic(path: Path, data: BaseModel | str) -> None:
    """Replace `path` atomically with a model's JSON (or a ready string): tmp + fsync + rename + dir fsync."""
    text = data if isinstance(data, str) else data.model_dump_json(indent=2)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


class RunEntry(BaseModel):
    """One invocation against a run directory, as its manifest lists it (each kind of run adds its counts)."""

    started_at: float = Field(default_factory=time.time)
    ended_at: float | None = None
    model: str | None = None
    status: str = "running"  # running until closed; `killed` when a later open finds it still running
    tokens: int = 0

    def finish(self, status: str) -> None:
        """Close the entry with the run's final status."""
        self.status = status
        self.ended_at = time.time()


def mark_killed(runs: list[Any]) -> None:
    """Runs still marked running when a directory is opened again never closed: they were killed."""
    for run in runs:
        if run.status == "running":
            run.status = "killed"


class JsonlLog:
    """One append-only JSONL file: repaired on open, one durable line per `append`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh: Any = None

    def open(self, each: Callable[[dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
        """Cut a torn tail, open for appending, and return the records already there (or stream them to
        `each`, keeping none)."""
        records = repair_jsonl(self.path, each)
        self._fh = self.path.open("a", encoding="utf-8")
        return records

    def append(self, record: dict[str, Any]) -> None:
        """Write one record as one line and make it durable before returning."""
        if self._fh is None:
            raise OutputError(f"{self.path} is not open for writing: call open() first")
        self._fh.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


class RunDirectory:
    """An output directory held by one run: created if needed, locked exclusively until `close()`."""

    def __init__(self, path: str | os.PathLike[str], *, command: str = "run") -> None:
        self.path = Path(path)
        self.command = command
        self._lock_fh: Any = None

    def open(self) -> Self:
        """Create and lock the directory; raises OutputError if another process holds it."""
        self.path.mkdir(parents=True, exist_ok=True)
        self._lock_fh = (self.path / LOCK).open("a")
        try:
            fcntl.flock(self._lock_fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            self._lock_fh.close()
            self._lock_fh = None
            raise OutputError(
                f"{self.path} is in use by another `{self.command}` run (lock {self.path / LOCK})"
            ) from exc
        return self

    def log(self, name: str) -> JsonlLog:
        """A JSONL file in this directory (call `.open()` on it to repair and append)."""
        return JsonlLog(self.path / name)

    def close(self) -> None:
        """Release the lock."""
        if self._lock_fh is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._lock_fh, fcntl.LOCK_UN)
            self._lock_fh.close()
            self._lock_fh = None
