"""Runs you can diagnose: a scripted GRPO-style run's per-step verdicts reach the metrics file, the report's
PNG and a local trackio project; TRL reward calls and reward-server batches are steps too."""

from __future__ import annotations

import os
import tempfile
import uuid

import pytest

# trackio reads its folder once, on import: point it at a scratch folder before anything imports it.
os.environ.setdefault("TRACKIO_DIR", tempfile.mkdtemp(prefix="loong-trackio-"))

from loong_env import bridge
from loong_env.env import SingleStepEnv
from loong_env.integrations.reward_models import ScoreItem, ScoreRequest
from loong_env.integrations.reward_scoring import RewardScorer
from loong_env.integrations.trl import make_reward_fn
from loong_env.runs.diagnostics import ItemOutcome, diagnose, verdict_kind
from loong_env.runs.figures import RunFigures
from loong_env.runs.metrics import MetricsWriter, StepRecord, read_metrics
from loong_env.runs.report import panel_names, render_report
from loong_env.runs.sinks import open_sinks, step_scalars
from loong_env.types import Action, DataPoint
from loong_env.verifiers.base import LOONG_VERSION
from loong_env.verifiers.boxed import BoxedAnswerVerifier, BoxedConfig

pytestmark = pytest.mark.timeout(120)

SLOW = r"\boxed{\int_0^1 e^{-x^{2}} \sin(x^{7}) dx}"  # the symbolic check runs out of its time bound
HUGE = r"\boxed{12^{12^{12}}}"  # too large to compare: an error, not a timeout

A = DataPoint(question="2 + 3?", final_answer="5", domain="scripted", metadata={"dataset_version": "v-abc"})
B = DataPoint(question="3 + 4?", final_answer="7", domain="scripted", metadata={"dataset_version": "v-abc"})
C = DataPoint(question="1 + 2?", final_answer="3", domain="scripted", metadata={"dataset_version": "v-abc"})

# Fixed answers per step and datapoint: one GRPO group of four answers per datapoint.
SCRIPT = [
    {
        A.id: [r"\boxed{5}"] * 4,  # all correct: no signal
        B.id: [r"\boxed{7}", "seven, I think", SLOW, r"\boxed{8}"],
        C.id: ["no idea"] * 4,  # all unparsable: no signal either
    },
    {
        A.id: [r"\boxed{5}", r"\boxed{6}", HUGE, "no idea"],
        B.id: [r"\boxed{7}"] * 4,
        C.id: [r"\boxed{3}", r"\boxed{4}", r"\boxed{3}", r"\boxed{4}"],
    },
]
EXPECTED = [
    {"correct": 5, "incorrect": 1, "no_answer": 5, "timeout": 1, "error": 0},
    {"correct": 7, "incorrect": 3, "no_answer": 1, "timeout": 0, "error": 1},
]


async def scripted_run(env: SingleStepEnv) -> list[list]:
    """Two steps of 12 answers; each datapoint's four answers come from SCRIPT in the order drawn."""
    steps = []
    for script in SCRIPT:
        observations = await env.reset(batch_size=12)
        queues = {key: list(answers) for key, answers in script.items()}
        actions = [Action(index=o.index, llm_response=queues[o.datapoint_id].pop()) for o in observations]
        steps.append(await env.step(actions))
    return steps


@pytest.fixture(scope="module")
def verifier() -> BoxedAnswerVerifier:
    verifier = BoxedAnswerVerifier(BoxedConfig(timeout_s=0.2))
    verifier.start_sync()
    return verifier


def test_a_scripted_grpo_run_shows_its_diagnostics_in_the_metrics_file_report_and_trackio(tmp_path, verifier):
    import trackio.sqlite_storage as storage

    project = f"loong-test-{uuid.uuid4().hex[:8]}"
    sinks = open_sinks(tmp_path, project=project, name="scripted", trackers=("trackio",))
    env = SingleStepEnv([A] * 4 + [B] * 4 + [C] * 4, verifier, route=False, metrics=sinks, seed=0)
    results = bridge.run(scripted_run(env))
    sinks.close()

    # every item's record: verifier name and version, and the dataset version of its datapoint
    item = results[0][0]
    assert (item.verifier, item.verifier_version, item.dataset_version) == ("boxed", LOONG_VERSION, "v-abc")

    # the metrics file: one step record per step() call, counts by verdict and zero-variance groups
    records = [r for r in read_metrics(tmp_path).records if isinstance(r, StepRecord)]
    assert [r.counts for r in records] == EXPECTED
    assert [r.zero_variance_fraction for r in records] == [pytest.approx(2 / 3), pytest.approx(1 / 3)]
    assert all(r.groups == 3 and r.verifiers == {"boxed": 12} and r.seconds > 0 for r in records)
    assert records[0].dataset_versions == {"v-abc": 12} and records[0].source == "env"

    # `loong report`: the verdict and zero-variance panels are drawn, the text carries the totals
    report = render_report(tmp_path)
    figures = RunFigures.from_log(read_metrics(tmp_path))
    assert {"verdicts", "zero_variance"} <= set(panel_names(report.summary, figures.timeline()))
    assert report.png.stat().st_size > 10_000
    assert "timeout=1" in report.text and "error=1" in report.text and "zero-variance groups" in report.text

    # the local trackio project holds the same numbers, step by step
    logs = storage.SQLiteStorage.get_logs(project, "scripted")
    assert [row["loong/count/timeout"] for row in logs] == [1.0, 0.0]
    assert [row["loong/zero_variance_fraction"] for row in logs] == pytest.approx([2 / 3, 1 / 3])
    assert [row["step"] for row in logs] == [1, 2]


def test_timeouts_are_told_apart_from_other_errors():
    assert verdict_kind("error", "could not decide: symbolic check timed out (bound 1.5 s)") == "timeout"
    assert verdict_kind("error", "timeout after 10 s") == "timeout"
    assert verdict_kind("error", "candidate is too large to compare") == "error"
    assert verdict_kind("invalid", "invalid item: label[0]: ...") == "error"
    assert verdict_kind("no_answer") == "no_answer"


def test_groups_of_one_and_unrewarded_items_carry_no_zero_variance_verdict():
    items = [
        ItemOutcome(group="a", reward=1.0, status="correct"),
        ItemOutcome(group="b", reward=None, status="correct"),
        ItemOutcome(group="b", reward=0.0, status="incorrect"),
    ]
    diagnostics = diagnose(items)
    assert diagnostics.zero_variance_fraction is None and diagnostics.groups == 0
    assert diagnostics.reward_mean == 0.5 and diagnostics.counts["correct"] == 2


def test_trl_reward_calls_log_through_log_metric_and_log_extra_and_are_steps(tmp_path, verifier):
    class State:
        global_step = 7

    metrics, extras = {}, {}
    writer = MetricsWriter.in_dir(tmp_path, run="trl")
    reward = make_reward_fn(verifier, metrics=writer)
    completions = [r"\boxed{5}", r"\boxed{5}", "no box", r"\boxed{6}"]
    rewards = reward(
        prompts=["p1", "p1", "p2", "p2"],
        completions=completions,
        answer=["5", "5", "5", "5"],
        datapoint_id=["a", "a", "b", "b"],
        dataset_version=["v1"] * 4,
        trainer_state=State(),
        log_metric=lambda name, value: metrics.setdefault(name, value),
        log_extra=lambda column, values: extras.setdefault(column, values),
    )
    writer.close()
    assert rewards == [1.0, 1.0, 0.0, 0.0]  # floats, as TRL requires
    assert metrics["loong/correct"] == 0.5 and metrics["loong/no_answer"] == 0.25
    assert metrics["loong/zero_variance_fraction"] == 1.0  # group a all 1, group b all 0
    assert extras["loong_verdict"] == ["correct", "correct", "no_answer", "incorrect"]
    assert (
        extras["loong_verifier"] == ["boxed"] * 4 and extras["loong_verifier_version"] == [LOONG_VERSION] * 4
    )
    assert extras["loong_dataset_version"] == ["v1"] * 4
    (record,) = [r for r in read_metrics(tmp_path).records if isinstance(r, StepRecord)]
    assert (record.step, record.source, record.counts["incorrect"]) == (7, "trl", 1)


def test_a_reward_server_batch_is_one_step_and_its_items_carry_the_verifier_version(tmp_path, verifier):
    writer = MetricsWriter.in_dir(tmp_path, run="reward_server")
    scorer = RewardScorer(verifier=verifier, metrics=writer)
    items = [ScoreItem(response=r, reference="7") for r in (r"\boxed{7}", r"\boxed{7}", "x", SLOW)]
    response = scorer.score_sync(ScoreRequest(items=items))
    writer.close()
    assert response.results[0].verifier_version == LOONG_VERSION
    (record,) = [r for r in read_metrics(tmp_path).records if isinstance(r, StepRecord)]
    assert record.source == "reward_server" and record.counts["timeout"] == 1 and record.groups == 1
    assert step_scalars(record)["loong/count/correct"] == 2.0
