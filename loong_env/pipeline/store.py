"""The CoT pipeline's output directory: one durable line per finished problem, resumable after kill -9.

Layout:
  results.jsonl   one ProblemResult per finished problem, in order of completion (`index` gives input order)
  failed.jsonl    one ProblemFailure per problem that could not be finished (it is tried again on resume)
  manifest.json   settings, counts, run history and the last RunStats, replaced atomically
The lock, durable appends, torn-tail repair and atomic manifest are loong_env.runs.durable's (shared with the
generators' output). A problem is done when its id has a line in results.jsonl: a re-run skips it, and the
store refuses to write a second line for it, so nothing is lost and nothing is duplicated.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Self

from pydantic import BaseModel, Field

from loong_env.pipeline.records import Outcome, ProblemFailure, ProblemResult
from loong_env.runs.durable import (
    OutputError,
    RunDirectory,
    RunEntry,
    mark_killed,
    read_jsonl,
    write_json_atomic,
)

RESULTS = "results.jsonl"
FAILED = "failed.jsonl"
MANIFEST = "manifest.json"


class CoTRun(RunEntry):
    """One invocation against the directory (status: done | interrupted | killed)."""

    done: int = 0
    failed: int = 0


class CoTManifest(BaseModel):
    """Summary of a CoT output directory; `done` always equals the line count of results.jsonl."""

    version: int = 1
    settings: dict[str, Any] = Field(description="What results depend on; a resume must match it.")
    done: int = 0
    failures_logged: int = 0
    tokens: int = 0
    updated_at: float = 0.0
    runs: list[CoTRun] = Field(default_factory=list)
    stats: dict[str, Any] | None = Field(default=None, description="The latest RunStats snapshot.")


class CoTStore:
    """Owns one output directory for one run: lock, resume state, durable appends, atomic manifest."""

    def __init__(self, out_dir: str | os.PathLike[str]) -> None:
        self.dir = Path(out_dir)
        self._folder = RunDirectory(self.dir, command="loong cot")
        self._results = self._folder.log(RESULTS)
        self._failed = self._folder.log(FAILED)
        self.done_ids: set[str] = set()
        self.existing: list[ProblemResult] = []
        self.manifest: CoTManifest | None = None
        self._run: CoTRun | None = None

    def open(self, settings: dict[str, Any], *, model: str | None = None) -> Self:
        """Lock, check the settings match earlier runs, repair torn tails, and load what is done."""
        self._folder.open()
        try:
            return self._load(settings, model)
        except BaseException:
            self.close("refused")
            raise

    def _load(self, settings: dict[str, Any], model: str | None) -> Self:
        old = _read_manifest(self.dir)
        if old is not None and old.settings != settings:
            changed = sorted(
                k for k in set(old.settings) | set(settings) if old.settings.get(k) != settings.get(k)
            )
            raise OutputError(
                f"{self.dir} holds results made with other settings ({', '.join(changed)}: "
                f"{ {k: old.settings.get(k) for k in changed} } there, "
                f"{ {k: settings.get(k) for k in changed} } "
                "now); use another --out or the same settings"
            )
        self.existing = [ProblemResult.model_validate(r) for r in self._results.open()]
        failures = self._failed.open()
        self.done_ids = {r.id for r in self.existing}
        runs = old.runs if old else []
        mark_killed(runs)
        self._run = CoTRun(model=model)
        runs.append(self._run)
        self.manifest = CoTManifest(
            settings=settings,
            done=len(self.existing),
            failures_logged=len(failures),
            tokens=sum(t.tokens for r in self.existing for t in r.traces),
            runs=runs,
        )
        self.write_manifest()
        return self

    def record(self, outcome: Outcome, stats: BaseModel | None = None) -> bool:
        """Persist one finished problem durably; False (nothing written) if its id is already done."""
        assert self.manifest is not None and self._run is not None, "call open() first"
        if outcome.id in self.done_ids:
            return False
        tokens = sum(t.tokens for t in outcome.traces)
        self.manifest.tokens += tokens
        self._run.tokens += tokens
        if isinstance(outcome, ProblemFailure):
            self._failed.append(outcome.model_dump(mode="json"))
            self.manifest.failures_logged += 1
            self._run.failed += 1
        else:
            self._results.append(outcome.model_dump(mode="json"))
            self.done_ids.add(outcome.id)
            self.manifest.done += 1
            self._run.done += 1
        if stats is not None:
            self.manifest.stats = stats.model_dump(mode="json")
        self.write_manifest()
        return True

    def write_manifest(self) -> None:
        """Replace manifest.json atomically."""
        assert self.manifest is not None
        self.manifest.updated_at = time.time()
        write_json_atomic(self.dir / MANIFEST, self.manifest)

    def close(self, status: str) -> None:
        """Finish the run record, write the last manifest, release the files and the lock."""
        if self._run is not None and self.manifest is not None:
            self._run.finish(status)
            self.write_manifest()
            self._run = None
        self._results.close()
        self._failed.close()
        self._folder.close()


def _read_manifest(out_dir: Path) -> CoTManifest | None:
    try:
        return CoTManifest.model_validate_json((out_dir / MANIFEST).read_bytes())
    except FileNotFoundError:
        return None
    except ValueError:
        return None  # unreadable: the counts are recomputed from the files; the settings check is skipped


def read_results(out_dir: str | os.PathLike[str]) -> list[ProblemResult]:
    """Finished problems of an output directory in input order (complete lines only; nothing is repaired)."""
    results = [ProblemResult.model_validate(r) for r in read_jsonl(Path(out_dir) / RESULTS)]
    return sorted(results, key=lambda r: r.index)


def read_failures(out_dir: str | os.PathLike[str]) -> list[ProblemFailure]:
    """Problems whose latest attempt failed and that no later run finished, in input order."""
    done = {r.id for r in read_results(out_dir)}
    latest = {f.id: f for f in (ProblemFailure.model_validate(r) for r in read_jsonl(Path(out_dir) / FAILED))}
    return sorted((f for f in latest.values() if f.id not in done), key=lambda f: f.index)


def read_manifest(out_dir: str | os.PathLike[str]) -> CoTManifest:
    """The manifest of an output directory."""
    path = Path(out_dir) / MANIFEST
    if not path.exists():
        raise OutputError(f"{path} does not exist: {out_dir} is not a `loong cot` output directory")
    return CoTManifest.model_validate_json(path.read_bytes())
