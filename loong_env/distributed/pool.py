"""One novelty pool for a whole distributed run, so no two near-duplicates are kept on different nodes.

`NoveltyPool` runs as a single Ray actor. Its methods run one at a time, so `claim` (the last novelty
check and the add) is atomic across every worker, as the in-process KeepRule's check-and-add is. Each call
costs one lookup in its NoveltyIndex (a few candidates scored, not a scan), so one actor serves the cluster.
Claims are keyed by attempt number: when a worker dies, the driver releases the claims of its in-flight
attempts before retrying them, so a verdict that never reached the output cannot block a later candidate.
`PooledKeepRule` is the KeepRule a worker uses: the same checks, asked of the actor; a worker holds no copy
of the pool, only the last `DEMO_WINDOW` kept items as demonstrations.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel

from loong_env.generators.keep import (
    Candidate,
    KeepConfig,
    KeepRule,
    NoveltyCheck,
    RejectReason,
    novelty_check,
    novelty_floor,
    novelty_problem,
)
from loong_env.generators.novelty import NoveltyIndex
from loong_env.types import DataPoint

DEMO_WINDOW = 256  # kept items a worker holds for self-instruct / evol-instruct demonstrations
PARENTS_HELD = 4096  # parent similarities of screened attempts awaiting their kept record


class PoolAnswer(BaseModel):
    """The pool's answer to a screen or a claim: new (no reason), or rejected with why; how similar."""

    reason: RejectReason | None = None
    detail: str = ""
    similarity: float | None = None
    parent_similarity: float | None = None


class PoolChange(BaseModel):
    """One entry of the pool's change log, which workers read to keep their demo lists current."""

    op: Literal["add", "remove"]
    item_id: str
    datapoint: DataPoint | None = None


class NoveltyPool:
    """Seeds plus everything kept so far (the Ray actor's body; plain Python, so it is testable alone).

    `index`: a ready index of the kept items (e.g. loaded from the output folder) instead of `kept`.
    The change log keeps only the last `DEMO_WINDOW` entries: workers need recent demos, not history.
    """

    def __init__(
        self,
        config: KeepConfig,
        seeds: Sequence[DataPoint],
        kept: Sequence[DataPoint] = (),
        index: NoveltyIndex | None = None,
    ) -> None:
        self.config = config
        self.index = index if index is not None else NoveltyIndex(floor=novelty_floor(config))
        self.claims: dict[int, str] = {}  # attempt number -> id of the item it added
        self.changes: deque[PoolChange] = deque(maxlen=DEMO_WINDOW)
        self.logged = 0  # changes ever logged: the cursor of the newest one
        for dp in seeds:
            if not self.index.contains(dp.question):
                self.index.add(dp.question, dp.id, "seed")
        for dp in kept:
            if not self.index.contains(dp.question):
                self.index.add(dp.question, dp.id, "kept")
                self._log(PoolChange(op="add", item_id=dp.id, datapoint=dp))

    def _log(self, change: PoolChange) -> None:
        self.changes.append(change)
        self.logged += 1

    def screen(self, question: str, parent_id: str | None = None) -> PoolAnswer:
        """The early novelty check of a candidate (changes nothing): the problem if any, and similarities."""
        found, similarity = novelty_check(self.index, self.config, question, parent_id)
        parent = self.index.similarity_to(question, parent_id) if parent_id else None
        if found is None:
            return PoolAnswer(similarity=similarity, parent_similarity=parent)
        return PoolAnswer(reason=found[0], detail=found[1], similarity=found[2], parent_similarity=parent)

    def claim(self, attempt: int, datapoint: DataPoint, parent_id: str | None = None) -> PoolAnswer:
        """Check `datapoint` against the pool and add it, in one step; a rejection changes nothing."""
        self.release(attempt)  # an attempt run again (its first worker died) replaces its own earlier claim
        if found := novelty_problem(self.index, self.config, datapoint.question, parent_id):
            return PoolAnswer(reason=found[0], detail=found[1], similarity=found[2])
        self.index.add(datapoint.question, datapoint.id, "kept")
        self.claims[attempt] = datapoint.id
        self._log(PoolChange(op="add", item_id=datapoint.id, datapoint=datapoint))
        return PoolAnswer()

    def release(self, attempt: int) -> bool:
        """Forget what `attempt` claimed (it is about to run again); False if it claimed nothing."""
        item_id = self.claims.pop(attempt, None)
        if item_id is None or not self.index.remove(item_id):
            return False
        self._log(PoolChange(op="remove", item_id=item_id))
        return True

    def changes_since(self, cursor: int) -> tuple[list[PoolChange], int]:
        """Log entries after position `cursor` (at most the last DEMO_WINDOW), and the new cursor."""
        held = len(self.changes)
        first = self.logged - held  # cursor of the oldest entry still held
        skip = max(0, cursor - first)
        return list(self.changes)[skip:], self.logged

    def size(self) -> int:
        """Items held (seeds and kept)."""
        return len(self.index)

    def export(self) -> NoveltyIndex:
        """The index itself, for the driver to save with the output folder when the run is over."""
        return self.index


class PooledKeepRule(KeepRule):
    """The keep rule with the run's one NoveltyPool actor as the judge of what is new.

    Every novelty question (the early screen, the final claim) goes to the actor: the worker holds no
    copy of the pool, so its memory does not grow with the run. `demos` (the generator's `kept` list) gets
    the most recent items any worker kept (at most DEMO_WINDOW), so self-instruct and evol-instruct draw
    on the whole run's latest output.
    """

    def __init__(self, *args: Any, shared: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.shared = shared  # a Ray actor handle of NoveltyPool
        self.demos: list[DataPoint] = []
        self._cursor = 0
        self._syncing = asyncio.Lock()  # one read at a time, so log entries apply in order
        self._parents: dict[int, float | None] = {}  # attempt -> parent similarity the actor reported

    async def sync(self) -> None:
        """Apply the pool's log entries since the last sync to the demo list."""
        async with self._syncing:
            changes, self._cursor = await self.shared.changes_since.remote(self._cursor)
            self._apply(changes)

    def _apply(self, changes: list[PoolChange]) -> None:
        known = {dp.id for dp in self.demos}
        for change in changes:
            if change.op == "remove":
                if change.item_id in known:
                    known.discard(change.item_id)
                    self.demos[:] = [dp for dp in self.demos if dp.id != change.item_id]
                continue
            assert change.datapoint is not None
            if change.item_id not in known:
                known.add(change.item_id)
                self.demos.append(change.datapoint)
        if len(self.demos) > DEMO_WINDOW:
            del self.demos[: len(self.demos) - DEMO_WINDOW]

    async def screen(self, candidate: Candidate) -> NoveltyCheck:
        answer: PoolAnswer = await self.shared.screen.remote(candidate.question, candidate.parent_id)
        if candidate.parent_id:
            self._parents[candidate.attempt] = answer.parent_similarity
            if len(self._parents) > PARENTS_HELD:  # screened but never kept: drop the oldest
                del self._parents[next(iter(self._parents))]
        return NoveltyCheck(reason=answer.reason, detail=answer.detail, similarity=answer.similarity)

    def parent_similarity(self, candidate: Candidate) -> float | None:
        return self._parents.pop(candidate.attempt, None) if candidate.parent_id else None

    async def claim(
        self, candidate: Candidate, datapoint: DataPoint, *, since: int | None = None
    ) -> NoveltyCheck:
        # `since` is None here: the actor's screen does not report its slots, so its claim does a full lookup
        answer: PoolAnswer = await self.shared.claim.remote(candidate.attempt, datapoint, candidate.parent_id)
        self._parents.pop(candidate.attempt, None)
        if answer.reason is not None:
            return NoveltyCheck(reason=answer.reason, detail=answer.detail, similarity=answer.similarity)
        return NoveltyCheck()
