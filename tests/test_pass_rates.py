"""Pass rates that follow the policy: decayed per-item rates, saved with the env, and the zero-variance filter."""

from __future__ import annotations

import statistics

import pytest

from loong_env.curriculum import CurriculumSampler
from loong_env.curriculum.pass_rates import PassRateConfig, PassRateTracker, draw_skipping
from loong_env.env import SingleStepEnv
from loong_env.runs.diagnostics import reward_groups, zero_variance_fraction
from loong_env.types import Action, DataPoint

pytestmark = pytest.mark.timeout(60)

KINDS = ("easy", "mixed", "hard")  # the scripted policy: always right, right on half the copies, never right


def items(per_kind: int = 8) -> list[DataPoint]:
    return [
        DataPoint(question=f"{kind} question {i}", final_answer=str(100 + i), domain="scripted", tags=[kind])
        for kind in KINDS
        for i in range(per_kind)
    ]


def scripted_step(env: SingleStepEnv) -> float | None:
    """Answer the batch like a fixed policy; returns the step's zero-variance group fraction."""
    actions = []
    for obs, dp in zip(env.observations, env.datapoints, strict=True):
        right = dp.tags[0] == "easy" or (dp.tags[0] == "mixed" and obs.index % 2 == 0)
        actions.append(Action(index=obs.index, llm_response=f"\\boxed{{{dp.final_answer if right else -1}}}"))
    results = env.step_sync(actions)
    return zero_variance_fraction(reward_groups((r.datapoint.id, r.reward) for r in results))


def run(filtered: bool, steps: int = 16, batch: int = 16) -> tuple[list[float], list[int], list[int]]:
    """Zero-variance fraction per step, batch sizes, and skips, with one category (the bandit stays neutral)."""
    sampler = CurriculumSampler(group_size=4, key=lambda dp: "all", seed=3)
    env = SingleStepEnv(items(4), sampler=sampler, seed=5, filter_zero_variance=filtered)
    fractions, sizes, skipped = [], [], []
    for _ in range(steps):
        sizes.append(len(env.reset_sync(batch_size=batch)))
        skipped.append(env.skipped)
        fraction = scripted_step(env)
        assert fraction is not None
        fractions.append(fraction)
    return fractions, sizes, skipped


def test_the_filter_cuts_zero_variance_groups_and_the_batch_size_holds():
    plain, plain_sizes, plain_skipped = run(filtered=False)
    kept, kept_sizes, kept_skipped = run(filtered=True)
    print("\nstep  zero-variance groups: no filter | filter  (skipped)")
    for i, (a, b, s) in enumerate(zip(plain, kept, kept_skipped, strict=True)):
        print(f"{i + 1:4d}  {a:.2f} | {b:.2f}  ({s})")
    assert plain_sizes == kept_sizes == [16] * 16
    assert plain_skipped == [0] * 16
    # two of three kinds are all-same for this policy: without the filter about 2/3 of groups teach nothing
    assert statistics.fmean(plain[4:]) > 0.4
    # once the all-same items were seen twice each, the filter serves the mixed ones and skips the rest
    assert statistics.fmean(kept[10:]) < 0.1
    assert sum(kept_skipped) > 0


def test_pass_rates_decay_towards_the_recent_rewards():
    tracker = PassRateTracker(decay=0.5)
    tracker.record(1, [("a", 1.0), ("a", 1.0)])
    assert tracker.pass_rate("a") == 1.0
    tracker.record(2, [("a", 0.0), ("a", 0.0)])
    assert tracker.pass_rate("a") == pytest.approx((0.5 * 2) / (0.5 * 2 + 2))  # the old group counts half
    assert tracker.pass_rate("b") is None
    assert tracker.rates() == {"a": tracker.pass_rate("a")}


def test_an_item_is_skipped_only_while_its_recent_groups_all_had_zero_variance():
    tracker = PassRateTracker(window=2, max_age=10)
    tracker.record(1, [("a", 1.0), ("a", 1.0), ("b", 0.0), ("b", 1.0), ("c", 0.0)])
    assert tracker.stale_ids(1) == set()  # one all-same group is not yet "recent groups all"
    tracker.record(2, [("a", 1.0), ("a", 1.0), ("b", 0.0), ("b", 0.0), ("c", 0.0)])
    assert tracker.stale_ids(2) == {"a"}  # b had a mixed group; c's lone answers show no variance
    assert tracker.stale_ids(11) == {"a"} and tracker.stale_ids(12) == set()  # old evidence is forgotten


def test_the_env_keeps_pass_rates_and_saves_them(tmp_path):
    env = SingleStepEnv(items(2), sampler=CurriculumSampler(group_size=2, seed=0), seed=1)
    for _ in range(3):
        env.reset_sync(batch_size=6)
        scripted_step(env)
    rates = env.pass_rates.rates()
    assert rates and all(0.0 <= r <= 1.0 for r in rates.values())
    easy = {dp.id for dp in items(2) if dp.tags[0] == "easy"}
    assert all(rates[i] == 1.0 for i in easy if i in rates)
    resumed = SingleStepEnv(items(2), sampler=CurriculumSampler(group_size=2, seed=0), seed=1)
    resumed.load(env.save(tmp_path / "env.json"))
    assert resumed.pass_rates.rates() == rates
    assert resumed.pass_rates.stale_ids(env.steps) == env.pass_rates.stale_ids(env.steps)


def test_uniform_draws_put_skipped_items_back_and_hold_the_batch_size():
    pool = items(4)
    skip = {dp.id for dp in pool if dp.tags[0] != "mixed"}

    async def draw(n: int, seed: int) -> list[DataPoint]:
        import random

        return random.Random(seed).sample(pool, n)

    import asyncio

    got, skipped = asyncio.run(draw_skipping(draw, 4, 0, skip))
    assert len(got) == 4 and {dp.tags[0] for dp in got} == {"mixed"} and len({dp.id for dp in got}) == 4
    assert skipped > 0
    # nothing left but skipped items: they fill the batch rather than shrink it
    everything = {dp.id for dp in pool}
    got, skipped = asyncio.run(draw_skipping(draw, 6, 1, everything))
    assert len(got) == 6 and skipped == 0


def test_filter_works_without_a_sampler():
    pool = items(4)
    env = SingleStepEnv(pool, seed=0, filter_zero_variance=True, pass_rates=PassRateConfig(window=1))
    stale = [dp.id for dp in pool if dp.tags[0] != "mixed"]
    env.pass_rates.record(0, [(i, 1.0) for i in stale for _ in range(2)])
    obs = env.reset_sync(batch_size=4)
    assert len(obs) == 4 and not {o.datapoint_id for o in obs} & set(stale) and env.skipped > 0


def test_the_curriculum_swaps_skipped_items_within_the_chosen_category_and_counts_only_what_it_serves():
    pool = [
        DataPoint(question=f"{c} {i}", final_answer="1", domain=c, difficulty=1)
        for c in "ab"
        for i in range(4)
    ]
    skip = {dp.id for dp in pool if dp.domain == "a"}
    skip.remove(pool[3].id)  # a keeps one fresh item
    sampler = CurriculumSampler(pool, group_size=2, seed=0)
    import asyncio

    drawn = asyncio.run(sampler.draw(8, seed=1, skip=skip))
    assert len(drawn) == 8 and not {dp.id for dp in drawn} & skip
    assert (
        sum(sampler.counts.values()) == 4
    )  # four problems drawn, four counted: nothing drawn and thrown away
    # a category holding only skipped items is not chosen while another can serve
    skip.add(pool[3].id)
    drawn = asyncio.run(sampler.draw(8, seed=2, skip=skip))
    assert {dp.domain for dp in drawn} == {"b"}


def test_filter_works_with_a_generator_source():
    pool = items(2)

    class Cycle:
        def __init__(self) -> None:
            self.n = 0

        async def sample(self) -> DataPoint:
            self.n += 1
            return pool[self.n % len(pool)]

    env = SingleStepEnv(Cycle(), filter_zero_variance=True, pass_rates=PassRateConfig(window=1))
    stale = [dp.id for dp in pool if dp.tags[0] == "easy"]
    env.pass_rates.record(0, [(i, 1.0) for i in stale for _ in range(2)])
    obs = env.reset_sync(batch_size=3)
    assert len(obs) == 3 and not {o.datapoint_id for o in obs} & set(stale) and env.skipped > 0
