"""`loong report` promises: runs write live metrics; the report plots them and its numbers match the JSONL.

Covers generation (scripted and with the real local model), validation (`loong seeds validate --out`), a
killed run (torn last line), and the live display of `loong generate` showing the report's own figures.
"""

from __future__ import annotations

import json
import re
import sys
import threading
from pathlib import Path

import pytest
from kill9 import kill_9_when
from rich.console import Console
from scripted_openai_server import Answer, Request, ScriptedServer, candidate_json

from loong_env.cli import main as loong
from loong_env.cli.generate import progress_table
from loong_env.curriculum.simulation import default_curves, simulate_sync
from loong_env.generators import GenerationStats, KeepConfig, read_accepted, read_rejected, run_generation
from loong_env.llm import LLMClient, RetryPolicy
from loong_env.runs.figures import RunFigures, summary_rows
from loong_env.runs.metrics import MetricsWriter, read_metrics
from loong_env.runs.report import render_report

pytestmark = pytest.mark.timeout(90)

REPO = Path(__file__).resolve().parent.parent
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TOY_SEEDS = [
    {
        "question": "A farmer has 12 cows and buys 7 more. How many cows does the farmer have now?",
        "final_answer": "19",
        "rationale": "print(12 + 7)",
        "difficulty": 1,
    },
    {
        "question": "What is the sum of the first 10 positive integers?",
        "final_answer": "55",
        "rationale": "print(sum(range(1, 11)))",
        "difficulty": 1,
    },
]


def toy_seeds_root(tmp_path: Path) -> Path:
    folder = tmp_path / "seeds" / "toy_math"
    folder.mkdir(parents=True)
    (folder / "domain.toml").write_text('name = "toy_math"\nrequirements = []\nlicense = "MIT"\n')
    (folder / "seeds.jsonl").write_text("".join(json.dumps(s) + "\n" for s in TOY_SEEDS))
    return tmp_path / "seeds"


def every_third_too_short(delay_s: float = 0.0):
    """Generation requests alternate: two distinct correct problems, then one too short to keep."""
    counter = {"n": 0}
    lock = threading.Lock()

    def script(req: Request) -> Answer:
        if req.is_solve:
            a, b = (int(x) for x in req.solve_question.split("has ")[1].split(" ")[0:3:2])
            return Answer(f"So {a} + {b} = {a + b}. \\boxed{{{a + b}}}", delay_s=delay_s)
        with lock:
            counter["n"] += 1
            k = counter["n"]
        if k % 3 == 0:
            return Answer(candidate_json("Add them?", "print(1)"), delay_s=delay_s)
        a, b = 1000 + k, 7 * k
        question = f"A crate {k} has {a} and {b} bolts in two boxes; how many bolts are in crate {k} in all?"
        return Answer(candidate_json(question, f"print({a} + {b})"), delay_s=delay_s)

    return script


def jsonl_counts(path: Path) -> dict[str, float]:
    """The figures the summary must show, counted straight from the raw lines (complete lines only)."""
    records = []
    for line in path.read_bytes().split(b"\n"):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    items = [r for r in records if r["kind"] == "item"]
    calls = [r for r in records if r["kind"] == "call"]
    return {
        "items": len(items),
        "ok": sum(r["ok"] for r in items),
        "tokens": sum(r["tokens"] for r in calls) + sum(r["tokens"] for r in items),
        "llm": sum(r["op"] == "llm" for r in calls),
        "llm_ok": sum(r["op"] == "llm" and r["ok"] for r in calls),
        "llm_cancelled": sum(r["op"] == "llm" and r.get("error") == "cancelled" for r in calls),
        "sandbox": sum(r["op"] == "sandbox" for r in calls),
    }


def assert_report_matches(run_dir: Path) -> dict:
    """`loong report` wrote a real PNG, and its summary (text and JSON) says what the JSONL says."""
    assert loong(["report", str(run_dir)]) == 0
    png = (run_dir / "report.png").read_bytes()
    assert png.startswith(PNG_SIGNATURE) and len(png) > 10_000
    counts = jsonl_counts(run_dir / "metrics.jsonl")
    summary = json.loads((run_dir / "report.json").read_text())
    assert summary["items"] == counts["items"] and summary["ok"] == counts["ok"]
    assert summary["tokens"] == counts["tokens"]
    assert summary["llm"]["count"] == counts["llm"] and summary["sandbox"]["count"] == counts["sandbox"]
    rows = report_rows(run_dir)
    ok_rate = counts["ok"] / counts["items"] if counts["items"] else 0.0
    assert rows["items"] == f"{counts['items']} ({counts['ok']} ok, {ok_rate:.1%})"
    assert rows["tokens"].split()[0] == str(counts["tokens"])
    return counts


def report_rows(run_dir: Path) -> dict[str, str]:
    """report.txt as {label: value} (labels are padded to one width; values follow two or more spaces)."""
    lines = (run_dir / "report.txt").read_text().splitlines()[1:]
    return dict(re.split(r"\s{2,}", line, maxsplit=1) for line in lines)


async def test_a_scripted_generation_run_writes_metrics_the_report_and_live_panel_agree_on(tmp_path, capsys):
    out = tmp_path / "run"
    root = toy_seeds_root(tmp_path)
    keep = KeepConfig(novelty_threshold=0.99)
    with ScriptedServer(every_third_too_short()) as server:
        retry = RetryPolicy(max_attempts=1)
        async with LLMClient(base_url=server.base_url, model="scripted", timeout_s=20, retry=retry) as client:
            summary = await run_generation(
                "toy_math", out=out, n=4, max_attempts=6, client=client, seeds_root=root, concurrency=2,
                keep_config=keep,
            )
        requests = len(server.requests)
    counts = assert_report_matches(out)
    files = len(read_accepted(out)) + len(read_rejected(out))
    assert counts["items"] == summary.accepted + summary.rejected == files
    assert counts["ok"] == summary.accepted == 4
    # every call was answered or cut off when the target was reached; a cut-off call may not have reached
    # the server yet, so the server saw between the answered calls and all of them
    assert counts["llm_ok"] + counts["llm_cancelled"] == counts["llm"]
    assert counts["llm_ok"] <= requests <= counts["llm"]
    assert counts["tokens"] == 30 * counts["llm_ok"]  # the scripted server bills 30 tokens a call
    if summary.abandoned == 0:  # calls of an attempt cut off at the target are in the metrics only
        assert counts["tokens"] == summary.tokens
    # each kept problem's code ran once, and once more per stated count (the perturbation check halves each
    # of the two counts, and the sum moves); short ones never ran
    assert counts["sandbox"] == 3 * summary.accepted
    log = read_metrics(out)
    assert log.records[0].kind == "run" and log.records[0].info["target"] == 4
    assert log.records[-1].kind == "end" and log.records[-1].status == summary.stopped_because
    rows = report_rows(out)
    assert rows["not ok"] == f"too_short={counts['items'] - counts['ok']}"
    assert rows["llm calls"].startswith(f"{counts['llm']} (p50")

    # the live panel of `loong generate` prints the report's rows, computed by the same code
    figures = RunFigures.from_log(log)
    console = Console(record=True, width=200)
    console.print(progress_table(figures, GenerationStats(), 4, 0))
    panel = console.export_text()
    for label, value in summary_rows(figures.summary()):
        assert label in panel
        if label in ("items", "tokens", "not ok", "errors", "llm calls", "sandbox runs"):
            assert value in panel


def test_seed_validation_writes_metrics_with_an_out_folder(tmp_path, capsys):
    out = tmp_path / "validation"
    assert loong(["seeds", "validate", "logic", "--limit", "2", "--out", str(out), "--allow-failures"]) == 0
    counts = assert_report_matches(out)
    assert counts["items"] == counts["sandbox"] == 2
    assert read_metrics(out).records[-1].kind == "end"


@pytest.mark.timeout(120)
def test_report_reads_a_killed_generation_run_with_a_torn_last_line(tmp_path, capsys):
    out = tmp_path / "run"
    root = toy_seeds_root(tmp_path)
    with ScriptedServer(every_third_too_short(delay_s=0.1)) as server:
        cmd = [
            *(sys.executable, "-m", "loong_env", "generate", "--domain", "toy_math"),
            *("--seeds-root", str(root)),
            *("--n", "50", "--out", str(out), "--base-url", server.base_url, "--model", "scripted"),
            *("--concurrency", "2", "--novelty-threshold", "0.99", "--quiet"),
        ]
        metrics = out / "metrics.jsonl"
        kill_9_when(
            cmd,
            cwd=REPO,
            ready=lambda: metrics.exists() and jsonl_counts(metrics)["items"] >= 4,
            what="finished 4 attempts",
        )
    with metrics.open("ab") as fh:  # a kill in the middle of a write leaves half a line
        fh.write(b'{"kind": "call", "t": 1.0, "op": "ll')
    files = len(read_accepted(out)) + len(read_rejected(out))
    counts = assert_report_matches(out)
    assert files - 1 <= counts["items"] <= files  # an item is recorded right after its verdict is written
    rows = report_rows(out)
    assert "running or killed" in rows["run"] and rows["skipped"].startswith("1 unreadable line")


def test_report_of_a_missing_run_says_where_it_looked(tmp_path, capsys):
    assert loong(["report", str(tmp_path / "nothing")]) == 2
    assert "metrics.jsonl" in capsys.readouterr().out


def test_a_curriculum_run_report_plots_reward_arm_values_and_shares(tmp_path):
    with MetricsWriter.in_dir(tmp_path, run="env") as metrics:
        simulate_sync(default_curves(), steps=30, seed=0, metrics=metrics)
    report = render_report(tmp_path)
    assert report.summary.steps == 30 and report.summary.values
    assert report.png.read_bytes().startswith(PNG_SIGNATURE) and report.png.stat().st_size > 10_000
    assert report_rows(tmp_path)["steps"].startswith("30, reward last")


@pytest.mark.timeout(240)
async def test_report_renders_a_real_generation_run_with_the_local_model(local_qwen_client, tmp_path):
    out = tmp_path / "real"
    summary = await run_generation(
        "graph_discrete_math", out=out, n=1, max_attempts=2, client=local_qwen_client, concurrency=2,
        max_tokens=64, time_budget_s=150, keep_config=KeepConfig(solve_max_tokens=64), seed=3,
    )
    counts = assert_report_matches(out)
    assert counts["items"] == summary.accepted + summary.rejected >= 1
    assert counts["llm"] >= counts["items"] and counts["tokens"] > 0  # real calls, real tokens
    if summary.abandoned == 0:  # every call belongs to a finished attempt: the generator's own count agrees
        assert counts["tokens"] == summary.tokens
