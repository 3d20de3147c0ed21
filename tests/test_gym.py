"""The gymnasium face: registered id, check_env, seeded determinism, exact rewards, vector envs, Jupyter."""

from __future__ import annotations

import asyncio
import warnings

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import loong_env.gym  # noqa: F401  (registers loong_env/SingleStep-v0)
from loong_env.errors import NotResetError
from loong_env.gym import BASE_CHARSET, ENV_ID, LoongEnv
from loong_env.seeds.dataset import load_seeds

pytestmark = pytest.mark.timeout(90)

DOMAIN = "graph_discrete_math"


@pytest.fixture(scope="module")
def answers() -> dict[str, str]:
    return {dp.id: dp.final_answer for dp in load_seeds()}


def test_make_by_registered_id_and_check_env_passes():
    env = gymnasium.make(ENV_ID, domains=[DOMAIN])
    assert isinstance(env.unwrapped, LoongEnv)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any checker warning is a failure, not noise
        check_env(env.unwrapped, skip_render_check=True)
    env.close()


def test_spaces_hold_latex_and_unicode():
    env = LoongEnv([DOMAIN])
    for text in ["\\boxed{\\frac{\\sqrt{2}}{2}}", "α ≤ β ⇒ ∀x∈ℝ", "𝑥² + 𝔽 😀", "答案是 \\boxed{42}\n"]:
        assert env.action_space.contains(text), text
    assert env.action_space.contains("")  # an empty answer is a valid (wrong) answer
    assert {"\\", "{", "}", "$", "^", "_"} <= BASE_CHARSET


def test_seeded_reset_is_deterministic_and_info_locates_the_datapoint(answers):
    env = LoongEnv([DOMAIN])
    q1, info1 = env.reset(seed=11)
    q2, info2 = env.reset(seed=11)
    assert (q1, info1["datapoint_id"]) == (q2, info2["datapoint_id"])
    assert info1["domain"] == DOMAIN and info1["datapoint_id"] in answers
    assert env.observation_space.contains(q1)


def test_step_rewards_are_exact_and_the_episode_terminates(answers):
    env = LoongEnv([DOMAIN])
    cases = {"correct": 1.0, "wrong": 0.0, "unboxed": 0.0, "garbage": 0.0}
    for i, (kind, expected) in enumerate(cases.items()):
        question, info = env.reset(seed=100 + i)
        answer = answers[info["datapoint_id"]]
        text = {
            "correct": f"Therefore \\boxed{{{answer}}}.",
            "wrong": "Therefore \\boxed{-123456789}.",
            "unboxed": f"The answer is {answer}",
            "garbage": "\\boxed{{{ ]] \x00",
        }[kind]
        obs, reward, terminated, truncated, step_info = env.step(text)
        assert (reward, terminated, truncated) == (expected, True, False), (kind, step_info)
        assert obs == question and step_info["reference"] == answer
        assert step_info["rewards"]["correctness"] == expected


def test_step_before_reset_raises():
    env = LoongEnv([DOMAIN])
    with pytest.raises(NotResetError):
        env.step("\\boxed{1}")


def test_sync_vector_env_steps_every_copy(answers):
    envs = gymnasium.make_vec(ENV_ID, num_envs=3, vectorization_mode="sync", domains=[DOMAIN])
    questions, infos = envs.reset(seed=5)
    assert len(questions) == 3
    ids = list(infos["datapoint_id"])
    actions = (f"\\boxed{{{answers[ids[0]]}}}", "\\boxed{-987654321}", f"\\boxed{{{answers[ids[2]]}}}")
    _, rewards, terminated, truncated, _ = envs.step(actions)
    assert np.array_equal(rewards, [1.0, 0.0, 1.0])
    assert terminated.all() and not truncated.any()
    envs.close()


def test_works_when_an_event_loop_is_already_running(answers):
    async def notebook_cell() -> float:
        env = LoongEnv([DOMAIN])
        _, info = env.reset(seed=3)
        return env.step(f"\\boxed{{{answers[info['datapoint_id']]}}}")[1]

    assert asyncio.run(notebook_cell()) == 1.0


def test_render_ansi_shows_question_and_verdict():
    env = LoongEnv([DOMAIN], render_mode="ansi")
    question, _ = env.reset(seed=0)
    env.step("\\boxed{-1}")
    text = env.render()
    assert text.startswith(question) and "reward 0.0" in text
