"""Reward server promises, over real HTTP on loopback: OpenRLHF's protocol, our typed API, bad input, overload."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

pytest.importorskip("fastapi")

from reward_server_helpers import RunningServer, SlowVerifier

from loong_env.cli import main as loong_main
from loong_env.integrations.reward_scoring import RewardScorer, ScoringConfig, response_from_query
from loong_env.integrations.reward_server import ServerConfig, create_app
from loong_env.integrations.trl import to_grpo_dataset
from loong_env.routing import VerifierRouter
from loong_env.seeds.dataset import load_seeds
from loong_env.types import AnswerKey

pytestmark = pytest.mark.timeout(180)

PROMPT = "<|im_start|>user\nWhat is 6 * 7? Put your final answer within \\boxed{}.<|im_end|>\n<|im_start|>assistant\n"
CODE = "```python\nprint(sum(range(10)))\n```"


@pytest.fixture(scope="module")
def server():
    running = RunningServer(create_app(ServerConfig(max_body_bytes=64 * 1024,
                                                    scoring=ScoringConfig(max_batch=64)))).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def client(server):
    with httpx.Client(base_url=server.url, timeout=120) as c:
        yield c


def test_health_reports_ok_and_the_limits(client):
    body = client.get("/health").json()
    assert body["status"] == "ok" and body["pending_items"] == 0
    assert body["max_batch"] == 64 and body["max_pending_items"] == ScoringConfig().max_pending_items


def test_openapi_documents_both_endpoints_with_typed_models(client):
    spec = client.get("/openapi.json").json()
    assert {"/v1/score", "/get_reward", "/health"} <= set(spec["paths"])
    item = spec["components"]["schemas"]["ScoreItem"]
    assert {"response", "reference"} <= set(item["required"]) and "error" not in item["properties"]
    assert "ScoreResponse" in spec["components"]["schemas"] and "OpenRLHFResponse" in spec["components"]["schemas"]


def test_openrlhf_payload_gets_rewards_scores_and_numeric_extra_logs(client):
    queries = [PROMPT + "6*7 = 42, so \\boxed{42}<|im_end|>", PROMPT + "\\boxed{41}<|im_end|>",
               PROMPT + "I think it is 42.<|im_end|>"]
    payload = {"query": queries, "prompts": [PROMPT] * 3, "labels": ["42", "42", "42"]}
    reply = client.post("/get_reward", json=payload)
    assert reply.status_code == 200
    body = reply.json()
    assert body["rewards"] == [1.0, 0.0, 0.0] and body["scores"] == body["rewards"]
    assert set(body["extra_logs"]) == {"correct", "well_formatted", "verifier_error"}
    for values in body["extra_logs"].values():  # OpenRLHF turns every extra log into a tensor
        assert len(values) == 3 and all(isinstance(v, float) for v in values)
    assert [d["status"] for d in body["details"]] == ["correct", "incorrect", "no_answer"]


def test_openrlhf_verdicts_equal_the_in_process_router(client):
    answers = ["\\boxed{\\frac{1}{2}}", "\\boxed{0.5}", "\\boxed{2/4}", "\\boxed{1/3}", "no box", CODE]
    references = ["1/2", "1/2", "0.5", "0.5", "1/2", "45"]
    payload = {"query": [PROMPT + a for a in answers], "prompts": [PROMPT] * len(answers), "labels": references}
    served = client.post("/get_reward", json=payload).json()

    async def in_process() -> list[float]:
        router = VerifierRouter()
        verdicts = await asyncio.gather(*(router.judge(a, AnswerKey(reference=r)) for a, r in zip(answers, references)))
        return [v.reward for v, _ in verdicts]

    assert served["rewards"] == asyncio.run(in_process())
    assert served["details"][-1]["verifier"] == "python"  # a code answer ran in the sandbox


def test_openrlhf_labels_route_per_domain_through_json_keys(client):
    label = json.dumps({"reference": "14.7 m/s", "domain": "physics"})  # physics' plug-in judges units
    payload = {"query": ["\\boxed{52.92 km/h}", "\\boxed{14.7 m}"], "prompts": ["", ""], "labels": [label, label]}
    body = client.post("/get_reward", json=payload).json()
    assert body["rewards"] == [1.0, 0.0]
    assert {d["verifier"] for d in body["details"]} == {"physics_units"}


def test_the_label_column_of_our_datasets_is_an_openrlhf_label(client):
    rows = to_grpo_dataset(load_seeds("physics"), 3, seed=0)
    payload = {"query": [r["prompt"] + f" so \\boxed{{{r['answer']}}}" for r in rows],
               "prompts": list(rows["prompt"]), "labels": list(rows["label"])}
    body = client.post("/get_reward", json=payload).json()
    assert body["rewards"] == [1.0, 1.0, 1.0]
    assert {d["verifier"] for d in body["details"]} == {"physics_units"}


def test_openrlhf_bad_items_score_zero_with_a_reason_and_the_rest_are_scored(client):
    payload = {"query": ["\\boxed{7}", 12, "\\boxed{7}", "\\boxed{7}"], "prompts": None,
               "labels": ["7", "7", None, "{\"reference\": \"7\", \"bogus\": 1}"]}
    body = client.post("/get_reward", json=payload).json()
    assert body["rewards"] == [1.0, 0.0, 0.0, 0.0]
    reasons = [d["reason"] for d in body["details"][1:]]
    assert "must be a string" in reasons[0] and "missing" in reasons[1] and "bogus" in reasons[2]
    assert body["extra_logs"]["verifier_error"] == [0.0, 1.0, 1.0, 1.0]


def test_response_is_cut_after_the_prompt_in_the_query():
    assert response_from_query(PROMPT + "\\boxed{1}", PROMPT) == "\\boxed{1}"
    assert response_from_query("no prompt here \\boxed{1}", "other") == "no prompt here \\boxed{1}"


def test_our_api_scores_a_typed_batch_and_echoes_ids(client):
    items = [
        {"id": "a", "response": "\\boxed{3.1416}", "reference": "3.14159", "tolerance": {"rel": 1e-3}},
        {"id": 7, "response": "\\boxed{3.2}", "reference": 3.14159, "tolerance": 0.001},
        {"id": "code", "response": CODE, "reference": "45"},
        {"id": "fmt", "response": "\\boxed{1} or \\boxed{2}", "reference": "2"},
    ]
    body = client.post("/v1/score", json={"items": items, "format_weight": 0.5}).json()
    assert [r["id"] for r in body["results"]] == ["a", 7, "code", "fmt"]
    assert [r["correctness"] for r in body["results"]] == [1.0, 0.0, 1.0, 1.0]
    assert [r["well_formatted"] for r in body["results"]] == [True, True, True, False]
    assert [r["reward"] for r in body["results"]] == [1.5, 0.5, 1.5, 1.0]
    assert body["n"] == 4 and body["correct"] == 3 and body["invalid"] == 0


def test_our_api_malformed_items_score_zero_and_never_fail_the_batch(client):
    items = [
        {"id": 1, "response": "\\boxed{5}", "reference": "5"},
        {"id": 2, "response": 5, "reference": "5"},
        {"id": 3, "response": "\\boxed{5}"},
        {"id": 4, "response": "\\boxed{5}", "reference": "5", "tolerance": {"rel": -1}},
        {"id": 5, "response": "\\boxed{5}", "reference": "5", "extra": True},
        "not an object",
        {"id": 7, "response": "\\boxed{5}", "reference": "5", "verifier": "no_such_plugin"},
    ]
    reply = client.post("/v1/score", json={"items": items})
    assert reply.status_code == 200
    body = reply.json()
    assert [r["reward"] for r in body["results"]] == [1.0, 0, 0, 0, 0, 0, 0]
    assert [r["status"] for r in body["results"][:6]] == ["correct"] + ["invalid"] * 5
    assert body["results"][6]["status"] == "error" and "no_such_plugin" in body["results"][6]["reason"]
    assert all(r["reason"] for r in body["results"][1:])
    assert body["invalid"] == 5 and body["errors"] == 1


def test_malformed_envelope_is_a_422_naming_the_field(client):
    reply = client.post("/v1/score", json={"itemz": []})
    assert reply.status_code == 422 and "items" in reply.text
    assert client.post("/get_reward", content=b"{not json", headers={"content-type": "application/json"}
                       ).status_code == 422


def test_batch_over_max_batch_is_413(client):
    items = [{"response": "\\boxed{1}", "reference": "1"}] * 65
    reply = client.post("/v1/score", json={"items": items})
    assert reply.status_code == 413 and "at most 64" in reply.json()["detail"]


def test_body_over_the_limit_is_413_with_or_without_content_length(client):
    big = {"query": ["x" * 70_000], "prompts": [""], "labels": ["1"]}
    assert client.post("/get_reward", json=big).status_code == 413

    def chunks():
        data = json.dumps(big).encode()
        for i in range(0, len(data), 8192):
            yield data[i:i + 8192]

    reply = client.post("/get_reward", content=chunks(), headers={"content-type": "application/json"})
    assert reply.status_code == 413 and "limit" in reply.json()["detail"]


def test_overload_answers_429_at_once_and_the_admitted_batch_still_completes():
    scorer = RewardScorer(ScoringConfig(max_pending_items=4, route=False), verifier=SlowVerifier(1.0))
    running = RunningServer(create_app(scorer=scorer)).start()
    items = {"items": [{"response": "1", "reference": "1"}] * 3}

    async def burst():
        async with httpx.AsyncClient(base_url=running.url, timeout=30) as c:
            first = asyncio.create_task(c.post("/v1/score", json=items))
            while scorer.pending_items < 3:  # wait until the first batch is admitted and verifying
                await asyncio.sleep(0.01)
            second = await c.post("/v1/score", json=items)
            first_done_before_second = first.done()
            return await first, second, first_done_before_second

    try:
        first, second, first_done_before_second = asyncio.run(burst())
    finally:
        running.stop()
    assert first.status_code == 200 and first.json()["correct"] == 3
    assert second.status_code == 429 and second.headers["retry-after"] == "1"
    assert "busy" in second.json()["detail"]
    assert not first_done_before_second  # answered while the first batch verified, not queued behind it


def test_a_request_past_its_deadline_is_503_not_a_hang():
    scorer = RewardScorer(ScoringConfig(request_timeout_s=0.5, route=False), verifier=SlowVerifier(30.0))
    running = RunningServer(create_app(scorer=scorer)).start()
    try:
        with httpx.Client(base_url=running.url, timeout=20) as c:
            reply = c.post("/get_reward", json={"query": ["1"], "prompts": [""], "labels": ["1"]})
            health = c.get("/health").json()
    finally:
        running.stop()
    assert reply.status_code == 503 and reply.headers["retry-after"] == "1"
    assert "not scored within 0.5 s" in reply.json()["detail"]
    assert health["pending_items"] == 0  # the cancelled items were released


def test_serve_reward_cli_rejects_impossible_limits(capsys):
    assert loong_main(["serve-reward", "--max-batch", "0"]) == 2
    assert "max_batch" in capsys.readouterr().err
