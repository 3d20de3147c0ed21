"""TRL GRPO reward promises: same verdicts as the env, str or chat completions, sync and async, dataset columns."""

from __future__ import annotations

import asyncio
import inspect
import json
import re

import pytest

from loong_env.env import BOXED_INSTRUCTION
from loong_env.integrations.trl import (
    areward_fn,
    completion_text,
    format_reward_fn,
    make_async_reward_fn,
    make_reward_fn,
    reward_fn,
    to_grpo_dataset,
)
from loong_env.seeds.dataset import DomainConfig, SeedDataset, load_seeds
from loong_env.types import DataPoint

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def int_seeds() -> SeedDataset:
    seeds = load_seeds()
    return SeedDataset([dp for dp in seeds if re.fullmatch(r"-?\d+", dp.final_answer)])


@pytest.fixture(scope="module")
def dataset(int_seeds):
    return to_grpo_dataset(int_seeds, 8, seed=0)


def four_completions(answer: str) -> list[str]:
    return [
        f"Step by step... so the answer is \\boxed{{{answer}}}.",
        f"\\boxed{{{int(answer) + 1}}}",
        f"The answer is {answer}.",
        "\x00\\boxed{{{ ]]]",
    ]


def test_dataset_has_prompt_and_the_columns_the_reward_reads(dataset, int_seeds):
    assert len(dataset) == 8
    assert {"prompt", "answer", "domain", "tolerance", "verifier", "requirements", "datapoint_id"} <= set(
        dataset.column_names
    )
    lookup = {dp.id: dp for dp in int_seeds}
    for row in dataset:
        dp = lookup[row["datapoint_id"]]
        assert row["answer"] == dp.final_answer and row["domain"] == dp.domain
        assert row["prompt"].startswith(dp.question) and row["prompt"].endswith(BOXED_INSTRUCTION)


def test_dataset_is_deterministic_under_its_seed(int_seeds):
    a = to_grpo_dataset(int_seeds, 6, seed=3)["datapoint_id"]
    b = to_grpo_dataset(int_seeds, 6, seed=3)["datapoint_id"]
    c = to_grpo_dataset(int_seeds, 6, seed=4)["datapoint_id"]
    assert a == b and a != c


def test_reward_fn_gives_exact_rewards_for_the_four_kinds_of_answer(dataset):
    row = dataset[0]
    completions = four_completions(row["answer"])
    columns = {k: [row[k]] * 4 for k in dataset.column_names if k != "prompt"}
    rewards = reward_fn(prompts=[row["prompt"]] * 4, completions=completions, **columns)
    assert rewards == [1.0, 0.0, 0.0, 0.0]


def test_reward_fn_reads_chat_message_completions(dataset):
    rows = [dataset[i] for i in range(4)]
    completions = [[{"role": "assistant", "content": f"\\boxed{{{r['answer']}}}"}] for r in rows]
    columns = {k: [r[k] for r in rows] for k in dataset.column_names if k != "prompt"}
    prompts = [[{"role": "user", "content": r["prompt"]}] for r in rows]
    assert reward_fn(prompts=prompts, completions=completions, **columns) == [1.0] * 4
    assert completion_text([{"role": "assistant", "content": [{"type": "text", "text": "hi"}]}]) == "hi"


async def test_async_reward_fn_matches_the_sync_one(dataset):
    assert inspect.iscoroutinefunction(areward_fn)  # TRL awaits coroutine functions
    row = dataset[1]
    completions = four_completions(row["answer"])
    columns = {k: [row[k]] * 4 for k in dataset.column_names if k != "prompt"}
    sync_rewards = await asyncio.to_thread(
        reward_fn, prompts=[row["prompt"]] * 4, completions=completions, **columns
    )
    async_rewards = await areward_fn(prompts=[row["prompt"]] * 4, completions=completions, **columns)
    assert async_rewards == sync_rewards == [1.0, 0.0, 0.0, 0.0]


def test_rows_without_an_answer_get_none_so_trl_skips_them():
    rewards = reward_fn(prompts=["q", "q"], completions=["\\boxed{3}", "\\boxed{3}"], answer=["3", None])
    assert rewards == [1.0, None]


def test_extra_trl_columns_are_ignored_and_names_are_set():
    rewards = reward_fn(
        prompts=["q"], completions=["\\boxed{7}"], answer=["7"], completions_ids=[[1, 2]], trainer_state=None
    )
    assert rewards == [1.0]
    assert make_reward_fn(name="acc").__name__ == "acc"
    assert make_async_reward_fn(name="acc_async").__name__ == "acc_async"


def test_format_reward_fn():
    assert format_reward_fn(completions=["\\boxed{1}", "\\boxed{1} \\boxed{2}", "none"]) == [1.0, 0.0, 0.0]


def test_plugin_domains_are_judged_by_their_plugin_through_the_dataset_columns():
    points = [DataPoint(question="Speed of 147 m in 10 s?", final_answer="14.7 m/s", domain="toy_physics")]
    source = SeedDataset(points, {"toy_physics": DomainConfig(name="toy_physics", verifier="physics_units")})
    ds = to_grpo_dataset(source, 1, seed=0)
    assert ds[0]["verifier"] == "physics_units"
    columns = {k: [ds[0][k]] * 3 for k in ds.column_names if k != "prompt"}
    rewards = reward_fn(
        prompts=[ds[0]["prompt"]] * 3,
        completions=["\\boxed{52.92 km/h}", "\\boxed{14.7 m}", "\\boxed{14.7}"],
        **columns,
    )
    assert rewards == [1.0, 0.0, 0.0]


def test_tolerance_column_is_json_and_applied():
    points = [
        DataPoint(
            question="Approximate pi.", final_answer="3.14159", domain="toy", answer_tolerance={"rel": 0.01}
        )
    ]
    ds = to_grpo_dataset(SeedDataset(points), 1)
    assert json.loads(ds[0]["tolerance"]) == {"rel": 0.01}
    columns = {k: [ds[0][k]] * 2 for k in ds.column_names if k != "prompt"}
    assert reward_fn(prompts=["p"] * 2, completions=["\\boxed{3.14}", "\\boxed{3.0}"], **columns) == [
        1.0,
        0.0,
    ]
