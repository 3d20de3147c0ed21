"""CoT output: a durable line per problem, kill -9 then resume loses and duplicates nothing, TRL exports."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
from kill9 import kill_9_then_resume
from scripted_openai_server import Answer, Request, ScriptedServer

from loong_env.errors import ConfigError, NotFoundError
from loong_env.generators import GenerationWriter, Verdict
from loong_env.pipeline import (
    CoTStore,
    ProblemFailure,
    ProblemResult,
    Trace,
    load_problems,
    preference_rows,
    read_failures,
    read_manifest,
    read_results,
    to_preference_dataset,
    to_sft_dataset,
)
from loong_env.pipeline.prompts import FEEDBACK_MARKER, solve
from loong_env.types import VerificationStatus

REPO = Path(__file__).resolve().parent.parent


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def trace(text: str, status: str, *, kind: str = "sample", hinted: bool = False) -> Trace:
    return Trace(kind=kind, round=0, text=text, status=VerificationStatus(status), hinted=hinted, tokens=5)  # type: ignore[arg-type]


def result(
    index: int, traces: list[Trace], best: int | None, rationalized: int | None = None
) -> ProblemResult:
    question = f"Problem {index}: what is {index} + {index}?"
    return ProblemResult(
        index=index,
        id=f"id{index}",
        question=question,
        reference=str(2 * index),
        domain="toy",
        mode="rejection",
        prompt=solve(question),
        traces=traces,
        best=best,
        rationalized=rationalized,
    )


def test_a_finished_problem_is_written_once_and_a_reopen_resumes_after_it(tmp_path):
    store = CoTStore(tmp_path).open({"mode": "rejection"})
    assert store.record(result(0, [trace("\\boxed{0}", "correct")], 0)) is True
    assert store.record(result(0, [trace("\\boxed{0}", "correct")], 0)) is False  # same id: refused
    failure = ProblemFailure(index=1, id="id1", question="q", error="LLM request failed: HTTP 400")
    assert store.record(failure) is True
    store.close("done")
    assert len(lines(tmp_path / "results.jsonl")) == 1 and read_failures(tmp_path) == [failure]
    with (tmp_path / "results.jsonl").open("a") as fh:  # what a kill in the middle of a write leaves
        fh.write('{"index": 2, "id": "id2", "quest')
    again = CoTStore(tmp_path).open({"mode": "rejection"})
    assert again.done_ids == {"id0"} and [r.index for r in again.existing] == [0]
    again.record(result(2, [trace("\\boxed{4}", "correct")], 0))
    again.close("done")
    assert all(json.loads(line) for line in lines(tmp_path / "results.jsonl"))
    assert [r.index for r in read_results(tmp_path)] == [0, 2]
    manifest = read_manifest(tmp_path)
    assert manifest.done == 2 and [r.status for r in manifest.runs] == ["done", "done"]


def test_sft_export_is_conversational_with_the_best_verified_trace(tmp_path):
    results = [
        result(
            0,
            [
                trace("wrong \\boxed{1}", "incorrect"),
                trace("long right \\boxed{0}", "correct"),
                trace("right \\boxed{0}", "correct"),
            ],
            best=2,
        ),
        result(
            1,
            [trace("\\boxed{5}", "incorrect"), trace("hinted \\boxed{2}", "correct", hinted=True)],
            best=None,
            rationalized=1,
        ),
    ]
    sft = to_sft_dataset(results)
    assert sft.num_rows == 1
    row = sft[0]
    assert [m["role"] for m in row["messages"]] == ["system", "user", "assistant"]
    assert row["messages"][-1]["content"] == "right \\boxed{0}" and row["rationalized"] is False


def test_preference_export_follows_trl_conversational_and_standard_formats():
    results = [
        result(
            0,
            [
                trace("no box at all", "no_answer"),
                trace("wrong \\boxed{1}", "incorrect"),
                trace("right \\boxed{0}", "correct"),
            ],
            best=2,
        ),
        result(1, [trace("\\boxed{2}", "correct"), trace("\\boxed{2}", "correct")], best=0),  # nothing wrong
    ]
    dpo = to_preference_dataset(results)
    assert dpo.num_rows == 1
    pair = dpo[0]
    # TRL conversational preference: prompt = messages; chosen / rejected = one assistant message each
    assert pair["prompt"] == results[0].prompt
    assert pair["chosen"] == [{"role": "assistant", "content": "right \\boxed{0}"}]
    assert pair["rejected"] == [
        {"role": "assistant", "content": "wrong \\boxed{1}"}
    ]  # wrong before unanswered
    standard = preference_rows(results, conversational=False, pairs_per_problem=2)
    assert [(r["chosen"], r["rejected"]) for r in standard] == [
        ("right \\boxed{0}", "wrong \\boxed{1}"),
        ("right \\boxed{0}", "no box at all"),
    ]
    assert all(isinstance(r["prompt"], str) and r["prompt"].startswith("Problem 0") for r in standard)


def test_problems_come_from_jsonl_seeds_generation_runs_and_datasets(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text(
        json.dumps({"problem": "What is 2 + 2?", "answer": 4, "difficulty": 1})
        + "\n\n"
        + json.dumps({"question": "What is 3 * 3?", "final_answer": "9", "domain": "arith"})
        + "\n"
    )
    items = load_problems(path, domain="toy")
    assert [(p.question, p.final_answer, p.domain) for p in items] == [
        ("What is 2 + 2?", "4", "toy"),
        ("What is 3 * 3?", "9", "arith"),
    ]
    logic = load_problems("seeds:logic", difficulty=[1], limit=2)
    assert len(logic) == 2 and {p.domain for p in logic} == {"logic"} and {p.difficulty for p in logic} == {1}
    run = tmp_path / "run"
    with GenerationWriter(run, domain="toy").open(method="few-shot") as writer:
        writer.record(
            Verdict(
                attempt=0,
                method="few-shot",
                accepted=True,
                question=items[1].question,
                datapoint=items[1].model_copy(update={"domain": "toy"}),
            )
        )
    assert [p.final_answer for p in load_problems(run)] == ["9"]
    import datasets

    ds = datasets.Dataset.from_list([{"question": "What is 1 + 1?", "answer": "2"}])
    assert load_problems(ds)[0].final_answer == "2"
    (tmp_path / "bad.jsonl").write_text('{"question": "no answer here"}\n')
    with pytest.raises(ConfigError, match=r"bad.jsonl:1: no answer field"):
        load_problems(tmp_path / "bad.jsonl")
    with pytest.raises(NotFoundError, match="not `seeds`"):
        load_problems(tmp_path / "missing.jsonl")


# -- kill -9 and resume, through the real CLI ------------------------------------------------------

N_PROBLEMS = 12
_NUMBERS = re.compile(r"holds (\d+) apples and (\d+) pears")


def baskets(req: Request) -> Answer:
    """Right answers, except the first try on odd baskets (those get a refinement round)."""
    a, b = (int(x) for x in _NUMBERS.search(req.messages[1]["content"]).groups())  # type: ignore[union-attr]
    k = a - 1000
    off = 1 if k % 2 and FEEDBACK_MARKER not in req.user else 0
    return Answer(f"{a} + {b} = {a + b + off}. \\boxed{{{a + b + off}}}", delay_s=0.15)


@pytest.mark.timeout(150)
def test_kill_9_mid_run_then_rerun_loses_nothing_and_duplicates_nothing(tmp_path):
    problems = tmp_path / "problems.jsonl"
    problems.write_text(
        "".join(
            json.dumps(
                {
                    "question": f"Basket {k} holds {1000 + k} apples and {7 * k} pears. How many fruits are "
                    f"in basket {k}?",
                    "answer": str(1000 + 8 * k),
                }
            )
            + "\n"
            for k in range(N_PROBLEMS)
        )
    )
    out = tmp_path / "out"
    with ScriptedServer(baskets) as server:
        cmd = [
            sys.executable,
            "-m",
            "loong_env",
            "cot",
            "--input",
            str(problems),
            "--out",
            str(out),
            "--base-url",
            server.base_url,
            "--model",
            "scripted",
            "--concurrency",
            "2",
            "--quiet",
        ]
        complete_before, rerun = kill_9_then_resume(cmd, cwd=REPO, log=out / "results.jsonl")
        assert 3 <= len(complete_before.splitlines()) < N_PROBLEMS
        assert rerun.returncode == 0, rerun.stderr[-2000:]
        assert "already done" in rerun.stderr and "exports:" in rerun.stderr

    after = (out / "results.jsonl").read_bytes()
    assert after.startswith(complete_before), "problems finished before the kill were lost or changed"
    results = read_results(out)
    assert [r.index for r in results] == list(range(N_PROBLEMS)), "loss or duplicates after resume"
    assert len({r.id for r in results}) == N_PROBLEMS
    for r in results:  # each kept history is the one its problem's script implies
        assert r.solved and len(r.traces) == (2 if r.index % 2 else 1)
    manifest = read_manifest(out)
    assert manifest.done == len(lines(out / "results.jsonl")) == N_PROBLEMS
    assert [run.status for run in manifest.runs] == ["killed", "done"]
    assert (
        len(lines(out / "sft.jsonl")) == N_PROBLEMS
        and len(lines(out / "preference.jsonl")) == N_PROBLEMS // 2
    )
