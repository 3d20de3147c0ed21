"""Evaluators: the LLM judge survives garbage, reward models are read over HTTP, the verifier never leaks."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from scripted_openai_server import Answer, Request, ScriptedServer

from loong_env.llm import LLMClient, RetryPolicy
from loong_env.pipeline import CoTConfig, RewardModel, VerifierEvaluator, run_cot
from loong_env.pipeline.prompts import FEEDBACK_MARKER
from loong_env.pipeline.records import Problem
from loong_env.routing import VerifierRouter
from loong_env.types import DataPoint

FARMER = DataPoint(
    question="A farmer has 12 cows and buys 7 more. How many cows does the farmer have?",
    final_answer="19",
    domain="toy_math",
)
SUM10 = DataPoint(
    question="What is the sum of the first 10 positive integers?", final_answer="55", domain="toy_math"
)


def client_for(server: ScriptedServer) -> LLMClient:
    retry = RetryPolicy(max_attempts=2, backoff_base_s=0.01, cooldown_s=0)
    return LLMClient(base_url=server.base_url, model="scripted", retry=retry)


def is_judge(req: Request) -> bool:
    return "response_format" in req.body


def judge_json(feedback: str, correctness: int, clarity: int, completeness: int) -> str:
    return json.dumps(
        {"feedback": feedback, "correctness": correctness, "clarity": clarity, "completeness": completeness}
    )


async def test_judge_garbage_is_retried_then_recorded_and_the_run_goes_on(tmp_path):
    def script(req: Request) -> Answer:
        if is_judge(req):
            return Answer("Sure! The solution looks great, 10/10")  # not JSON at all
        return Answer("12 + 7 = 19. \\boxed{19}" if "farmer" in req.user else "\\boxed{55}")

    with ScriptedServer(script) as server:
        summary = await run_cot([FARMER, SUM10], out=tmp_path, client=client_for(server), judge="self")
        judge_calls = [r for r in server.requests if is_judge(r)]
    assert len(judge_calls) == 4  # two problems x two attempts each
    for dp in (FARMER, SUM10):  # a retry at temperature 0 would get the same garbage back
        assert [c.body["temperature"] for c in judge_calls if dp.question in c.user] == [0.0, 0.7]
    assert summary.stats.done == 2 and summary.stats.failed == 0
    for result in summary.results:
        [trace] = result.traces
        verifier, judge = trace.evaluations
        assert verifier.scores == {"correct": 1.0}
        assert judge.evaluator == "judge" and judge.scores == {} and judge.attempts == 2
        assert "malformed judge reply after 2 attempts" in judge.error and "10/10" in judge.raw
        assert result.stop_reason == "thresholds_met"  # only the verifier has a threshold


async def test_judge_scores_are_validated_scaled_and_feed_the_refinement(tmp_path):
    def script(req: Request) -> Answer:
        if is_judge(req):
            if "Fixed:" in req.user:
                return Answer(judge_json("Clear now.", 10, 9, 9))
            return Answer(judge_json("Say why 12 and 7 are added.", 8, 4, 6))
        if FEEDBACK_MARKER in req.user:
            return Answer("Fixed: the farmer adds the 7 new cows to 12, 12 + 7 = 19. \\boxed{19}")
        return Answer("\\boxed{19}")

    config = CoTConfig(thresholds={"verifier.correct": 1.0, "judge.clarity": 0.8})
    with ScriptedServer(script) as server:
        summary = await run_cot(
            [FARMER], out=tmp_path, client=client_for(server), judge="self", config=config
        )
        [turn] = [r for r in server.requests if FEEDBACK_MARKER in r.user]
    [result] = summary.results
    first, refined = result.traces
    assert first.scores() == {
        "verifier.correct": 1.0,
        "judge.correctness": 0.8,
        "judge.clarity": 0.4,
        "judge.completeness": 0.6,
    }
    assert "Say why 12 and 7 are added." in turn.user
    assert refined.scores()["judge.clarity"] == 0.9 and result.stop_reason == "thresholds_met"
    assert result.best == 1  # both verified; the refined one scores higher
    assert not refined.hinted  # the judge did not see the reference answer


async def test_a_broken_judge_on_a_judged_threshold_stops_the_loop_instead_of_spinning(tmp_path):
    def script(req: Request) -> Answer:
        return Answer('{"feedback": 3}') if is_judge(req) else Answer("\\boxed{19}")

    config = CoTConfig(max_iterations=5, thresholds={"judge.clarity": 0.5})
    with ScriptedServer(script) as server:
        summary = await run_cot(
            [FARMER], out=tmp_path, client=client_for(server), judge="self", config=config
        )
        solves = [r for r in server.requests if not is_judge(r)]
    [result] = summary.results
    assert result.stop_reason == "evaluation_failed" and len(solves) == 1 and result.solved


@pytest.fixture
def http_server() -> Iterator[Callable[[Callable[[str, dict[str, Any]], tuple[int, Any]]], str]]:
    """Start a real loopback HTTP server answering POSTs with `handler(path, body) -> (status, json)`."""
    servers: list[ThreadingHTTPServer] = []

    def start(handler: Callable[[str, dict[str, Any]], tuple[int, Any]]) -> str:
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                status, payload = handler(self.path, body)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


async def test_reward_model_over_plain_http_scores_every_trace_and_gates_refinement(tmp_path, http_server):
    seen: list[dict[str, Any]] = []
    flaky = {"left": 1}

    def reward(path: str, body: dict[str, Any]) -> tuple[int, Any]:
        seen.append(body)
        if flaky["left"]:  # one 503 first: retried, not recorded as a failure
            flaky["left"] -= 1
            return 503, {"error": "warming up"}
        return 200, {"score": min(1.0, len(body["response"]) / 100)}

    url = http_server(reward) + "/score"

    def script(req: Request) -> Answer:
        if FEEDBACK_MARKER in req.user:
            return Answer(
                "We start with 12 cows. The farmer buys 7 more, so we add: 12 + 7 = 19. "
                "The farmer now has \\boxed{19}"
            )
        return Answer("\\boxed{19}")

    config = CoTConfig(thresholds={"verifier.correct": 1.0, "reward.score": 0.5})
    with ScriptedServer(script) as server:
        summary = await run_cot(
            [FARMER], out=tmp_path, client=client_for(server), config=config, evaluators=[RewardModel(url)]
        )
    [result] = summary.results
    short, long = result.traces
    assert short.scores()["reward.score"] == pytest.approx(0.1) and long.scores()["reward.score"] == 1.0
    assert [e.attempts for e in short.evaluations] == [1, 2]
    assert result.stop_reason == "thresholds_met"
    assert seen[-1] == {"question": FARMER.question, "response": long.text}


async def test_reward_model_on_an_openai_style_endpoint_reads_logprob_scores_and_reports_bad_replies(
    http_server,
):
    def nemotron(path: str, body: dict[str, Any]) -> tuple[int, Any]:
        assert path == "/v1/chat/completions" and [m["role"] for m in body["messages"]] == [
            "user",
            "assistant",
        ]
        if "broken" in body["messages"][1]["content"]:
            return 200, {"choices": [{"message": {"content": "no numbers here"}}]}
        pairs = [{"token": "helpfulness", "logprob": 3.5}, {"token": "correctness", "logprob": 2.25}]
        return 200, {"choices": [{"message": {"content": ""}, "logprobs": {"content": pairs}}]}

    url = http_server(nemotron) + "/v1"
    model = RewardModel(url, protocol="openai", model="nemotron-reward", score_names=("correctness",))
    problem = Problem(index=0, datapoint=FARMER, key=VerifierRouter().key(FARMER))
    good = await model.evaluate(problem, "12 + 7 = 19, \\boxed{19}")
    assert good.ok and good.scores == {"helpfulness": 3.5, "correctness": 2.25}
    bad = await model.evaluate(problem, "broken")
    assert not bad.ok and bad.scores == {} and "ValueError" in (bad.error or "")


async def test_verifier_feedback_says_right_or_wrong_but_never_the_reference():
    evaluator = VerifierEvaluator()
    problem = Problem(index=0, datapoint=FARMER, key=VerifierRouter().key(FARMER))
    wrong = await evaluator.evaluate(problem, "\\boxed{18}")
    none = await evaluator.evaluate(problem, "about twenty")
    right = await evaluator.evaluate(problem, "\\boxed{19}")
    assert (wrong.scores, none.scores, right.scores) == ({"correct": 0.0}, {"correct": 0.0}, {"correct": 1.0})
    assert str(none.status) == "no_answer" and "19" not in wrong.feedback + none.feedback
