"""Curriculum promises: SEC update and policy, grouped draws, refills, env / gym / TRL wiring, resume."""

from __future__ import annotations

import json
import math
import random
import re
from collections.abc import Callable

import gymnasium
import pytest

from loong_env import bridge
from loong_env.curriculum import (
    CurriculumConfig,
    CurriculumSampler,
    SECBandit,
    boltzmann,
    category_gains,
    domain_difficulty,
    split_domain_difficulty,
)
from loong_env.env import SingleStepEnv
from loong_env.errors import ConfigError, UnknownNameError
from loong_env.generators import CategoryGenerators, StaticGenerator
from loong_env.gym import LoongEnv
from loong_env.integrations.trl import curriculum_prompts, make_reward_fn, to_grpo_dataset
from loong_env.runs.metrics import MetricsWriter, StepRecord, read_metrics
from loong_env.seeds.dataset import SeedDataset, load_seeds
from loong_env.types import Action, DataPoint, StepResult

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def seeds() -> SeedDataset:
    return load_seeds()


def item(domain: str, level: int | None, i: int) -> DataPoint:
    question = f"{domain} {level} question {i}"
    return DataPoint(question=question, final_answer=str(i), domain=domain, difficulty=level)


def answer_all(env: SingleStepEnv, correct: Callable[[DataPoint, int], bool]) -> list[StepResult]:
    """Step the current batch: a right boxed answer where `correct(datapoint, slot)` says so, else wrong."""
    actions = []
    for obs, dp in zip(env.observations, env.datapoints, strict=True):
        text = dp.final_answer if correct(dp, obs.index) else "-987654.321"
        actions.append(Action(index=obs.index, llm_response=f"\\boxed{{{text}}}"))
    return env.step_sync(actions)


# ------------------------------------------------------------------------------------------ the bandit


def test_learning_gain_is_the_mean_absolute_advantage_within_each_group():
    mixed = [("a", "p1", r) for r in (1.0, 0.0, 0.0, 1.0)]  # |A| = 0.5 each
    saturated = [("a", "p2", 1.0), ("a", "p2", 1.0)]  # |A| = 0
    hopeless = [("b", "p3", 0.0), ("b", "p3", 0.0)]
    answers = mixed + saturated + hopeless
    gains = category_gains(answers, baselines={})
    assert gains["a"] == pytest.approx((4 * 0.5 + 2 * 0.0) / 6)
    assert gains["b"] == 0.0


def test_a_lone_answer_is_compared_with_its_category_mean_and_counts_for_nothing_without_one():
    assert category_gains([("a", "p1", 1.0)], baselines={}) == {}
    assert category_gains([("a", "p1", 1.0)], baselines={"a": 0.25}) == {"a": pytest.approx(0.75)}


def test_values_follow_gains_by_td0_with_step_size_alpha():
    bandit = SECBandit(["a", "b"], CurriculumConfig(alpha=0.25))
    bandit.update([("a", "p", 1.0), ("a", "p", 0.0)])  # gain 0.5
    assert bandit.values == {"a": pytest.approx(0.125), "b": 0.0}  # b was not answered: unchanged
    bandit.update([("a", "q", 1.0), ("a", "q", 1.0)])  # gain 0
    assert bandit.values["a"] == pytest.approx(0.125 + 0.25 * (0.0 - 0.125))


def test_boltzmann_policy_is_softmax_of_values_over_temperature():
    policy = boltzmann({"a": 0.3, "b": 0.1, "c": 0.1}, temperature=0.1)
    za, zb = math.exp(3), math.exp(1)
    assert policy["a"] == pytest.approx(za / (za + 2 * zb))
    assert sum(policy.values()) == pytest.approx(1.0)
    assert boltzmann({"a": 0.3, "b": 0.1}, temperature=1e6)["a"] == pytest.approx(0.5)


def test_default_category_is_domain_times_difficulty_and_round_trips():
    dp = item("logic", 3, 0)
    assert domain_difficulty(dp) == "logic/d3"
    assert domain_difficulty(item("logic", None, 0)) == "logic/d?"
    assert split_domain_difficulty("number_theory/d4") == ("number_theory", 4)
    assert split_domain_difficulty("logic/d?") == ("logic", None)
    with pytest.raises(ConfigError, match="<domain>/d<difficulty>"):
        split_domain_difficulty("logic")


# ------------------------------------------------------------------------------------------ drawing


def test_draws_repeat_each_problem_group_size_times_in_a_row():
    sampler = CurriculumSampler([item("x", 1, i) for i in range(10)], group_size=4)
    batch = bridge.run(sampler.draw(10, seed=3))
    assert len(batch) == 10
    ids = [dp.id for dp in batch]
    assert ids[0:4] == [ids[0]] * 4 and ids[4:8] == [ids[4]] * 4 and ids[8:10] == [ids[8]] * 2
    assert len({ids[0], ids[4], ids[8]}) == 3  # distinct problems while the category has them


def test_same_seed_and_state_give_the_same_draw():
    items = [item(d, lvl, i) for d in ("x", "y") for lvl in (1, 2) for i in range(3)]

    def ids(seed: int) -> list[str]:
        return [dp.id for dp in bridge.run(CurriculumSampler(items).draw(8, seed=seed))]

    assert ids(11) == ids(11)
    assert ids(11) != ids(12)


def test_a_custom_key_defines_the_arms():
    items = [item("x", 1, i) for i in range(6)]
    sampler = CurriculumSampler(items, key=lambda dp: "even" if int(dp.final_answer) % 2 == 0 else "odd")
    assert sampler.categories == ["even", "odd"]


def test_a_source_that_cannot_be_split_by_category_is_refused():
    class OnlySample:
        async def sample(self) -> DataPoint:
            return item("x", 1, 0)

    with pytest.raises(ConfigError, match="CategorySource"):
        CurriculumSampler(OnlySample())
    with pytest.raises(ConfigError, match="empty"):
        CurriculumSampler([])


class CountingSource:
    """A CategorySource making numbered items of the categories it lists; remembers what it was asked."""

    def __init__(self, categories: list[str], *, dry: frozenset[str] = frozenset()) -> None:
        self._categories = categories
        self.dry = dry
        self.asked: list[tuple[str, int]] = []
        self.made = 0

    def categories(self) -> list[str]:
        return list(self._categories)

    async def generate_for(self, category: str, n: int) -> list[DataPoint]:
        self.asked.append((category, n))
        if category in self.dry:
            return []
        domain, level = split_domain_difficulty(category)
        out = [item(domain, level, 1000 + self.made + i) for i in range(n)]
        self.made += n
        return out


def test_a_category_with_too_few_items_asks_the_source_for_more_instead_of_starving():
    source = CountingSource(["gen/d1", "gen/d2"])
    sampler = CurriculumSampler(source, min_items=3)
    batch = bridge.run(sampler.draw(6, seed=0))
    assert len(batch) == 6
    assert sorted(source.asked) == [("gen/d1", 3), ("gen/d2", 3)]  # each asked once, up to min_items
    assert {domain_difficulty(dp) for dp in batch} == {"gen/d1", "gen/d2"}
    bridge.run(sampler.draw(6, seed=1))
    assert len(source.asked) == 2  # full categories are not asked again


def test_a_category_the_source_cannot_fill_is_set_aside_and_the_draw_goes_elsewhere():
    source = CountingSource(["gen/d1", "gen/d2"], dry=frozenset({"gen/d2"}))
    sampler = CurriculumSampler(source, min_items=2)
    batch = bridge.run(sampler.draw(8, seed=0))
    assert {domain_difficulty(dp) for dp in batch} == {"gen/d1"}
    assert "gen/d2" not in sampler.probabilities()


async def test_category_generators_label_items_with_their_level_and_serve_a_curriculum(seeds):
    logic = seeds.filter(domain="logic")
    gens = CategoryGenerators.by_difficulty(logic, lambda s: StaticGenerator(s, seed=0))
    assert gens.categories() == [f"logic/d{i}" for i in range(1, 6)]
    made = await gens.generate_for("logic/d2", 3)
    assert len(made) == 3 and all(dp.difficulty == 2 and dp.domain == "logic" for dp in made)
    with pytest.raises(UnknownNameError, match="did you mean"):
        await gens.generate_for("logic/d6", 1)
    sampler = CurriculumSampler(gens, min_items=2)
    batch = await sampler.draw(4, seed=0)
    assert all(domain_difficulty(dp) in gens.categories() for dp in batch)


# ------------------------------------------------------------------------------------------ the env


def test_env_without_a_sampler_draws_exactly_as_before(seeds):
    plain = bridge.run(SingleStepEnv(seeds, seed=5).reset(batch_size=6))
    rng = random.Random(5)
    expected = seeds.sample(6, seed=rng.getrandbits(63))
    assert [o.datapoint_id for o in plain] == [dp.id for dp in expected]


def test_env_feeds_its_step_results_to_the_sampler_by_group(seeds):
    sampler = CurriculumSampler(group_size=4, seed=0)
    env = SingleStepEnv(seeds, sampler=sampler, seed=0)
    env.reset_sync(batch_size=8)
    # in every group, slots 0 and 1 are right and 2 and 3 wrong: |advantage| 0.5 for every answer
    results = answer_all(env, lambda dp, index: index % 4 < 2)
    assert [r.reward for r in results] == [1.0, 1.0, 0.0, 0.0] * 2
    [entry] = sampler.history
    assert sum(entry.drawn.values()) == 2 and sum(entry.answers.values()) == 8
    assert all(g == pytest.approx(0.5) for g in entry.gains.values())
    for category in entry.gains:
        assert sampler.values[category] == pytest.approx(sampler.config.alpha * 0.5)


def test_the_sampler_concentrates_on_the_category_with_mixed_results(seeds):
    """A policy that is right on half the answers of one category and always right elsewhere."""
    sampler = CurriculumSampler(group_size=4, temperature=0.05, seed=0)
    env = SingleStepEnv(seeds.filter(domain=["logic", "finance"]), sampler=sampler, seed=0)
    target = "logic/d3"
    for _ in range(12):
        env.reset_sync(batch_size=16)
        answer_all(env, lambda dp, index: domain_difficulty(dp) != target or index % 2 == 0)
    last = [c for entry in sampler.history[-4:] for c, n in entry.drawn.items() for _ in range(n)]
    assert last.count(target) / len(last) > 0.5
    assert sampler.overview()[0].category == target


def test_env_state_saves_and_resumes_the_same_run(seeds, tmp_path):
    def make() -> SingleStepEnv:
        return SingleStepEnv(seeds, sampler=CurriculumSampler(group_size=2, seed=1), seed=9)

    def play(env: SingleStepEnv, steps: int) -> list[str]:
        drawn = []
        for _ in range(steps):
            obs = env.reset_sync(batch_size=6)
            drawn += [o.datapoint_id for o in obs]
            answer_all(env, lambda dp, index: int(dp.id, 16) % 3 == index % 3)
        return drawn

    straight = play(make(), 5)
    first = make()
    head = play(first, 3)
    path = first.save(tmp_path / "env.json")
    json.loads(path.read_text())  # plain JSON
    resumed = make()
    resumed.load(path)
    assert resumed.sampler.values == first.sampler.values and resumed.sampler.history == first.sampler.history
    assert head + play(resumed, 2) == straight
    with pytest.raises(ConfigError, match="sampler"):
        SingleStepEnv(seeds).load(path)


def test_env_writes_a_step_record_with_arm_values(seeds, tmp_path):
    sampler = CurriculumSampler(group_size=2)
    with MetricsWriter(tmp_path / "metrics.jsonl", run="env") as metrics:
        env = SingleStepEnv(seeds, sampler=sampler, metrics=metrics, seed=0)
        for _ in range(2):
            env.reset_sync(batch_size=4)
            answer_all(env, lambda dp, index: index % 2 == 0)
    steps = [r for r in read_metrics(tmp_path).records if isinstance(r, StepRecord)]
    assert [s.step for s in steps] == [1, 2]
    assert steps[-1].values == sampler.values and steps[-1].reward_mean == 0.5
    assert sum(steps[-1].drawn.values()) == 2


def test_gym_face_draws_through_the_sampler_and_feeds_it(seeds):
    sampler = CurriculumSampler(seed=0)
    env = gymnasium.make("loong_env/SingleStep-v0", source=seeds, sampler=sampler, disable_env_checker=True)
    try:
        for episode in range(4):
            env.reset(seed=episode)
            env.step("\\boxed{0}")
        assert sampler.step == 4 and sum(sampler.counts.values()) == 4
    finally:
        env.close()
    assert isinstance(env.unwrapped, LoongEnv)


def test_trl_reward_function_feeds_the_curriculum_by_datapoint_id(seeds):
    ints = SeedDataset([dp for dp in seeds if re.fullmatch(r"-?\d+", dp.final_answer)])
    sampler = CurriculumSampler(ints, seed=0)
    rows = to_grpo_dataset(ints, 2, sampler=sampler)
    reward = make_reward_fn(curriculum=sampler)
    columns = {k: [row[k] for row in rows for _ in range(2)] for k in ("answer", "domain", "datapoint_id")}
    completions = [c for row in rows for c in (f"\\boxed{{{row['answer']}}}", "\\boxed{x}")]
    assert reward(prompts=None, completions=completions, **columns) == [1.0, 0.0, 1.0, 0.0]
    assert all(g == pytest.approx(0.5) for g in sampler.history[-1].gains.values())
    with pytest.raises(ConfigError, match="datapoint_id"):
        reward(prompts=None, completions=completions, answer=columns["answer"])


def test_trl_prompt_stream_is_drawn_lazily_through_the_curriculum(seeds):
    sampler = CurriculumSampler(seed=0)
    stream = iter(curriculum_prompts(seeds, sampler))
    rows = [next(stream) for _ in range(3)]
    assert sum(sampler.counts.values()) == 3
    assert all(sampler.category_of(row["datapoint_id"]) for row in rows)
