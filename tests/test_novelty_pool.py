"""The run-wide novelty pool: screens and claims are index lookups; workers hold recent demos, not the pool."""

from __future__ import annotations

import pytest

from loong_env.distributed.pool import DEMO_WINDOW, NoveltyPool, PoolChange, PooledKeepRule
from loong_env.generators.keep import KeepConfig, RejectReason
from loong_env.types import DataPoint

SEED = DataPoint(
    question="How many edges does the complete graph on five vertices have?",
    final_answer="10",
    rationale="print(10)",
    domain="toy",
)


def _item(k: int) -> DataPoint:
    words = ["apples", "pears", "plums", "figs", "limes", "kiwis", "dates", "grapes"]
    q = f"Crate {k} holds {k} {words[k % 8]} and {k * 7} melons; what does crate {k} weigh in grams at {k}?"
    return DataPoint(question=q, final_answer=str(k), rationale=f"print({k})", domain="toy")


def test_a_screen_is_a_lookup_that_changes_nothing() -> None:
    pool = NoveltyPool(KeepConfig(), [SEED])
    twin = pool.screen(SEED.question.replace("five", "six"))
    assert twin.reason is RejectReason.too_similar and twin.similarity > 0.7
    assert pool.screen(SEED.question).reason is RejectReason.duplicate
    fresh = pool.screen("A train leaves at noon at 80 km/h; when has it covered 200 km?")
    assert fresh.reason is None and fresh.similarity < 0.7
    assert pool.size() == 1 and pool.changes_since(0) == ([], 0)


def test_a_screen_reports_the_parents_similarity_for_the_kept_record() -> None:
    pool = NoveltyPool(KeepConfig(), [SEED])
    rewrite = SEED.question + " Then double it."
    answer = pool.screen(rewrite, parent_id=SEED.id)
    assert answer.parent_similarity is not None and 0.7 < answer.parent_similarity < 1.0


def test_the_change_log_holds_only_the_last_window() -> None:
    pool = NoveltyPool(KeepConfig(novelty_threshold=0.99), [SEED])  # items differ only in their numbers
    total = DEMO_WINDOW + 10
    for k in range(total):
        assert pool.claim(k, _item(k)).reason is None
    changes, cursor = pool.changes_since(0)
    assert cursor == total and len(changes) == DEMO_WINDOW
    assert changes[-1].item_id == _item(total - 1).id
    assert pool.changes_since(total - 2)[0] == changes[-2:]
    assert pool.changes_since(cursor) == ([], cursor)


def test_a_worker_keeps_a_bounded_window_of_demos() -> None:
    rule = PooledKeepRule(None, None, shared=None)  # no actor needed to apply log entries
    rule._apply(
        [PoolChange(op="add", item_id=_item(k).id, datapoint=_item(k)) for k in range(DEMO_WINDOW + 5)]
    )
    assert len(rule.demos) == DEMO_WINDOW and rule.demos[-1].id == _item(DEMO_WINDOW + 4).id
    rule._apply([PoolChange(op="remove", item_id=_item(DEMO_WINDOW + 4).id)])
    assert len(rule.demos) == DEMO_WINDOW - 1 and len(rule.pool) == 0  # no copy of the pool


class _Handle:
    """The call shape of a Ray actor handle (`handle.method.remote(...)` is awaitable), in process."""

    def __init__(self, body: object) -> None:
        self.body = body

    def __getattr__(self, name: str) -> object:
        method = getattr(self.body, name)

        class _Remote:
            @staticmethod
            async def remote(*args: object) -> object:
                return method(*args)

        return _Remote


async def test_a_workers_screen_and_claim_go_to_the_shared_pool() -> None:
    from loong_env.generators.keep import Candidate

    pool = NoveltyPool(KeepConfig(parent_threshold=0.95), [SEED])  # an evol rewrite may stay close
    rule = PooledKeepRule(None, None, shared=_Handle(pool))
    rewrite = SEED.question + " Then double it and add nine more edges."
    candidate = Candidate(question=rewrite, code="print(29)", domain="toy", method="evol-instruct", attempt=7,
                          parent_id=SEED.id)  # fmt: skip
    screened = await rule.screen(candidate)
    assert screened.reason is None and screened.similarity is not None
    assert rule.parent_similarity(candidate) == pytest.approx(pool.index.similarity_to(rewrite, SEED.id))
    kept = DataPoint(question=rewrite, final_answer="29", rationale="print(29)", domain="toy")
    assert (await rule.claim(candidate, kept)).reason is None and pool.size() == 2
    twin = candidate.model_copy(update={"attempt": 8})
    found = await rule.claim(twin, kept)
    assert found.reason is RejectReason.duplicate  # the second worker's copy loses
    assert len(rule.pool) == 0  # the worker holds no copy of what the pool kept
