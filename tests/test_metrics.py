"""Metrics promises: one durable line per record, torn lines tolerated, figures right, calls timed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading

import pytest
from scripted_openai_server import Answer, ScriptedServer

from loong_env.errors import NotFoundError
from loong_env.llm import LLMClient, LLMError, RetryPolicy
from loong_env.runs.figures import RunFigures, percentile, summary_rows
from loong_env.runs.metrics import (
    CallRecord,
    EndRecord,
    ItemRecord,
    MetricsWriter,
    RunRecord,
    StepRecord,
    metrics_path,
    read_metrics,
)
from loong_env.runs.timing import TimedClient, TimedRunner
from loong_env.sandbox import Sandbox

pytestmark = pytest.mark.timeout(60)


def test_every_record_is_one_json_line_between_a_run_and_an_end_record(tmp_path):
    with MetricsWriter.in_dir(tmp_path, run="cot", info={"model": "m"}) as metrics:
        metrics.item(ok=True, outcome="kept")
        metrics.call("llm", 0.5, tokens=12)
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["kind"] for line in lines] == ["run", "item", "call", "end"]
    log = read_metrics(tmp_path)
    run, item, call, end = log.records
    assert isinstance(run, RunRecord) and run.run == "cot" and run.info == {"model": "m"}
    assert isinstance(item, ItemRecord) and item.ok and item.outcome == "kept"
    assert isinstance(call, CallRecord) and call.tokens == 12
    assert isinstance(end, EndRecord) and end.status == "done"
    assert log.skipped == 0


def test_a_run_that_raises_ends_with_an_error_record(tmp_path):
    with pytest.raises(ZeroDivisionError), MetricsWriter.in_dir(tmp_path, run="x") as metrics:
        metrics.item(ok=False, outcome="failed")
        1 / 0  # noqa: B018
    end = read_metrics(tmp_path).records[-1]
    assert isinstance(end, EndRecord) and end.status == "error" and end.info["error"] == "ZeroDivisionError"


def test_records_written_before_a_kill_9_survive_without_close(tmp_path):
    script = (
        "import os, signal, sys\n"
        "from loong_env.runs.metrics import MetricsWriter\n"
        "m = MetricsWriter(sys.argv[1], run='generation')\n"
        "for i in range(25):\n"
        "    m.item(ok=i % 2 == 0, outcome='accepted' if i % 2 == 0 else 'rejected')\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    path = tmp_path / "metrics.jsonl"
    command = [sys.executable, "-c", script, str(path)]
    proc = subprocess.run(command, check=False, capture_output=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL
    log = read_metrics(path)
    assert [r.kind for r in log.records] == ["run"] + ["item"] * 25
    assert RunFigures.from_log(log).summary().status == "running or killed"


def test_a_torn_last_line_is_skipped_and_the_next_writer_starts_a_fresh_line(tmp_path):
    path = tmp_path / "metrics.jsonl"
    with MetricsWriter(path, run="generation") as metrics:
        metrics.item(ok=True, outcome="accepted")
    with path.open("ab") as fh:  # what a kill in the middle of a write leaves
        fh.write(b'{"kind": "item", "t": 1.0, "ok": tr')
    before = path.read_bytes()
    log = read_metrics(tmp_path)
    assert [r.kind for r in log.records] == ["run", "item", "end"] and log.skipped == 1
    assert path.read_bytes() == before  # reading never changes a file that may be live
    with MetricsWriter(path, run="generation") as metrics:  # resume
        metrics.item(ok=False, outcome="rejected", reason="too_short")
    log = read_metrics(path)
    assert [r.kind for r in log.records] == ["run", "item", "end", "run", "item", "end"] and log.skipped == 1


def test_threads_writing_at_once_never_interleave_lines(tmp_path):
    metrics = MetricsWriter(tmp_path / "m.jsonl", run="x")

    def burst(k: int) -> None:
        for i in range(200):
            metrics.call("sandbox", 0.001 * i, error=None if i % 3 else f"kind{k}", ok=bool(i % 3))

    threads = [threading.Thread(target=burst, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    metrics.close()
    log = read_metrics(tmp_path / "m.jsonl")
    assert log.skipped == 0 and sum(r.kind == "call" for r in log.records) == 800


def test_a_missing_metrics_file_is_reported_with_where_it_was_looked_for(tmp_path):
    with pytest.raises(NotFoundError, match=str(tmp_path / "metrics.jsonl")):
        read_metrics(tmp_path)
    assert metrics_path(tmp_path / "x.jsonl") == tmp_path / "x.jsonl"


def test_figures_count_rate_and_spread_what_the_records_say():
    t0 = 1_000_000.0

    def attempt(i: int) -> ItemRecord:  # 3 accepted, 6 too short, 1 llm error
        reason = None if i < 3 else "llm_error" if i == 9 else "too_short"
        outcome = "accepted" if i < 3 else "rejected"
        error = reason if i == 9 else None
        return ItemRecord(t=t0 + i, ok=i < 3, outcome=outcome, reason=reason, error=error)

    records = [
        RunRecord(t=t0, run="generation"),
        *[attempt(i) for i in range(10)],
        *[CallRecord(t=t0 + i, op="llm", seconds=float(i + 1), tokens=100, cost_usd=0.01) for i in range(4)],
        CallRecord(t=t0 + 5, op="sandbox", seconds=0.2, ok=False, error="timeout"),
        EndRecord(t=t0 + 20, status="max_attempts"),
        RunRecord(t=t0 + 500, run="generation"),  # a resume, 480 s later: the gap is not active time
        ItemRecord(t=t0 + 510, ok=True, outcome="accepted"),
    ]
    summary = RunFigures.from_records(records).summary()
    assert summary.runs == ["generation", "generation"] and summary.status == "running or killed"
    assert summary.active_s == pytest.approx(30.0)
    assert (summary.items, summary.ok) == (11, 4) and summary.ok_rate == pytest.approx(4 / 11)
    assert summary.items_per_s == pytest.approx(11 / 30)
    assert summary.reasons == {"too_short": 6, "llm_error": 1}
    assert summary.errors == {"llm_error": 1} and summary.error_rate == pytest.approx(1 / 11)
    assert summary.tokens == 400 and summary.cost_usd == pytest.approx(0.04)
    assert (summary.llm.count, summary.llm.p50, summary.llm.max) == (4, 2.5, 4.0)
    assert summary.sandbox.errors == 1 and summary.call_errors == {"sandbox:timeout": 1}
    labels = [label for label, _ in summary_rows(summary)]
    assert labels[:6] == ["run", "items", "throughput", "tokens", "not ok", "errors"]
    timeline = RunFigures.from_records(records).timeline(bins=3)
    assert sum(timeline.items) == 11 and timeline.edges[-1] == pytest.approx(30.0)
    assert percentile([1, 2, 3, 4], 90) == pytest.approx(3.7) and percentile([], 50) is None


def test_env_steps_give_reward_and_arm_value_series():
    values = [{"a/d1": i / 20, "b/d2": 0.1} for i in range(6)]
    one = {"a/d1": 1}
    steps = [
        StepRecord(t=i, step=i, answers=4, reward_mean=i / 10, correct_rate=i / 10, values=v, drawn=one)
        for i, v in enumerate(values)
        if i > 0
    ]
    records = [RunRecord(t=0.0, run="env"), *steps]
    figures = RunFigures.from_records(records)
    summary = figures.summary()
    assert summary.steps == 5 and summary.reward_last == 0.5 and summary.reward_mean == pytest.approx(0.3)
    tl = figures.timeline()
    assert tl.steps == [1, 2, 3, 4, 5] and tl.values["a/d1"][-1] == 0.25 and tl.drawn["a/d1"] == [1] * 5


async def test_a_timed_client_records_latency_tokens_and_error_kinds(tmp_path):
    def script(request):
        if "fail" in request.user:
            return Answer("nope", status=400)
        return Answer("hello", prompt_tokens=7, completion_tokens=5)

    metrics = MetricsWriter(tmp_path / "m.jsonl", run="cot")
    with ScriptedServer(script) as server:
        retry = RetryPolicy(max_attempts=1)
        async with LLMClient(base_url=server.base_url, model="scripted", timeout_s=20, retry=retry) as client:
            timed = TimedClient(client, metrics)
            assert timed.model == "scripted"  # everything else passes through
            completion = await timed.chat([{"role": "user", "content": "hi"}], max_tokens=8)
            assert completion.text == "hello"
            with pytest.raises(LLMError):
                await timed.chat([{"role": "user", "content": "fail please"}], max_tokens=8)
    metrics.close()
    calls = [r for r in read_metrics(tmp_path / "m.jsonl").records if isinstance(r, CallRecord)]
    assert [(c.op, c.ok, c.tokens) for c in calls] == [("llm", True, 12), ("llm", False, 0)]
    assert calls[1].error and calls[0].seconds > 0


async def test_a_timed_sandbox_records_each_run_and_its_status(tmp_path):
    metrics = MetricsWriter(tmp_path / "m.jsonl", run="validation")
    async with Sandbox(timeout_s=20) as sandbox:
        runner = TimedRunner(sandbox, metrics)
        assert (await runner.run("print(6 * 7)")).stdout.strip() == "42"
        assert not (await runner.run("raise SystemExit(3)")).ok
    metrics.close()
    calls = [r for r in read_metrics(tmp_path / "m.jsonl").records if isinstance(r, CallRecord)]
    assert [(c.op, c.ok, c.error) for c in calls] == [("sandbox", True, None), ("sandbox", False, "error")]


def test_the_writer_creates_its_folder_and_appends_with_a_single_write(tmp_path):
    path = tmp_path / "deep" / "run" / "metrics.jsonl"
    metrics = MetricsWriter(path, run="x")
    size = os.path.getsize(path)
    metrics.item(ok=True)
    assert os.path.getsize(path) > size and path.read_bytes().endswith(b"\n")
    metrics.close()
    metrics.item(ok=True)  # after close: dropped, no error
    assert read_metrics(path).records[-1].kind == "end"
