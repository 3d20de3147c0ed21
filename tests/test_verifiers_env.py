"""Prime Intellect `verifiers` promises: found by name, rubric = our verifier, evaluated by vf-eval on a real model."""

from __future__ import annotations

import asyncio
import json
from importlib.metadata import entry_points

import pytest

vf = pytest.importorskip("verifiers")

from loong_env.integrations.keys import key_from_columns
from loong_env.integrations.trl import completion_text
from loong_env.routing import VerifierRouter

pytestmark = pytest.mark.timeout(300)

SHORT = "Reply with only the final answer inside \\boxed{}, nothing else."


@pytest.fixture(scope="module")
def physics_env():
    return vf.load_environment("loong-env", domains=["physics"], num_examples=4, num_eval_examples=2)


def our_rubric(env):
    """The rubric load_environment built (verifiers groups it with its own turn-count monitor)."""
    rubrics = getattr(env.rubric, "rubrics", [env.rubric])
    return next(r for r in rubrics if any(f.__name__ == "loong_correctness" for f in r.funcs))


def rubric_fn(env, name):
    return next(f for f in our_rubric(env).funcs if f.__name__ == name)


def test_environment_is_found_by_name_and_is_single_turn(physics_env):
    assert isinstance(physics_env, vf.SingleTurnEnv)
    rows = physics_env.get_dataset()
    assert len(rows) == 4 and len(physics_env.get_eval_dataset()) == 2
    assert rows[0]["info"]["domain"] == "physics" and rows[0]["info"]["verifier"] == "physics_units"
    rubric = our_rubric(physics_env)
    assert [f.__name__ for f in rubric.funcs] == ["loong_correctness", "loong_format"]
    assert rubric.weights == [1.0, 0.0]


def test_rubric_judges_with_the_domains_plugin(physics_env):
    correctness = rubric_fn(physics_env, "loong_correctness")
    info = {"domain": "physics", "tolerance": "", "verifier": "", "requirements": []}

    def score(text: str) -> float:
        return asyncio.run(correctness(completion=[{"role": "assistant", "content": text}], answer="14.7 m/s",
                                       info=info, state={}))

    assert score("so \\boxed{52.92 km/h}") == 1.0  # found through the physics domain's plug-in
    assert score("\\boxed{14.7 m}") == 0.0 and score("no answer") == 0.0
    assert rubric_fn(physics_env, "loong_format")(completion="\\boxed{1}") == 1.0


def test_a_generation_run_is_a_source(tmp_path):
    from loong_env.types import DataPoint

    dp = DataPoint(question="What is 2 + 3?", final_answer="5", domain="arithmetic")
    (tmp_path / "accepted.jsonl").write_text(json.dumps(dp.model_dump(exclude={"id"})) + "\n")
    env = vf.load_environment("loong_env", run=str(tmp_path), num_examples=2, num_eval_examples=0)
    assert set(env.get_dataset()["answer"]) == {"5"}


def test_vf_eval_scores_real_model_answers_with_our_verifier(local_qwen, tmp_path, monkeypatch):
    [entry] = entry_points(group="console_scripts", name="vf-eval")  # the installed `vf-eval` command
    vf_eval = entry.load()
    env_args = {"domains": ["number_theory_combinatorics"], "num_examples": 4, "num_eval_examples": 2,
                "system_prompt": SHORT}
    argv = ["loong-env", "-m", local_qwen.model, "-b", local_qwen.base_url,
           "-k", "LOONG_TEST_API_KEY", "-n", "2", "-r", "1", "-t", "48", "-T", "0", "-c", "2",
           "-a", json.dumps(env_args), "-s", "-d", "--disable-env-server", "-o", str(tmp_path)]
    monkeypatch.setenv("LOONG_TEST_API_KEY", "none")
    monkeypatch.chdir(tmp_path)
    vf_eval(argv)  # in this process: verifiers is already imported, and the model server is shared
    [results] = list(tmp_path.glob("evals/loong-env--*/*/results.jsonl"))
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    assert len(rows) == 2 and all(r["error"] is None for r in rows)

    router = VerifierRouter()
    for row in rows:  # each reward is exactly our verifier's verdict on the model's answer
        text = completion_text(row["completion"])
        assert text.strip(), "the model answered nothing"
        verdict, _ = asyncio.run(router.judge(text, key_from_columns({**row["info"], "answer": row["answer"]})))
        assert row["loong_correctness"] == verdict.reward == row["reward"]


def test_the_v1_taskset_is_found_by_name_and_rewards_as_the_env_does():
    """verifiers.v1 (0.4's only API; a preview in 0.3.1) loads `loong-env` as the Taskset in our `__all__`."""
    from types import SimpleNamespace

    v1_loaders = pytest.importorskip("verifiers.v1.utils.loaders")
    from loong_env.integrations.verifiers_taskset import LoongTasksetConfig

    taskset = v1_loaders.taskset_class("loong-env")(
        LoongTasksetConfig(id="loong-env", domains=["physics"], num_tasks=2, seed=3)
    )
    tasks = list(taskset)
    assert len(tasks) == 2 and all(t.data.domain == "physics" and t.data.datapoint_id for t in tasks)
    data = tasks[0].data
    right = SimpleNamespace(last_reply=f"So the answer is \\boxed{{{data.answer}}}.")  # what a Trace offers
    assert asyncio.run(tasks[0].loong_correctness(right)) == 1.0
    assert asyncio.run(tasks[0].loong_correctness(SimpleNamespace(last_reply="no idea"))) == 0.0
    assert asyncio.run(tasks[0].loong_format(right)) == 1.0
