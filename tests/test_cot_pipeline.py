"""The CoT pipeline end to end on the scripted server: refine, rejection sampling, STaR, failures, limits.

Requests travel over real HTTP through LLMClient; the script answers by what a request says (a first
solve, a refinement turn, a hinted rationalization), never by arrival order unless a test says so.
"""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from scripted_openai_server import Action, Answer, Request, ScriptedServer, Status

from loong_env.errors import UnknownNameError
from loong_env.llm import LLMClient, RetryPolicy
from loong_env.pipeline import (
    CoTConfig,
    LimiterConfig,
    read_failures,
    read_manifest,
    read_results,
    run_cot,
    to_sft_dataset,
)
from loong_env.pipeline.prompts import FEEDBACK_MARKER, HINT_MARKER
from loong_env.runs.durable import OutputError
from loong_env.runs.metrics import read_metrics
from loong_env.types import DataPoint

FARMER = DataPoint(
    question="A farmer has 12 cows and buys 7 more. How many cows does the farmer have?",
    final_answer="19",
    domain="toy_math",
    difficulty=1,
)
SUM10 = DataPoint(
    question="What is the sum of the first 10 positive integers?",
    final_answer="55",
    domain="toy_math",
    difficulty=1,
)
SQUARE = DataPoint(question="What is the area of a square with side 6?", final_answer="36", domain="toy_math")


def client_for(server: ScriptedServer, **kwargs: object) -> LLMClient:
    retry = RetryPolicy(max_attempts=3, backoff_base_s=0.01, backoff_max_s=0.05, cooldown_s=0)
    return LLMClient(base_url=server.base_url, model="scripted", retry=retry, **kwargs)  # type: ignore[arg-type]


def wrong_then_right(req: Request) -> Answer:
    """First solves are wrong; a refinement turn or a hint gets the farmer right and nothing else."""
    if FEEDBACK_MARKER in req.user or HINT_MARKER in req.user:
        return Answer(
            "12 + 7 = 19, so \\boxed{19}" if "farmer" in req.messages[1]["content"] else "\\boxed{1}"
        )
    return Answer("12 + 7 = 18, so \\boxed{18}")


async def test_refine_stops_once_the_verifier_accepts_and_keeps_the_whole_history(tmp_path):
    with ScriptedServer(wrong_then_right) as server:
        summary = await run_cot(
            [FARMER], out=tmp_path, client=client_for(server), config=CoTConfig(max_iterations=3)
        )
        refine_turns = [r for r in server.requests if FEEDBACK_MARKER in r.user]
    [result] = summary.results
    assert result.stop_reason == "thresholds_met"
    assert [(t.kind, t.round, t.correct) for t in result.traces] == [
        ("initial", 0, False),
        ("refined", 1, True),
    ]
    assert result.best == 1 and not result.first_correct and result.solved
    first = result.traces[0]
    assert first.extracted == "18" and first.evaluations[0].scores == {"correct": 0.0}
    # the refinement turn carried the first trace and the verifier's feedback, not the reference answer
    [turn] = refine_turns
    assert turn.messages[-2] == {"role": "assistant", "content": first.text}
    assert "\\boxed{18} is not correct" in turn.user and "19" not in turn.user
    assert summary.stats.first_correct == 0 and summary.stats.solved == 1


async def test_refine_ends_after_max_iterations_when_thresholds_are_never_met(tmp_path):
    with ScriptedServer(lambda req: Answer("I think it is \\boxed{7}")) as server:
        summary = await run_cot(
            [SUM10],
            out=tmp_path,
            client=client_for(server),
            config=CoTConfig(max_iterations=2, rationalize=False),
        )
        assert len(server.requests) == 3
    [result] = summary.results
    assert result.stop_reason == "max_iterations" and result.best is None
    assert [t.kind for t in result.traces] == ["initial", "refined", "refined"]


async def test_unsolved_problems_get_one_hinted_trace_that_exports_keep_apart(tmp_path):
    with ScriptedServer(wrong_then_right) as server:
        config = CoTConfig(mode="rejection", samples=3)
        summary = await run_cot([FARMER, SUM10], out=tmp_path, client=client_for(server), config=config)
    farmer, sum10 = summary.results
    for result in (farmer, sum10):
        assert (
            result.samples == 3 and result.correct_samples == 0 and result.pass_at == {1: 0.0, 2: 0.0, 3: 0.0}
        )
        hinted = [t for t in result.traces if t.hinted]
        assert [t.kind for t in hinted] == ["rationalized"] and result.traces[-1].hinted
    assert farmer.rationalized == 3 and sum10.rationalized is None  # only the farmer's hinted trace verified
    assert summary.stats.rationalized == 2 and summary.stats.rationalized_correct == 1
    assert len(to_sft_dataset(tmp_path)) == 0  # hinted traces are never mixed in silently
    with_hints = to_sft_dataset(tmp_path, include_rationalized=True)
    assert with_hints["rationalized"] == [True] and HINT_MARKER not in str(with_hints["messages"])


async def test_rejection_sampling_counts_verified_samples_and_reports_unbiased_pass_at_k(tmp_path):
    lock, seen = threading.Lock(), {"n": 0}

    def one_in_four(req: Request) -> Answer:  # the first draw of each request batch is right
        with lock:
            seen["n"] += 1
            k = seen["n"]
        # one choice whatever n asks: a server that ignores n
        return Answer(choices=("6 * 6 = 36, \\boxed{36}" if k % 4 == 1 else "6 + 6 = 12, \\boxed{12}",))

    with ScriptedServer(one_in_four) as server:
        config = CoTConfig(mode="rejection", samples=4, select="shortest")
        summary = await run_cot([SQUARE], out=tmp_path, client=client_for(server), config=config)
        sent = [r.body.get("n", 1) for r in server.requests]
    [result] = summary.results
    assert result.samples == 4 and result.correct_samples == 1
    assert result.pass_at[1] == pytest.approx(0.25) and result.pass_at[4] == 1.0
    assert result.traces[result.best].extracted == "36"
    # the scripted server ignores n: one n=4 request, then the missing three as single requests
    assert sent == [4, 1, 1, 1]
    # the run's metrics (what `loong report` plots): one item, and one call record per request sent
    kinds = Counter(r.kind for r in read_metrics(tmp_path).records)
    items = [r for r in read_metrics(tmp_path).records if r.kind == "item"]
    assert kinds["call"] == len(sent) and [(i.ok, i.outcome) for i in items] == [(True, "solved")]
    assert summary.stats.pass_at() == result.pass_at


async def test_n_choices_come_from_one_request_and_a_capped_server_gets_narrower_ones(tmp_path):
    def capped(req: Request) -> Action:
        n = int(req.body.get("n", 1))
        if n > 2:
            return Status(400, message="Field 'n': Value must be between 1 <= value <= 2")
        return Answer(choices=tuple(f"step {i}: \\boxed{{36}}" for i in range(n)), completion_tokens=8)

    with ScriptedServer(capped) as server:
        config = CoTConfig(mode="rejection", samples=4)
        summary = await run_cot([SQUARE], out=tmp_path / "one", client=client_for(server), config=config)
        sent = [r.body.get("n", 1) for r in server.requests]
        squares = [
            DataPoint(question=f"What is the area of a square with side 6 (take {i})?", final_answer="36",
                      domain="toy_math")
            for i in range(6)
        ]
        server.requests.clear()
        many = await run_cot(squares, out=tmp_path / "many", client=client_for(server), config=config)
        sent_by_many = [r.body.get("n", 1) for r in server.requests]
    [result] = summary.results
    assert result.correct_samples == 4 and result.pass_at[1] == 1.0
    assert sent == [4, 2, 2]  # refused once, then two requests of two choices
    assert all(t.tokens_estimated for t in result.traces)
    # problems refused at the same time all learn the cap, none narrows below it
    assert min(sent_by_many) == 2 and sent_by_many.count(2) == 12
    assert all(r.correct_samples == 4 for r in many.results)


async def test_a_failing_problem_is_recorded_with_why_and_the_others_finish_in_input_order(tmp_path):
    def refuse_squares(req: Request) -> Action:
        if "square" in req.user:
            return Status(400, message="this prompt is not allowed")
        return Answer("\\boxed{19}" if "farmer" in req.user else "\\boxed{55}")

    with ScriptedServer(refuse_squares) as server:
        summary = await run_cot([FARMER, SQUARE, SUM10], out=tmp_path, client=client_for(server))
    assert [r.index for r in summary.results] == [0, 2]
    assert all(r.first_correct for r in summary.results)
    [failure] = read_failures(tmp_path)
    assert failure.index == 1 and "LLM request failed" in failure.error and "rejected" in failure.error
    assert summary.stats.failed == 1 and summary.stats.done == 2
    # a later run retries only the failed problem
    with ScriptedServer(lambda req: Answer("\\boxed{36}")) as server:
        again = await run_cot([FARMER, SQUARE, SUM10], out=tmp_path, client=client_for(server))
        assert len(server.requests) == 1
    assert [r.index for r in again.results] == [0, 1, 2] and read_failures(tmp_path) == []
    assert [run.status for run in read_manifest(tmp_path).runs] == ["done", "done"]


async def test_rate_limits_shrink_the_concurrency_and_every_problem_still_finishes(tmp_path):
    lock, count = threading.Lock(), {"n": 0}

    def busy_at_first(req: Request) -> Action:
        with lock:
            count["n"] += 1
            k = count["n"]
        if k <= 3:
            return Status(429, retry_after="0", message="slow down")
        return Answer("\\boxed{19}", delay_s=0.02)

    problems = [
        DataPoint(
            question=f"Farmer {i} has 12 cows and buys 7 more. How many?",
            final_answer="19",
            domain="toy_math",
        )
        for i in range(8)
    ]
    config = CoTConfig(limiter=LimiterConfig(max_limit=4, latency_factor=None))
    with ScriptedServer(busy_at_first) as server:
        summary = await run_cot(problems, out=tmp_path, client=client_for(server), config=config)
    assert summary.stats.done == 8 and summary.stats.failed == 0
    assert [r.index for r in read_results(tmp_path)] == list(range(8))
    assert summary.stats.concurrency is not None and summary.stats.concurrency < 4  # it shrank at least once


async def test_a_threshold_no_evaluator_gives_is_refused_with_a_suggestion(tmp_path):
    with (
        ScriptedServer(wrong_then_right) as server,
        pytest.raises(UnknownNameError, match="verifier.correct"),
    ):
        await run_cot(
            [FARMER],
            out=tmp_path,
            client=client_for(server),
            config=CoTConfig(thresholds={"verifier.corect": 1.0}),
        )


async def test_resuming_a_directory_with_other_settings_is_refused(tmp_path):
    with ScriptedServer(wrong_then_right) as server:
        await run_cot([FARMER], out=tmp_path, client=client_for(server), config=CoTConfig(max_iterations=1))
        with pytest.raises(OutputError, match="max_iterations"):
            await run_cot(
                [FARMER], out=tmp_path, client=client_for(server), config=CoTConfig(max_iterations=3)
            )


async def test_a_trace_cut_off_by_the_length_limit_is_told_so_in_the_refinement_turn(tmp_path):
    def long_then_short(req: Request) -> Answer:
        if FEEDBACK_MARKER in req.user:
            return Answer("12 + 7 = 19. \\boxed{19}")
        return Answer("Let us think about cows in great detail. First", finish_reason="length")

    with ScriptedServer(long_then_short) as server:
        summary = await run_cot([FARMER], out=tmp_path, client=client_for(server))
        [turn] = [r for r in server.requests if FEEDBACK_MARKER in r.user]
    assert "cut off by the length limit" in turn.user and "no final answer" in turn.user
    first, refined = summary.results[0].traces
    assert (first.finish_reason, str(first.status), refined.correct) == ("length", "no_answer", True)
