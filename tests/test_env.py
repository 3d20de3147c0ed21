"""SingleStepEnv promises: seeded independent draws, exact per-item rewards, clear misuse errors."""

from __future__ import annotations

import asyncio
import re

import pytest

from loong_env import bridge
from loong_env.env import BOXED_INSTRUCTION, SingleStepEnv
from loong_env.errors import (
    AlreadySteppedError,
    ConfigError,
    InvalidActionError,
    LoongError,
    NotResetError,
    UnknownIndexError,
)
from loong_env.rewards import format_reward
from loong_env.routing import is_code_response
from loong_env.seeds.dataset import DomainConfig, SeedDataset, load_seeds
from loong_env.types import Action, DataPoint, Observation, StepResult, VerificationStatus
from loong_env.verifiers.base import Verifier

pytestmark = pytest.mark.timeout(60)

INT = re.compile(r"-?\d+")


@pytest.fixture(scope="module")
def seeds() -> SeedDataset:
    return load_seeds()


@pytest.fixture(scope="module")
def int_seeds(seeds: SeedDataset) -> SeedDataset:
    """Seeds with integer answers: a wrong answer (answer + 1) is then unambiguous."""
    items = [dp for dp in seeds if INT.fullmatch(dp.final_answer.strip())]
    assert len(items) >= 8, "the seed library should hold at least 8 integer-answer seeds"
    return SeedDataset(items, {d: seeds.domain_config(d) for d in seeds.domains})


def by_id(seeds: SeedDataset) -> dict[str, DataPoint]:
    return {dp.id: dp for dp in seeds}


def responses_for(dp: DataPoint) -> dict[str, str]:
    """The four kinds of answer a policy gives, for one integer-answer datapoint."""
    wrong = str(int(dp.final_answer) + 1)
    return {
        "correct": f"Counting carefully, the result is \\boxed{{{dp.final_answer}}}.",
        "wrong": f"I think it is \\boxed{{{wrong}}}.",
        "unboxed": f"The answer is {dp.final_answer}.",
        "garbage": "\x00\ufffd\\boxed{{{ ]]]} \U0001f600" * 3,
    }


EXPECTED = {
    "correct": (1.0, VerificationStatus.correct),
    "wrong": (0.0, VerificationStatus.incorrect),
    "unboxed": (0.0, VerificationStatus.no_answer),
}


async def test_reset_always_returns_a_list_of_observations(seeds):
    env = SingleStepEnv(seeds)
    [obs] = await env.reset(seed=0)
    assert isinstance(obs, Observation)
    assert obs.index == 0 and obs.datapoint_id in by_id(seeds)
    assert obs.difficulty == by_id(seeds)[obs.datapoint_id].difficulty
    assert len(await env.reset(batch_size=3, seed=0)) == 3


async def test_reset_draws_the_same_questions_under_the_same_seed(seeds):
    a = await SingleStepEnv(seeds).reset(batch_size=8, seed=42)
    b = await SingleStepEnv(seeds).reset(batch_size=8, seed=42)
    c = await SingleStepEnv(seeds).reset(batch_size=8, seed=43)
    assert [o.datapoint_id for o in a] == [o.datapoint_id for o in b]
    assert [o.datapoint_id for o in a] != [o.datapoint_id for o in c]
    assert [o.index for o in a] == list(range(8))


async def test_reset_draws_are_not_a_contiguous_slice(seeds):
    order = {dp.id: i for i, dp in enumerate(seeds)}
    contiguous = 0
    for seed in range(5):
        obs = await SingleStepEnv(seeds).reset(batch_size=4, seed=seed)
        positions = [order[o.datapoint_id] for o in obs]
        contiguous += positions == list(range(positions[0], positions[0] + 4))
    assert contiguous < 5


async def test_unseeded_resets_continue_a_reproducible_stream(seeds):
    env_a, env_b = SingleStepEnv(seeds, seed=7), SingleStepEnv(seeds, seed=7)
    first = [(await env_a.reset(batch_size=4)) for _ in range(3)]
    second = [(await env_b.reset(batch_size=4)) for _ in range(3)]
    ids = lambda batches: [[o.datapoint_id for o in b] for b in batches]
    assert ids(first) == ids(second)
    assert ids(first)[0] != ids(first)[1]


async def test_loop_over_seeds_gives_exact_rewards_per_kind_of_answer(int_seeds):
    env = SingleStepEnv(int_seeds)
    lookup = by_id(int_seeds)
    kinds = ["correct", "wrong", "unboxed", "garbage"]
    for round_seed in range(3):
        obs = await env.reset(batch_size=8, seed=round_seed)
        actions = [
            Action(index=o.index, llm_response=responses_for(lookup[o.datapoint_id])[kinds[o.index % 4]])
            for o in obs
        ]
        results = await env.step(actions)
        assert len(results) == 8
        for o, r in zip(obs, results, strict=True):
            kind = kinds[o.index % 4]
            assert r.observation == o and r.done is True
            assert r.datapoint.id == o.datapoint_id
            verification = r.verification
            if kind == "garbage":
                assert r.reward == 0.0 and verification.status is not VerificationStatus.correct
            else:
                reward, status = EXPECTED[kind]
                assert (r.reward, verification.status) == (reward, status), (kind, verification)
            assert r.rewards == {"correctness": r.reward}


async def test_every_seed_answer_boxed_verbatim_is_correct(seeds):
    env = SingleStepEnv(seeds)
    obs = await env.reset(batch_size=len(seeds), seed=3)  # a draw of len(seeds) without replacement: all
    assert {o.datapoint_id for o in obs} == set(by_id(seeds))
    lookup = by_id(seeds)
    results = await env.step({o.index: f"\\boxed{{{lookup[o.datapoint_id].final_answer}}}" for o in obs})
    wrong = [(r.datapoint.final_answer, r.verification.reason) for r in results if r.reward != 1.0]
    assert wrong == []


async def test_partial_batches_and_all_action_forms(int_seeds):
    env = SingleStepEnv(int_seeds)
    lookup = by_id(int_seeds)
    obs = await env.reset(batch_size=4, seed=1)
    answer = lambda i: f"\\boxed{{{lookup[obs[i].datapoint_id].final_answer}}}"
    [single] = await env.step(Action(index=2, llm_response=answer(2)))
    assert isinstance(single, StepResult) and single.reward == 1.0 and single.observation.index == 2
    assert env.pending == [0, 1, 3]
    listed = await env.step({3: answer(3), 0: "no idea"})
    assert [r.observation.index for r in listed] == [3, 0]
    assert [r.reward for r in listed] == [1.0, 0.0]
    assert env.pending == [1]

    [one] = await env.reset(seed=5)
    [listed_one] = await env.step([Action(index=0, llm_response=f"\\boxed{{{lookup[one.datapoint_id].final_answer}}}")])
    assert listed_one.reward == 1.0
    await env.reset(seed=5)
    with pytest.raises(InvalidActionError, match="got str"):
        await env.step("\\boxed{1}")  # type: ignore[arg-type]


async def test_step_before_reset_is_a_clear_error(seeds):
    env = SingleStepEnv(seeds)
    with pytest.raises(NotResetError, match="before reset"):
        await env.step({0: "\\boxed{1}"})


async def test_stepping_an_index_twice_is_a_clear_error(seeds):
    env = SingleStepEnv(seeds)
    await env.reset(batch_size=2, seed=0)
    await env.step({0: "\\boxed{1}"})
    with pytest.raises(AlreadySteppedError, match="index 0 was already stepped"):
        await env.step({0: "\\boxed{2}"})
    with pytest.raises(AlreadySteppedError, match="more than once"):
        await env.step([Action(index=1, llm_response="a"), Action(index=1, llm_response="b")])
    assert env.pending == [1]  # a rejected call claims nothing


async def test_unknown_index_is_a_clear_error(seeds):
    env = SingleStepEnv(seeds)
    await env.reset(batch_size=3, seed=0)
    with pytest.raises(UnknownIndexError, match=r"index 3 .*valid: 0\.\.2"):
        await env.step({3: "\\boxed{1}"})
    with pytest.raises(UnknownIndexError):
        await env.step(Action(index=-1, llm_response="x"))
    assert issubclass(UnknownIndexError, LoongError) and issubclass(NotResetError, LoongError)


class _FailsOnMarker(Verifier):
    """A user-supplied verifier that crashes on one response: stands in for a buggy plug-in."""

    name = "fails_on_marker"

    def __init__(self, inner: Verifier) -> None:
        self.inner = inner

    async def verify(self, response, reference, *, tolerance=None):
        if "CRASH" in response:
            raise RuntimeError("plug-in bug")
        return await self.inner.verify(response, reference, tolerance=tolerance)


async def test_a_crashing_verifier_affects_only_its_own_item(int_seeds):
    from loong_env.verifiers.boxed import BoxedAnswerVerifier

    env = SingleStepEnv(int_seeds, _FailsOnMarker(BoxedAnswerVerifier()), route=False)
    lookup = by_id(int_seeds)
    obs = await env.reset(batch_size=3, seed=2)
    results = await env.step(
        {
            o.index: ("CRASH" if o.index == 1 else f"\\boxed{{{lookup[o.datapoint_id].final_answer}}}")
            for o in obs
        }
    )
    assert [r.reward for r in results] == [1.0, 0.0, 1.0]
    assert results[1].verification.status is VerificationStatus.error
    assert "plug-in bug" in results[1].verification.reason


async def test_extra_reward_functions_are_reported_by_name_and_weighted(int_seeds):
    async def brevity(response, datapoint, verification):
        return 1.0 if len(response) < 40 else 0.0

    env = SingleStepEnv(
        int_seeds, reward_fns=[format_reward, brevity], reward_weights={"format_reward": 0.5, "brevity": 0.25}
    )
    lookup = by_id(int_seeds)
    obs = await env.reset(batch_size=2, seed=4)
    ans = [lookup[o.datapoint_id].final_answer for o in obs]
    results = await env.step({0: f"\\boxed{{{ans[0]}}}", 1: f"{ans[1]} " + "words " * 20})
    assert results[0].rewards == {"correctness": 1.0, "format_reward": 1.0, "brevity": 1.0}
    assert results[0].reward == 1.0 + 0.5 + 0.25
    assert results[1].rewards == {"correctness": 0.0, "format_reward": 0.0, "brevity": 0.0}
    assert results[1].reward == 0.0


async def test_instruction_is_appended_to_the_question(seeds):
    env = SingleStepEnv(seeds, instruction=BOXED_INSTRUCTION)
    [obs] = await env.reset(seed=0)
    assert obs.question.endswith(BOXED_INSTRUCTION)
    assert obs.question.startswith(by_id(seeds)[obs.datapoint_id].question)


class _CountingSource:
    """A minimal generator-style source: async sample(), no seed (as loong_env.generators provide)."""

    def __init__(self, items: list[DataPoint]) -> None:
        self.items, self.calls = items, 0

    async def sample(self) -> DataPoint:
        self.calls += 1
        await asyncio.sleep(0)
        return self.items[self.calls % len(self.items)]


async def test_async_sample_sources_plug_in(int_seeds):
    source = _CountingSource(list(int_seeds))
    env = SingleStepEnv(source)
    obs = await env.reset(batch_size=3)
    assert source.calls == 3
    dps = env.datapoints
    results = await env.step({o.index: f"\\boxed{{{dps[o.index].final_answer}}}" for o in obs})
    assert [r.reward for r in results] == [1.0, 1.0, 1.0]


def test_code_answers_route_to_the_python_verifier_with_the_domain_requirements(seeds):
    from loong_env.verifiers.python import PythonVerifier

    env = SingleStepEnv(seeds)
    dp = seeds[0]
    code = "Here is my program:\n```python\nprint(66)\n```"
    assert is_code_response(code) and not is_code_response(code + " so \\boxed{66}")
    key = env.router.key(dp)
    chosen = env.router.verifier_for(key, code)
    assert isinstance(chosen, PythonVerifier)
    assert chosen.sandbox.requirements == sorted(seeds.domain_config(dp.domain).requirements)
    assert env.router.verifier_for(key, code) is chosen  # one per requirement set
    assert not isinstance(env.router.verifier_for(key, "\\boxed{66}"), PythonVerifier)


async def test_domain_plugin_judges_its_domain():
    points = [
        DataPoint(
            question="A car covers 147 m in 10 s. Its speed?", final_answer="14.7 m/s", domain="toy_physics"
        ),
    ]
    configs = {"toy_physics": DomainConfig(name="toy_physics", verifier="physics_units")}
    env = SingleStepEnv(SeedDataset(points, configs))
    await env.reset(seed=0)
    [result] = await env.step({0: "The speed is \\boxed{52.92 km/h}"})
    assert result.reward == 1.0 and result.verifier == "physics_units"
    await env.reset(seed=0)
    [result] = await env.step({0: "\\boxed{14.7}"})
    assert result.verification.reason.startswith("missing unit")


def test_sync_face_works_inside_a_running_event_loop(int_seeds):
    lookup = by_id(int_seeds)

    async def inside_loop() -> float:
        env = SingleStepEnv(int_seeds)
        [obs] = env.reset_sync(seed=9)  # a sync call while this loop is running, as in Jupyter
        [result] = env.step_sync({0: f"\\boxed{{{lookup[obs.datapoint_id].final_answer}}}"})
        return result.reward

    assert asyncio.run(inside_loop()) == 1.0
    assert bridge.run(asyncio.sleep(0, result=5)) == 5


def test_bad_sources_are_rejected_with_a_clear_message():
    with pytest.raises(ConfigError, match="async sample"):
        SingleStepEnv(object())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="empty"):  # a ConfigError is a ValueError too
        SingleStepEnv([])


async def test_code_answers_are_run_in_the_sandbox_and_judged_per_item():
    points = [DataPoint(question="What is 6 * 7?", final_answer="42", domain="toy_arithmetic")]
    env = SingleStepEnv(points)  # no domain config: stdlib-only code
    await env.reset(batch_size=3, seed=0)
    results = await env.step(
        {
            0: "I will compute it.\n```python\nprint(6 * 7)\n```",
            1: "```python\nprint(41)\n```",
            2: "```python\nraise SystemExit(3)\n```",
        }
    )
    assert [r.reward for r in results] == [1.0, 0.0, 0.0]
    assert {r.verifier for r in results} == {"python"}
    assert [r.verification.status for r in results] == [
        VerificationStatus.correct,
        VerificationStatus.incorrect,
        VerificationStatus.error,
    ]
