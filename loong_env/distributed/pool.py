"""One novelty pool for a whole distributed run, so no two near-duplicates are kept on different nodes.

`NoveltyPool` runs as a single Ray actor. Its methods run one at a time, so `claim` (the last novelty
check and the add) is atomic across every worker, as the in-process KeepRule's check-and-add is. Claims
are keyed by attempt number: when a worker dies, the driver releases the claims of its in-flight attempts
before retrying them, so a verdict that never reached the output cannot block a later candidate.
`PooledKeepRule` is the KeepRule a worker uses: the same checks, with the pool calls going to the actor.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel

from loong_env.generators.keep import (
    Candidate,
    KeepConfig,
    KeepRule,
    NoveltyCheck,
    RejectReason,
    novelty_problem,
)
from loong_env.generators.novelty import NoveltyIndex
from loong_env.types import DataPoint


class PoolAnswer(BaseModel):
    """The pool's answer to a claim: accepted (no reason), or rejected with why and how similar."""

    reason: RejectReason | None = None
    detail: str = ""
    similarity: float | None = None


class PoolChange(BaseModel):
    """One entry of the pool's change log, which workers replay to keep their demo lists current."""

    op: Literal["add", "remove"]
    item_id: str
    datapoint: DataPoint | None = None


class NoveltyPool:
    """Seeds plus everything kept so far (the Ray actor's body; plain Python, so it is testable alone)."""

    def __init__(
        self, config: KeepConfig, seeds: Sequence[DataPoint], kept: Sequence[DataPoint] = ()
    ) -> None:
        self.config = config
        self.index = NoveltyIndex()
        self.claims: dict[int, str] = {}  # attempt number -> id of the item it added
        self.changes: list[PoolChange] = []
        for dp in seeds:
            if not self.index.contains(dp.question):
                self.index.add(dp.question, dp.id, "seed")
        for dp in kept:
            if not self.index.contains(dp.question):
                self.index.add(dp.question, dp.id, "kept")
                self.changes.append(PoolChange(op="add", item_id=dp.id, datapoint=dp))

    def claim(self, attempt: int, datapoint: DataPoint, parent_id: str | None = None) -> PoolAnswer:
        """Check `datapoint` against the pool and add it, in one step; a rejection changes nothing."""
        self.release(attempt)  # an attempt run again (its first worker died) replaces its own earlier claim
        if found := novelty_problem(self.index, self.config, datapoint.question, parent_id):
            return PoolAnswer(reason=found[0], detail=found[1], similarity=found[2])
        self.index.add(datapoint.question, datapoint.id, "kept")
        self.claims[attempt] = datapoint.id
        self.changes.append(PoolChange(op="add", item_id=datapoint.id, datapoint=datapoint))
        return PoolAnswer()

    def release(self, attempt: int) -> bool:
        """Forget what `attempt` claimed (it is about to run again); False if it claimed nothing."""
        item_id = self.claims.pop(attempt, None)
        if item_id is None or not self.index.remove(item_id):
            return False
        self.changes.append(PoolChange(op="remove", item_id=item_id))
        return True

    def changes_since(self, cursor: int) -> tuple[list[PoolChange], int]:
        """Log entries after position `cursor`, and the new cursor."""
        return self.changes[cursor:], len(self.changes)

    def size(self) -> int:
        """Items held (seeds and kept)."""
        return len(self.index)


class PooledKeepRule(KeepRule):
    """The keep rule with the run's one NoveltyPool actor as the judge of what is new.

    `self.pool` is a local mirror of the shared pool, brought up to date from the pool's change log before
    every early screen (so screens cost the shared actor nothing but the log read); the final check and the
    add are one `claim` on the actor. `demos` (the generator's `kept` list) gets the items other workers
    kept, so self-instruct and evol-instruct draw on the whole run.
    """

    def __init__(self, *args: Any, shared: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.shared = shared  # a Ray actor handle of NoveltyPool
        self.demos: list[DataPoint] = []
        self._cursor = 0
        self._syncing = asyncio.Lock()  # one replay at a time, so log entries apply in order
        self._known: set[str] = set()  # ids already in `demos`

    async def sync(self) -> None:
        """Replay the pool's log entries since the last sync into the mirror and the demo list."""
        async with self._syncing:
            changes, self._cursor = await self.shared.changes_since.remote(self._cursor)
            self._apply(changes)

    def _apply(self, changes: list[PoolChange]) -> None:
        for change in changes:
            if change.op == "remove":
                self.pool.remove(change.item_id)
                if change.item_id in self._known:
                    self._known.discard(change.item_id)
                    self.demos[:] = [dp for dp in self.demos if dp.id != change.item_id]
                continue
            assert change.datapoint is not None
            if not self.pool.contains(change.datapoint.question):
                self.add_to_pool(change.datapoint, "kept")
            if change.item_id not in self._known:
                self._known.add(change.item_id)
                self.demos.append(change.datapoint)

    async def screen(self, candidate: Candidate) -> NoveltyCheck:
        await self.sync()
        return await super().screen(candidate)

    async def claim(self, candidate: Candidate, datapoint: DataPoint) -> NoveltyCheck:
        answer: PoolAnswer = await self.shared.claim.remote(candidate.attempt, datapoint, candidate.parent_id)
        if answer.reason is not None:
            return NoveltyCheck(reason=answer.reason, detail=answer.detail, similarity=answer.similarity)
        self._known.add(datapoint.id)  # the generator lists it as a demo itself once it is accepted
        if not self.pool.contains(datapoint.question):
            self.add_to_pool(datapoint, "kept")
        return NoveltyCheck()
