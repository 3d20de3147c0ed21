"""verl promises: compute_score has verl's signature and return shape, routes per domain, never raises per item."""

from __future__ import annotations

import asyncio
import inspect
import json

import pytest

from loong_env.integrations.verl import acompute_score, compute_score, to_verl_dataset
from loong_env.seeds.dataset import load_seeds

pytestmark = pytest.mark.timeout(120)

KEYS = {"score", "acc", "pred", "status", "verifier", "verifier_version", "dataset_version", "reason"}


def test_signature_is_the_one_verl_calls_with_keywords():
    params = inspect.signature(compute_score).parameters
    assert list(params)[:4] == ["data_source", "solution_str", "ground_truth", "extra_info"]
    assert params["extra_info"].default is None
    assert any(p.kind is p.VAR_KEYWORD for p in params.values())  # verl adds reward_kwargs
    assert inspect.iscoroutinefunction(acompute_score) and not inspect.iscoroutinefunction(compute_score)


def test_score_is_a_dict_with_the_same_keys_every_time():
    right = compute_score(data_source="loong/number_theory_combinatorics", solution_str="so \\boxed{12}",
                          ground_truth="12", extra_info={"index": 0})
    wrong = compute_score("loong/number_theory_combinatorics", "\\boxed{13}", "12")
    empty = compute_score("anything", "", "12", None, reward_router_address=None)
    assert set(right) == set(wrong) == set(empty) == KEYS
    assert (right["score"], right["acc"], right["pred"], right["status"]) == (1.0, 1.0, "12", "correct")
    assert (wrong["score"], wrong["pred"]) == (0.0, "13")
    assert (empty["score"], empty["status"], empty["pred"]) == (0.0, "no_answer", "")
    assert all(isinstance(r["score"], float) and isinstance(r["pred"], str) for r in (right, wrong, empty))


def test_domain_from_data_source_picks_the_domains_plugin():
    result = compute_score("loong/physics", "\\boxed{52.92 km/h}", "14.7 m/s")
    assert result["score"] == 1.0 and result["verifier"] == "physics_units"
    assert compute_score("loong/physics", "\\boxed{14.7 m}", "14.7 m/s")["score"] == 0.0


def test_extra_info_tolerance_and_json_ground_truth_are_applied():
    assert compute_score("x", "\\boxed{3.1416}", "3.14159", {"tolerance": "{\"rel\": 0.001}"})["score"] == 1.0
    assert compute_score("x", "\\boxed{3.1416}", "3.14159", {})["score"] == 0.0
    key = json.dumps({"reference": "3.14159", "tolerance": {"rel": 0.001}})
    assert compute_score("x", "\\boxed{3.1416}", key)["score"] == 1.0
    assert compute_score("x", "\\boxed{\\{1, 2\\}}", "{1, 2}")["score"] == 1.0  # a set answer is not JSON


def test_bad_ground_truth_scores_zero_with_a_reason():
    result = compute_score("x", "\\boxed{1}", None)
    assert result["score"] == 0.0 and result["status"] == "invalid" and "missing" in result["reason"]


def test_async_twin_gives_the_same_verdict():
    args = ("loong/x", "\\boxed{\\frac{1}{2}}", "0.5")
    assert asyncio.run(acompute_score(*args)) == compute_score(*args)


def test_verl_rows_round_trip_through_compute_score(tmp_path):
    seeds = load_seeds("physics")
    ds = to_verl_dataset(seeds, 4, seed=1)
    path = tmp_path / "train.parquet"
    ds.to_parquet(str(path))
    import datasets

    rows = datasets.Dataset.from_parquet(str(path))
    assert {"data_source", "prompt", "ability", "reward_model", "extra_info"} <= set(rows.column_names)
    for row in rows:
        assert row["data_source"] == "loong/physics" and row["prompt"][-1]["role"] == "user"
        answer = row["reward_model"]["ground_truth"]
        score = compute_score(row["data_source"], f"\\boxed{{{answer}}}", answer, row["extra_info"])
        assert score["score"] == 1.0 and score["verifier"] == "physics_units"
