"""Crash-safe output: files and manifest agree, torn tails are repaired, kill -9 mid-run loses nothing."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from kill9 import kill_9_then_resume
from scripted_openai_server import ScriptedServer, numbered_problems

from loong_env.generators import (
    GenerationWriter,
    OutputError,
    RejectReason,
    Verdict,
    export_parquet,
    push_to_hub,
    read_accepted,
    read_manifest,
    read_rejected,
    to_dataset,
)
from loong_env.types import DataPoint

REPO = Path(__file__).resolve().parent.parent


def accepted_verdict(k: int) -> Verdict:
    dp = DataPoint(question=f"Problem number {k}: how many sides do {k} triangles have together?",
                   final_answer=str(3 * k), rationale=f"print(3 * {k})", domain="toy_math",
                   metadata={"generator": "few-shot", "attempt": k})  # fmt: skip
    return Verdict(attempt=k, method="few-shot", accepted=True, datapoint=dp, question=dp.question, tokens=10)


def rejected_verdict(k: int, reason: RejectReason = RejectReason.code_error) -> Verdict:
    return Verdict(attempt=k, method="few-shot", accepted=False, reason=reason, detail="scripted", tokens=5)


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def test_manifest_counts_always_equal_the_files(tmp_path):
    writer = GenerationWriter(tmp_path, domain="toy_math").open(method="few-shot", target=10)
    for k in range(6):
        writer.record(accepted_verdict(k) if k % 2 == 0 else rejected_verdict(k))
        manifest = read_manifest(tmp_path)  # after every single verdict, not just at the end
        assert manifest.accepted == len(lines(tmp_path / "accepted.jsonl"))
        assert manifest.rejected == len(lines(tmp_path / "rejected.jsonl"))
    writer.close("target")
    manifest = read_manifest(tmp_path)
    assert (manifest.accepted, manifest.rejected, manifest.next_attempt, manifest.tokens) == (3, 3, 6, 45)
    assert manifest.rejected_by_reason == {"code_error": 3}
    assert manifest.runs[-1].status == "target" and manifest.runs[-1].accepted == 3
    assert [dp.final_answer for dp in read_accepted(tmp_path)] == ["0", "6", "12"]


def test_duplicate_question_is_written_as_rejected_not_accepted(tmp_path):
    with GenerationWriter(tmp_path, domain="toy_math").open(method="few-shot") as writer:
        assert writer.record(accepted_verdict(1)) is True
        again = accepted_verdict(1).model_copy(update={"attempt": 2})
        assert writer.record(again) is False
    assert len(read_accepted(tmp_path)) == 1
    assert [r["reason"] for r in read_rejected(tmp_path)] == ["duplicate"]


def test_torn_last_line_is_cut_on_reopen_and_earlier_items_survive(tmp_path):
    with GenerationWriter(tmp_path, domain="toy_math").open(method="few-shot") as writer:
        for k in range(3):
            writer.record(accepted_verdict(k))
    with (tmp_path / "accepted.jsonl").open("a") as fh:  # what a kill in the middle of a write leaves
        fh.write('{"question": "half a rec')
    assert len(read_accepted(tmp_path)) == 3  # readers ignore the torn tail
    writer = GenerationWriter(tmp_path, domain="toy_math").open(method="few-shot")
    assert len(writer.existing) == 3 and writer.manifest.next_attempt == 3
    writer.record(accepted_verdict(7))
    writer.close("done")
    assert len(read_accepted(tmp_path)) == 4
    assert all(json.loads(line) for line in lines(tmp_path / "accepted.jsonl"))
    assert read_manifest(tmp_path).accepted == 4


def test_a_second_run_on_the_same_directory_is_refused_while_the_first_holds_it(tmp_path):
    first = GenerationWriter(tmp_path, domain="toy_math").open(method="few-shot")
    with pytest.raises(OutputError, match="in use"):
        GenerationWriter(tmp_path, domain="toy_math").open(method="few-shot")
    first.close("done")
    GenerationWriter(tmp_path, domain="toy_math").open(method="few-shot").close("done")


def test_a_directory_of_another_domain_is_refused(tmp_path):
    GenerationWriter(tmp_path, domain="toy_math").open(method="few-shot").close("done")
    with pytest.raises(OutputError, match="holds domain 'toy_math'"):
        GenerationWriter(tmp_path, domain="logic").open(method="few-shot")


def test_export_to_parquet_and_dataset_round_trips(tmp_path):
    with GenerationWriter(tmp_path, domain="toy_math").open(method="few-shot") as writer:
        for k in range(3):
            writer.record(accepted_verdict(k))
    ds = to_dataset(tmp_path)
    assert ds.num_rows == 3 and ds[0]["question"].startswith("Problem number 0")
    path = export_parquet(tmp_path)
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    assert table.num_rows == 3 and json.loads(table.column("metadata")[0].as_py())["generator"] == "few-shot"


def test_push_to_hub_reaches_the_network_boundary_and_reports_the_failure(tmp_path, monkeypatch):
    """The real datasets/huggingface_hub upload path runs until it talks HTTP; a loopback 'hub' refuses it."""
    with GenerationWriter(tmp_path / "out", domain="toy_math").open(method="few-shot") as writer:
        writer.record(accepted_verdict(1))
    seen: list[str] = []

    class Hub(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _refuse(self):
            seen.append(f"{self.command} {self.path}")
            body = b'{"error": "scripted: no uploads here"}'
            self.send_response(401)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_HEAD = _refuse

    hub = ThreadingHTTPServer(("127.0.0.1", 0), Hub)
    threading.Thread(target=hub.serve_forever, daemon=True).start()
    import datasets.config
    import huggingface_hub.constants

    url = f"http://127.0.0.1:{hub.server_address[1]}"
    monkeypatch.setattr(datasets.config, "HF_ENDPOINT", url)
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", url)
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    try:
        with pytest.raises(OutputError, match=r"push_to_hub\('someone/loong-toy'\) failed"):
            push_to_hub(tmp_path / "out", "someone/loong-toy", token="hf_not_a_real_token")
    finally:
        hub.shutdown()
        hub.server_close()
    assert seen, "the upload never reached the (loopback) hub"


def test_push_to_hub_of_an_empty_directory_says_there_is_nothing_to_push(tmp_path):
    GenerationWriter(tmp_path, domain="toy_math").open(method="few-shot").close("done")
    with pytest.raises(OutputError, match="nothing to push"):
        push_to_hub(tmp_path, "someone/empty")


# -- kill -9 and resume, through the real CLI ------------------------------------------------------

SEEDS = [
    {"question": "A farmer has 12 cows and buys 7 more. How many cows does the farmer have now?",
     "final_answer": "19", "rationale": "print(12 + 7)", "difficulty": 1},
    {"question": "What is the sum of the first 10 positive integers?",
     "final_answer": "55", "rationale": "print(sum(range(1, 11)))", "difficulty": 1},
]  # fmt: skip


def _seeds_root(tmp_path: Path) -> Path:
    folder = tmp_path / "seeds" / "toy_math"
    folder.mkdir(parents=True)
    (folder / "domain.toml").write_text('name = "toy_math"\nrequirements = []\nlicense = "MIT"\n')
    (folder / "seeds.jsonl").write_text("".join(json.dumps(s) + "\n" for s in SEEDS))
    return tmp_path / "seeds"


@pytest.mark.timeout(150)
def test_kill_9_mid_run_then_rerun_loses_nothing_and_duplicates_nothing(tmp_path):
    root, out = _seeds_root(tmp_path), tmp_path / "out"
    target = 10
    with ScriptedServer(numbered_problems(delay_s=0.15)) as server:
        cmd = [sys.executable, "-m", "loong_env", "generate", "--domain", "toy_math", "--seeds-root", str(root),
               "--method", "few-shot", "--n", str(target), "--out", str(out), "--base-url", server.base_url,
               "--model", "scripted", "--concurrency", "2", "--novelty-threshold", "0.99", "--quiet"]  # fmt: skip
        complete_before, rerun = kill_9_then_resume(cmd, cwd=REPO, log=out / "accepted.jsonl")
        assert 3 <= len(complete_before.splitlines()) < target
        assert rerun.returncode == 0, rerun.stderr[-2000:]
        assert "already kept" in rerun.stderr and "stopped (target)" in rerun.stderr

    after = (out / "accepted.jsonl").read_bytes()
    assert after.startswith(complete_before), "items written before the kill were lost or changed"
    kept = read_accepted(out)
    questions = [" ".join(dp.question.split()).casefold() for dp in kept]
    assert len(kept) == target and len(set(questions)) == target, "loss or duplicates after resume"
    for dp in kept:  # each kept item is the one its code computes
        a, b = (int(x) for x in dp.rationale.removeprefix("print(").removesuffix(")").split(" + "))
        assert dp.final_answer == str(a + b)
    manifest = read_manifest(out)
    assert manifest.accepted == len(lines(out / "accepted.jsonl")) == target
    assert manifest.rejected == len(lines(out / "rejected.jsonl"))
    assert [r.status for r in manifest.runs] == ["killed", "target"]
    attempts = [dp.metadata["attempt"] for dp in kept] + [r["attempt"] for r in read_rejected(out)]
    assert len(attempts) == len(set(attempts)), "an attempt number was reused after resume"


@pytest.mark.timeout(120)
def test_ctrl_c_stops_cleanly_and_leaves_a_resumable_directory(tmp_path):
    root, out = _seeds_root(tmp_path), tmp_path / "out"
    with ScriptedServer(numbered_problems(delay_s=0.3)) as server:
        cmd = [sys.executable, "-m", "loong_env", "generate", "--domain", "toy_math", "--seeds-root", str(root),
               "--n", "50", "--out", str(out), "--base-url", server.base_url, "--model", "scripted",
               "--concurrency", "2", "--novelty-threshold", "0.99"]  # fmt: skip
        # Ctrl-C as a terminal sends it: to a process whose SIGINT is not ignored. A shell's background job
        # (`make test &`) runs with SIGINT ignored, which a child inherits (and the run would just finish).
        inherited = signal.signal(signal.SIGINT, signal.default_int_handler)  # the child gets SIG_DFL
        try:
            proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        finally:
            signal.signal(signal.SIGINT, inherited)
        try:
            deadline = time.monotonic() + 90
            while not lines(out / "accepted.jsonl"):
                assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
                time.sleep(0.02)
            proc.send_signal(signal.SIGINT)
            _, stderr = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode == 130, stderr[-2000:]
    assert "run the same command to resume" in stderr
    manifest = read_manifest(out)
    assert manifest.runs[-1].status == "interrupted" and manifest.runs[-1].ended_at is not None
    assert manifest.accepted == len(read_accepted(out)) >= 1
    assert manifest.rejected == len(read_rejected(out))
    GenerationWriter(out, domain="toy_math").open(method="few-shot").close("done")  # the lock was released
