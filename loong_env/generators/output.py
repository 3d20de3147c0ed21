"""Crash-safe generation output: what was written survives kill -9, and a re-run resumes without duplicates.

The lock, durable appends, torn-tail repair and atomic manifest are loong_env.runs.durable's, shared with the
CoT pipeline's output.

Layout of an output directory:
  accepted.jsonl   one kept DataPoint per line (append + flush + fsync per line)
  rejected.jsonl   one rejected Verdict per line (same discipline)
  manifest.json    counts and run history, replaced atomically (tmp + fsync + rename)
  novelty.npz      the novelty index of accepted.jsonl's first N items, saved when a run closes; a resumed
                   run loads it and indexes only the items after N (a run killed before closing leaves some)
A torn last line (a kill mid-write) is cut off on open; counts in the manifest are always recomputed
from the files, so the manifest can lag the files by at most one verdict and never disagrees after open.
"""

from __future__ import annotations

import json
import os
import time
import weakref
from collections import Counter, deque
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Self

from pydantic import BaseModel, Field

from loong_env.generators.keep import RejectReason, Verdict
from loong_env.generators.novelty import NoveltyIndex, question_hash
from loong_env.runs.durable import (
    JsonlLog,
    OutputError,
    RunDirectory,
    RunEntry,
    mark_killed,
    read_jsonl,
    write_json_atomic,
)
from loong_env.types import DataPoint, content_id

ACCEPTED = "accepted.jsonl"
REJECTED = "rejected.jsonl"
MANIFEST = "manifest.json"
NOVELTY = "novelty.npz"
RECENT = 256  # kept items a resumed run gets back as demonstrations (the pool itself comes from the index)


class RunRecord(RunEntry):
    """One invocation against the directory (status: target, max_attempts, time_budget, interrupted...)."""

    method: str
    accepted: int = 0
    rejected: int = 0
    abandoned: int = 0


class Manifest(BaseModel):
    """Summary of an output directory; `accepted`/`rejected` always equal the line counts of the files."""

    version: int = 1
    domain: str
    target: int | None = None
    accepted: int = 0
    rejected: int = 0
    rejected_by_reason: dict[str, int] = Field(default_factory=dict)
    accepted_by_method: dict[str, int] = Field(default_factory=dict)
    next_attempt: int = 0
    tokens: int = 0
    updated_at: float = 0.0
    runs: list[RunRecord] = Field(default_factory=list)


def _record_id(record: dict[str, Any]) -> str:
    """The id of an accepted.jsonl line (its content id, as DataPoint computes it)."""
    return str(
        record.get("id") or content_id(str(record.get("question", "")), str(record.get("final_answer", "")))
    )


def _questions_and_ids(path: Path, limit: int) -> Iterator[tuple[str, str]]:
    """(question, id) of the first `limit` lines of accepted.jsonl, streamed (no DataPoint is built)."""
    with path.open("rb") as fh:
        for raw, _ in zip(fh, range(limit), strict=False):
            record = json.loads(raw)
            yield str(record.get("question", "")), _record_id(record)


def datapoint_from_record(record: dict[str, Any]) -> DataPoint:
    """Rebuild a DataPoint from an accepted.jsonl line (the computed `id` is dropped and recomputed)."""
    return DataPoint.model_validate({k: v for k, v in record.items() if k != "id"})


class GenerationWriter:
    """Owns one output directory for a run: exclusive lock, resume state, durable appends, atomic manifest."""

    def __init__(self, out_dir: str | os.PathLike[str], *, domain: str) -> None:
        self.dir = Path(out_dir)
        self.domain = domain
        self.accepted_path = self.dir / ACCEPTED
        self.rejected_path = self.dir / REJECTED
        self.manifest_path = self.dir / MANIFEST
        self.novelty_path = self.dir / NOVELTY
        self.manifest: Manifest | None = None
        self.recent: list[DataPoint] = []  # the last RECENT accepted items on disk at open
        self._written: set[str] = set()  # ids accepted by this run
        self._last_id = ""  # id of the last line of accepted.jsonl
        self._existing: list[DataPoint] | None = None
        self._hashes: set[int] = set()
        self._tail: list[tuple[str, str]] = []  # (question, id) of accepted lines the saved index lacks
        self._snapshot: tuple[int, str] | None = None  # (lines covered, id of the last) of novelty.npz
        self._on_disk = 0  # accepted lines at open
        self._handed_over = 0  # index.slots when novelty_index() handed the index to the run
        self._handed: weakref.ref[NoveltyIndex] | None = None  # not a reference: a Ray driver lets it go
        self._folder = RunDirectory(self.dir, command="loong generate")
        self._acc = JsonlLog(self.accepted_path)
        self._rej = JsonlLog(self.rejected_path)
        self._run: RunRecord | None = None

    # -- lifecycle --------------------------------------------------------------------------------

    def open(self, *, method: str, model: str | None = None, target: int | None = None) -> Self:
        """Lock the directory, repair torn tails, read what earlier runs kept, and start a run record.

        accepted.jsonl is streamed (a million lines are never all in memory): what stays is each question's
        hash, counts, the last RECENT items, and the questions the saved novelty index does not hold yet.
        """
        self._folder.open()
        old = self._read_manifest()
        if old is not None and old.domain != self.domain:
            self.close("interrupted")
            raise OutputError(
                f"{self.dir} holds domain {old.domain!r} but this run is for {self.domain!r}; "
                "use another --out"
            )
        covered, last_id = self._snapshot_meta()
        recent: deque[dict[str, Any]] = deque(maxlen=RECENT)
        by_method: Counter[str] = Counter()
        numbers: list[int] = []
        seen = 0
        snapshot_ok = False  # until its last covered line is found and matches

        def take(record: dict[str, Any]) -> None:
            nonlocal seen, snapshot_ok
            seen += 1
            question = str(record.get("question", ""))
            self._hashes.add(question_hash(question))
            metadata = record.get("metadata") or {}
            by_method[str(metadata.get("generator"))] += 1
            if isinstance(attempt := metadata.get("attempt"), int):
                numbers.append(attempt)
            if seen == covered:
                snapshot_ok = _record_id(record) == last_id
            elif seen > covered and snapshot_ok:  # without a usable index the file is streamed again
                self._tail.append((question, _record_id(record)))
            recent.append(record)

        self._acc.open(each=take)
        self._on_disk = seen
        self._snapshot = (covered, last_id) if snapshot_ok else None
        if self._snapshot is None:
            self._tail = []
        rejected = self._rej.open()
        self.recent = [datapoint_from_record(r) for r in recent]
        self._last_id = self.recent[-1].id if self.recent else ""
        numbers += [r["attempt"] for r in rejected if isinstance(r.get("attempt"), int)]
        self.manifest = Manifest(
            domain=self.domain,
            target=target,
            accepted=seen,
            rejected=len(rejected),
            rejected_by_reason=dict(Counter(str(r.get("reason")) for r in rejected)),
            accepted_by_method=dict(by_method),
            next_attempt=max([old.next_attempt if old else 0, *(n + 1 for n in numbers)]),
            tokens=old.tokens if old else 0,
            runs=old.runs if old else [],
        )
        mark_killed(self.manifest.runs)
        self._run = RunRecord(started_at=time.time(), method=method, model=model)
        self.manifest.runs.append(self._run)
        self.write_manifest()
        return self

    @property
    def existing(self) -> list[DataPoint]:
        """Every item accepted before this run (read from disk on first use: a large folder is costly)."""
        if self._existing is None:
            items = read_accepted(self.dir)
            self._existing = items[: self._on_disk]
        return self._existing

    def novelty_index(self, *, floor: float) -> NoveltyIndex:
        """The novelty index of the items accepted before this run: the saved one plus what came after it,
        or one built from accepted.jsonl when none was saved (or it does not match the file)."""
        index: NoveltyIndex | None = None
        if self._snapshot is not None:
            try:
                index, _ = NoveltyIndex.load(self.novelty_path)
            except ValueError:
                index = None
        if index is None:
            index = NoveltyIndex(floor=floor)
            pending: Iterable[tuple[str, str]] = _questions_and_ids(self.accepted_path, self._on_disk)
        else:
            index.floor = floor
            pending = self._tail
        for question, item_id in pending:
            if not index.contains(question):
                index.add(question, item_id, "kept")
        self._tail = []
        self._handed_over, self._handed = index.slots, weakref.ref(index)
        return index

    def save_novelty_index(self, index: NoveltyIndex, *, copy: bool = False) -> None:
        """Save `index` (from `novelty_index`, after the run) as novelty.npz: accepted.jsonl's items only.

        Seeds and items the run claimed but never wrote (abandoned at the target, found on disk already)
        are removed from `index` first: call this when the run is over. `copy`: `index` is a copy of the
        one handed out (the Ray pool actor's, sent back to the driver).
        """
        if self._handed is None or (index is not self._handed() and not copy) or self.manifest is None:
            return  # not the index this folder handed out: it may not hold what the folder holds
        written = self._written
        for item_id, kind in index.held():
            if kind == "seed":
                index.remove(item_id)
        for item_id, _kind in index.held(since=self._handed_over):
            if item_id not in written:
                index.remove(item_id)
        meta = {"accepted": self.manifest.accepted, "last_id": self._last_id}
        index.save(self.novelty_path, meta=meta)

    def _snapshot_meta(self) -> tuple[int, str]:
        """(accepted lines covered, id of the last one) of the saved novelty index; (0, "") if none."""
        try:
            meta = NoveltyIndex.read_meta(self.novelty_path)
        except ValueError:
            return 0, ""
        covered, last_id = meta.get("accepted"), meta.get("last_id")
        if not isinstance(covered, int) or not isinstance(last_id, str) or covered < 0:
            return 0, ""
        return covered, last_id

    def close(self, status: str, *, abandoned: int = 0) -> None:
        """Finish the run record, write the final manifest, release files and the lock."""
        if self._run is not None and self.manifest is not None:
            self._run.finish(status)
            self._run.abandoned = abandoned
            self.write_manifest()
        self._acc.close()
        self._rej.close()
        self._folder.close()

    # -- writing ----------------------------------------------------------------------------------

    @property
    def accepted_count(self) -> int:
        return self.manifest.accepted if self.manifest else 0

    def seen(self, question: str) -> bool:
        """True if an accepted item with this normalised question is already on disk."""
        return question_hash(question) in self._hashes

    def record(self, verdict: Verdict) -> bool:
        """Persist one finished attempt durably; returns True if it was written as accepted.

        An accepted verdict whose question is already on disk is written as a `duplicate` rejection: the
        writer is the last line of defence against duplicates across runs.
        """
        assert self.manifest is not None and self._run is not None, "call open() first"
        self.manifest.tokens += verdict.tokens
        self._run.tokens += verdict.tokens
        self.manifest.next_attempt = max(self.manifest.next_attempt, verdict.attempt + 1)
        if verdict.accepted and verdict.datapoint is not None and self.seen(verdict.datapoint.question):
            verdict = verdict.model_copy(
                update={
                    "accepted": False,
                    "reason": RejectReason.duplicate,
                    "detail": "already in accepted.jsonl",
                }
            )
        if verdict.accepted and verdict.datapoint is not None:
            self._acc.append(verdict.datapoint.model_dump(mode="json"))
            self._hashes.add(question_hash(verdict.datapoint.question))
            self._written.add(verdict.datapoint.id)
            self._last_id = verdict.datapoint.id
            self.manifest.accepted += 1
            method = str(verdict.datapoint.metadata.get("generator"))
            self.manifest.accepted_by_method[method] = self.manifest.accepted_by_method.get(method, 0) + 1
            self._run.accepted += 1
            written = True
        else:
            self._rej.append(verdict.model_dump(mode="json", exclude={"datapoint"}))
            reason = str(verdict.reason)
            self.manifest.rejected += 1
            self.manifest.rejected_by_reason[reason] = self.manifest.rejected_by_reason.get(reason, 0) + 1
            self._run.rejected += 1
            written = False
        self.write_manifest()
        return written

    def write_manifest(self) -> None:
        """Replace manifest.json atomically: readers see the old or the new one, never a torn file."""
        assert self.manifest is not None
        self.manifest.updated_at = time.time()
        write_json_atomic(self.manifest_path, self.manifest)

    def _read_manifest(self) -> Manifest | None:
        try:
            return Manifest.model_validate_json(self.manifest_path.read_bytes())
        except FileNotFoundError:
            return None
        except ValueError:
            return None  # unreadable manifest: everything it held is recomputed from the files

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close("interrupted" if exc[0] else "done")


# -- reading and export ----------------------------------------------------------------------------


def read_accepted(out_dir: str | os.PathLike[str]) -> list[DataPoint]:
    """The kept datapoints of an output directory, ignoring a torn last line (read-only: nothing repaired)."""
    return [datapoint_from_record(r) for r in read_jsonl(Path(out_dir) / ACCEPTED)]


def read_rejected(out_dir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The rejected verdicts of an output directory as dicts (complete lines only)."""
    return read_jsonl(Path(out_dir) / REJECTED)


def read_manifest(out_dir: str | os.PathLike[str]) -> Manifest:
    """The manifest of an output directory."""
    return Manifest.model_validate_json((Path(out_dir) / MANIFEST).read_bytes())


def to_dataset(out_dir: str | os.PathLike[str]) -> Any:
    """Kept items as a `datasets.Dataset` (nested fields as JSON strings, same columns as seeds' `to_hf`)."""
    from loong_env.seeds.dataset import SeedDataset

    return SeedDataset(read_accepted(out_dir)).to_hf()


def export_parquet(out_dir: str | os.PathLike[str], path: str | os.PathLike[str] | None = None) -> Path:
    """Write kept items to Parquet (default: <out_dir>/accepted.parquet) and return the path."""
    target = Path(path) if path is not None else Path(out_dir) / "accepted.parquet"
    to_dataset(out_dir).to_parquet(str(target))
    return target


def push_to_hub(
    out_dir: str | os.PathLike[str],
    repo_id: str,
    *,
    token: str | None = None,
    private: bool = True,
    **kwargs: Any,
) -> Any:
    """Upload kept items as a Hub dataset; raises OutputError with the cause if the Hub cannot be reached."""
    dataset = to_dataset(out_dir)
    if len(dataset) == 0:
        raise OutputError(f"nothing to push: {Path(out_dir) / ACCEPTED} has no accepted items")
    try:
        return dataset.push_to_hub(repo_id, token=token, private=private, **kwargs)
    except Exception as exc:
        raise OutputError(f"push_to_hub({repo_id!r}) failed: {type(exc).__name__}: {exc}"[:500]) from exc
