"""Calibration promises: pass rates per item from a real endpoint, a crash-safe resumable file, levels, readers."""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from pathlib import Path

import pytest
from kill9 import kill_9_then_resume
from scripted_openai_server import Reply, Request, ScriptedServer

from loong_env.calibration import calibrate_sync, calibrated_difficulty, read_calibration
from loong_env.cli.main import main as loong
from loong_env.llm import LLMClient
from loong_env.runs.calibration import CALIBRATION, calibration_fields, summarize_by_domain
from loong_env.runs.durable import OutputError
from loong_env.types import DataPoint

REPO = Path(__file__).resolve().parent.parent
N_ITEMS = 12

pytestmark = pytest.mark.timeout(120)


def sums(delay_s: float = 0.0):
    """The scripted policy: for "What is A + B?" it gets (A mod 5) of 4 answers right, one request with n=4."""

    def script(req: Request) -> Reply:
        a, b = (int(x) for x in re.findall(r"What is (\d+) \+ (\d+)\?", req.user)[0])
        right = a % 5
        texts = tuple(f"\\boxed{{{a + b if j < right else a + b + 1}}}" for j in range(4))
        return Reply(choices=texts[: int(req.body.get("n") or 1)], delay_s=delay_s)

    return script


def problems(n: int = N_ITEMS) -> list[DataPoint]:
    return [
        DataPoint(
            question=f"What is {k} + {10 * k}?", final_answer=str(11 * k), domain="sums", difficulty=1 + k % 5
        )
        for k in range(n)
    ]


def test_calibrated_difficulty_bins_the_pass_rate_into_fifths():
    assert [calibrated_difficulty(p) for p in (1.0, 0.75, 0.5, 0.25, 0.0)] == [1, 2, 3, 4, 5]
    assert [calibrated_difficulty(p) for p in (0.8, 0.7999, 0.6, 0.4, 0.2, 0.1999)] == [1, 2, 2, 3, 4, 5]


def test_calibration_measures_each_item_and_keeps_the_authors_label(tmp_path):
    with ScriptedServer(sums()) as server:
        client = LLMClient(base_url=server.base_url, model="scripted")
        summary = calibrate_sync(problems(), out=tmp_path, client=client, k=4)
    assert (summary.calibrated, summary.failed, summary.model) == (N_ITEMS, 0, "scripted")
    found = read_calibration(tmp_path)
    for dp in problems():
        rec = found[dp.id]
        k = int(dp.question.split()[2])
        assert (rec.samples, rec.correct, rec.pass_rate) == (4, k % 5, (k % 5) / 4)
        assert rec.difficulty == dp.difficulty  # the author's label, untouched
        assert rec.calibrated_difficulty == calibrated_difficulty(rec.pass_rate)
        assert calibration_fields(dp.id, found)["pass_samples"] == 4
    [domain] = summarize_by_domain(found)
    assert domain.items == N_ITEMS and sum(domain.levels.values()) == N_ITEMS


def test_a_folder_holds_one_policy(tmp_path):
    with ScriptedServer(sums()) as server:
        calibrate_sync(problems(2), out=tmp_path, client=LLMClient(base_url=server.base_url, model="a"), k=4)
        with pytest.raises(OutputError, match="model 'a'"):
            calibrate_sync(
                problems(3), out=tmp_path, client=LLMClient(base_url=server.base_url, model="b"), k=4
            )
        with pytest.raises(OutputError, match="another --out"):
            calibrate_sync(
                problems(3), out=tmp_path, client=LLMClient(base_url=server.base_url, model="a"), k=2
            )
    assert len(read_calibration(tmp_path)) == 2


def test_kill_9_mid_run_then_rerun_loses_nothing_and_duplicates_nothing(tmp_path):
    source = tmp_path / "problems.jsonl"
    source.write_text(
        "".join(json.dumps(dp.model_dump(mode="json", exclude={"id"})) + "\n" for dp in problems())
    )
    out = tmp_path / "out"
    with ScriptedServer(sums(delay_s=0.2)) as server:
        cmd = [sys.executable, "-m", "loong_env", "calibrate", "--input", str(source), "--out", str(out)]
        cmd += ["--base-url", server.base_url, "--model", "scripted", "--concurrency", "1"]
        before, rerun = kill_9_then_resume(cmd, cwd=REPO, log=out / CALIBRATION)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    after = (out / CALIBRATION).read_bytes()
    assert after.startswith(before)  # nothing written before the kill was lost or rewritten
    ids = [json.loads(line)["id"] for line in after.splitlines()]
    assert Counter(ids) == Counter(dp.id for dp in problems())  # every item exactly once
    done_before = len(before.splitlines())
    assert 3 <= done_before < N_ITEMS and f"{done_before} done earlier" in rerun.stderr
    runs = json.loads((out / "manifest.json").read_text())["runs"]
    assert [r["status"] for r in runs] == ["killed", "done"]


def test_seeds_list_shows_the_calibration_beside_the_authors_levels(tmp_path, capsys):
    from loong_env.seeds.dataset import load_seeds

    seeds = load_seeds("logic").filter(difficulty=[1, 2])
    answers = {dp.question: dp.final_answer for dp in seeds}

    def policy(req: Request) -> Reply:
        question = req.user.rsplit("\n\n", 1)[0]
        return Reply(
            choices=(f"\\boxed{{{answers[question]}}}", "\\boxed{no}")[: int(req.body.get("n") or 1)]
        )

    with ScriptedServer(policy) as server:
        calibrate_sync(seeds, out=tmp_path, client=LLMClient(base_url=server.base_url, model="scripted"), k=2)
    assert loong(["seeds", "list", "logic", "--calibration", str(tmp_path / CALIBRATION)]) == 0
    shown = capsys.readouterr().out
    assert "calibrated difficulty (pass rate of scripted)" in shown
    row = next(line for line in shown.splitlines() if "logic" in line and "0.50" in line)
    assert row.split()[1] == str(len(seeds))  # every d1-d2 logic seed, each right on 1 of 2 answers -> c3


def test_report_plots_pass_rates_per_domain_from_a_calibration_folder(tmp_path, capsys):
    with ScriptedServer(sums()) as server:
        calibrate_sync(
            problems(), out=tmp_path, client=LLMClient(base_url=server.base_url, model="scripted"), k=4
        )
    assert loong(["report", str(tmp_path)]) == 0
    assert (tmp_path / "calibration.png").read_bytes().startswith(b"\x89PNG")
    row = next(
        line for line in (tmp_path / "calibration.txt").read_text().splitlines() if line.startswith("sums")
    )
    levels = Counter(calibrated_difficulty((k % 5) / 4) for k in range(N_ITEMS))
    mean = sum((k % 5) / 4 for k in range(N_ITEMS)) / N_ITEMS
    assert row.split()[1:8] == [str(N_ITEMS), f"{mean:.2f}", *(str(levels[c]) for c in range(1, 6))]
    assert "wrote" in capsys.readouterr().out
