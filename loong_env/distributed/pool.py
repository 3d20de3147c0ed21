"""One novelty pool for a whole distributed run, so no two near-duplicates are kept on different nodes.

`NoveltyPool` runs as a single Ray actor. Its methods run one at a time, so `claim` (the last novelty
check and the add) is atomic across every worker, as the in-process KeepRule's check-and-add is. Claims
are keyed by attempt number: when a worker dies, the driver releases the claims of its in-flight attempts
before retrying them, so a verdict that never reached the output cannot block a later candidate.
`PooledKeepRule` is the KeepRule a worker uses: the same checks, with the pool calls going to the actor.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel

from loong_env.generators.keep import Candidate, KeepConfig, KeepRule, RejectReason, Verdict, novelty_problem
from loong_env.generators.novelty import NoveltyIndex
from loong_env.types import DataPoint


class PoolAnswer(BaseModel):
    """The pool's answer to a screen or a claim: a rejection with its reason, or the nearest similarity."""

    reason: RejectReason | None = None
    detail: str = ""
    similarity: float = 0.0

    def rejection(self, verdict: Verdict) -> tuple[RejectReason, str] | None:
        """Record the similarity on the verdict; the (reason, detail) to reject with, if any."""
        verdict.similarity = self.similarity
        return None if self.reason is None else (self.reason, self.detail)


class PoolChange(BaseModel):
    """One entry of the pool's change log, which workers replay to keep their demo lists current."""

    op: Literal["add", "remove"]
    item_id: str
    datapoint: DataPoint | None = None


class NoveltyPool:
    """Seeds plus everything kept so far (the Ray actor's body; plain Python, so it is testable alone)."""

    def __init__(self, config: KeepConfig, seeds: Sequence[DataPoint], kept: Sequence[DataPoint] = ()) -> None:
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

    def screen(self, question: str, parent_id: str | None = None) -> PoolAnswer:
        """The early check, before a worker spends sandbox and solver time on a candidate."""
        if found := novelty_problem(self.index, self.config, question, parent_id):
            return PoolAnswer(reason=found[0], detail=found[1], similarity=found[2])
        return PoolAnswer(similarity=self.index.nearest(question, exclude=parent_id).similarity)

    def claim(self, attempt: int, datapoint: DataPoint, parent_id: str | None = None) -> PoolAnswer:
        """Check `datapoint` against the pool and add it, in one step; a rejection leaves the pool unchanged."""
        self.release(attempt)  # an attempt run again (its first worker died) replaces its own earlier claim
        if found := novelty_problem(self.index, self.config, datapoint.question, parent_id):
            return PoolAnswer(reason=found[0], detail=found[1], similarity=found[2])
        similarity = self.index.nearest(datapoint.question, exclude=parent_id).similarity
        self.index.add(datapoint.question, datapoint.id, "kept")
        self.claims[attempt] = datapoint.id
        self.changes.append(PoolChange(op="add", item_id=datapoint.id, datapoint=datapoint))
        return PoolAnswer(similarity=similarity)

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
    """The keep rule with its novelty checks answered by the run's one NoveltyPool actor.

    `self.pool` stays as a local mirror of seeds and kept items (for the parent similarity an evol item
    records); it never decides what is kept.
    """

    def __init__(self, *args: Any, shared: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.shared = shared  # a Ray actor handle of NoveltyPool

    async def screen(self, candidate: Candidate, verdict: Verdict) -> tuple[RejectReason, str] | None:
        answer: PoolAnswer = await self.shared.screen.remote(candidate.question, candidate.parent_id)
        return answer.rejection(verdict)

    async def claim(
        self, candidate: Candidate, verdict: Verdict, datapoint: DataPoint
    ) -> tuple[RejectReason, str] | None:
        answer: PoolAnswer = await self.shared.claim.remote(candidate.attempt, datapoint, candidate.parent_id)
        if answer.reason is None:
            return None  # the similarity recorded at screen time is the one the datapoint carries
        return answer.rejection(verdict)
