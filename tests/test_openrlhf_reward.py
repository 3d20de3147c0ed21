"""OpenRLHF's reward file: loaded and called exactly as OpenRLHF 0.11's single-turn executor does."""

from __future__ import annotations

import asyncio
import importlib.util
import json

import pytest

import loong_env.integrations.openrlhf_reward as reward_file
from loong_env.integrations.keys import key_label
from loong_env.types import AnswerKey

pytestmark = pytest.mark.timeout(60)

PROMPT = "<|im_start|>user\nA train covers 14.7 m/s. Speed in km/h? Put it in \\boxed{}.<|im_end|>\n<|im_start|>assistant\n"


def load_as_openrlhf_does():
    """openrlhf/utils/agent.py: spec_from_file_location("reward_func", path), then `.reward_func`."""
    spec = importlib.util.spec_from_file_location("reward_func", reward_file.__file__)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.reward_func


async def one_sample_per_call(reward_func, samples):
    """OpenRLHF offloads each sample to a thread: reward_func([query], [prompt], [label])."""
    calls = [
        asyncio.to_thread(reward_func, [PROMPT + response], [PROMPT], [label]) for response, label in samples
    ]
    return await asyncio.gather(*calls)


def test_the_reward_file_answers_openrlhfs_single_sample_calls_with_rewards_scores_and_logs():
    reward_func = load_as_openrlhf_does()
    physics = key_label(AnswerKey(reference="14.7 m/s", domain="physics", verifier="physics_units"))
    samples = [
        ("So it is \\boxed{52.92 km/h}.<|im_end|>", physics),  # the physics plug-in converts units
        ("I think \\boxed{50 km/h}<|im_end|>", physics),
        ("no idea<|im_end|>", "42"),  # a bare answer is a label too
        ("\\boxed{42}<|im_end|>", None),  # no label: scored 0 with a reason, never an exception
    ]
    answers = asyncio.run(one_sample_per_call(reward_func, samples))
    assert [a["rewards"] for a in answers] == [[1.0], [0.0], [0.0], [0.0]]
    assert [a["scores"] for a in answers] == [[1.0], [0.0], [0.0], [0.0]]
    assert all(set(a) == {"rewards", "scores", "extra_logs"} for a in answers)
    assert answers[0]["extra_logs"]["correct"] == [1.0] and answers[3]["extra_logs"]["verifier_error"] == [
        1.0
    ]
    json.dumps(answers)  # plain numbers: what OpenRLHF turns into tensors
