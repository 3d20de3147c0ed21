"""Reward server under hostile input: schemathesis against its OpenAPI schema, plus hand-written bad inputs.

Promises: no 500, no hang, every error a JSON body whose `detail` is a message, and nothing a caller sends
makes the server install a package.
"""

from __future__ import annotations

import json
import time

import pytest

pytest.importorskip("fastapi")
schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from loong_env.integrations.reward_scoring import ScoringConfig
from loong_env.integrations.reward_server import ServerConfig, create_app

KEY = "fuzz-key-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {KEY}"}
SLOW_S = 10.0  # a reply slower than this is a hang for these tiny inputs


# Small limits keep generated batches cheap; no routing keeps a generated "```python" answer out of the sandbox
# (code answers are fuzzed by hand below, with the sandbox).
APP = create_app(ServerConfig(api_key=KEY, max_body_bytes=256 * 1024,
                              scoring=ScoringConfig(max_batch=16, route=False, request_timeout_s=20)))
SCHEMA = schemathesis.openapi.from_dict(APP.openapi())
SCHEMA.app = APP  # calls go to the app in-process, as from_asgi does (which would also run its start-up here)


@schemathesis.check
def error_is_json_with_a_message(ctx, response, case) -> bool:
    """Every 4xx/5xx is a JSON object whose `detail` is a non-empty string."""
    if response.status_code >= 400:
        body = json.loads(response.content)
        assert isinstance(body, dict) and isinstance(body.get("detail"), str) and body["detail"], body
    return True


@schemathesis.check
def answered_in_time(ctx, response, case) -> bool:
    assert response.elapsed < SLOW_S, f"took {response.elapsed:.1f} s"
    return True


@schemathesis.check
def never_a_server_error(ctx, response, case) -> bool:
    assert response.status_code < 500, response.content[:500]
    return True


@pytest.mark.timeout(120)
@SCHEMA.parametrize()
@settings(max_examples=25, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_schemathesis_finds_no_500_no_hang_and_only_json_errors(case):
    # Not run: negative_data_rejection (a malformed *item* is a 200 that scores it 0, by design) and
    # positive_data_acceptance (a schema-valid item may name requirements the operator did not allow: 403).
    case.call_and_validate(headers=AUTH, checks=[never_a_server_error, answered_in_time,
                                                 error_is_json_with_a_message, status_code_conformance,
                                                 content_type_conformance, response_schema_conformance])


@pytest.mark.timeout(120)
@SCHEMA.parametrize()
@settings(max_examples=5, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_schemathesis_without_the_key_gets_401_or_health(case):
    response = case.call()
    if case.path == "/health":
        assert response.status_code == (200 if case.method.upper() == "GET" else 405)
    else:
        assert response.status_code in (400, 401, 405, 422), response.text[:300]
        assert isinstance(response.json()["detail"], str)


# -- hand-written bad input, over real HTTP, with code answers routed to the sandbox ----------------------

@pytest.fixture(scope="module")
def server():
    from reward_server_helpers import RunningServer

    from loong_env.routing import VerifierRouter
    from loong_env.sandbox import Sandbox
    from loong_env.verifiers.python import PythonVerifier

    quick = PythonVerifier(sandbox=Sandbox(timeout_s=1.0, workers=1, memory_mb=256))

    class QuickCode(VerifierRouter):
        """Code answers in a private sandbox with a 1 s limit, so a loop costs this test one second."""

        def code_verifier(self, requirements):
            return quick

    from loong_env.integrations.reward_scoring import RewardScorer

    config = ScoringConfig(max_batch=64, max_response_chars=50_000)
    scorer = RewardScorer(config, router=QuickCode(route=True))
    running = RunningServer(create_app(ServerConfig(max_body_bytes=512 * 1024, scoring=config), scorer=scorer)).start()
    yield running
    running.stop()
    quick.sandbox.close_sync()


@pytest.fixture(scope="module")
def client(server):
    import httpx

    with httpx.Client(base_url=server.url, timeout=60) as c:
        yield c


def _error_body(reply) -> str:
    body = reply.json()
    assert isinstance(body["detail"], str) and body["detail"]
    return body["detail"]


def test_huge_strings_are_413_or_an_invalid_item_never_a_500(client):
    assert client.post("/v1/score", json={"items": [{"response": "x" * 600_000, "reference": "1"}]}).status_code == 413
    reply = client.post("/v1/score", json={"items": [{"id": "i" * 10_000, "response": "\\boxed{1}" + "y" * 60_000,
                                                      "reference": "1" * 100_000}]})
    assert reply.status_code == 413 or reply.json()["results"][0]["status"] == "invalid"
    body = client.post("/v1/score", json={"items": [{"response": "\\boxed{1}" + " " * 60_000, "reference": "1"}]}).json()
    assert body["results"][0]["status"] == "invalid" and "limit" in body["results"][0]["reason"]
    long_ref = client.post("/v1/score", json={"items": [{"response": "\\boxed{1}", "reference": "9" * 200_000}]})
    assert long_ref.status_code == 200 and long_ref.json()["results"][0]["reward"] == 0.0


def test_deep_json_is_a_400_with_a_message(client):
    for depth in (100_000, 3_000):
        nested = b"[" * depth + b"]" * depth
        reply = client.post("/v1/score", content=b'{"items": ' + nested + b"}", headers={"content-type": "application/json"})
        assert reply.status_code in (400, 422) and _error_body(reply)
    label = {"reference": json.loads("[" * 200 + "]" * 200)}
    reply = client.post("/get_reward", json={"query": ["\\boxed{1}"], "prompts": [""], "labels": [label]})
    assert reply.status_code == 200 and reply.json()["details"][0]["status"] == "invalid"


def test_nul_and_invalid_utf8_are_answered_not_crashed_on(client):
    for raw in (b'{"items": [{"response": "\xff\xfe", "reference": "1"}]}', b"\xff" * 100, b'{"query": ["\xc3\x28"]}'):
        for path in ("/v1/score", "/get_reward"):
            reply = client.post(path, content=raw, headers={"content-type": "application/json"})
            assert reply.status_code == 400 and "UTF-8 JSON" in _error_body(reply)
    items = [{"response": "\\boxed{1}\x00", "reference": "1\x00"}, {"response": "```python\nprint('\x00')\n```", "reference": "\x00"},
             {"id": "\x00", "response": "\x00", "reference": "\x00", "domain": "\x00", "verifier": "\x00"}]
    body = client.post("/v1/score", json={"items": items}).json()
    assert body["n"] == 3 and all(r["reward"] == 0.0 or r["status"] == "correct" for r in body["results"])
    assert body["results"][2]["status"] in ("invalid", "error")


def test_mismatched_list_lengths_score_every_query_and_only_the_queries(client):
    reply = client.post("/get_reward", json={"query": ["\\boxed{1}", "\\boxed{2}", "\\boxed{3}"], "prompts": [""],
                                             "labels": ["1", "2", "3", "4", "5"]})
    assert reply.status_code == 200 and reply.json()["rewards"] == [1.0, 1.0, 1.0]
    reply = client.post("/get_reward", json={"query": ["\\boxed{1}", "\\boxed{2}"], "prompts": [], "labels": ["1"]})
    assert reply.json()["rewards"] == [1.0, 0.0] and reply.json()["details"][1]["status"] == "invalid"
    reply = client.post("/get_reward", json={"query": [], "prompts": ["a"], "labels": ["1"]})
    assert reply.status_code == 200 and reply.json()["rewards"] == []


def test_unknown_verifier_names_are_an_error_verdict_naming_the_plugin(client):
    names = ["no_such_plugin", "../../etc/passwd", "os.system", "__import__", "", "x" * 5000]
    items = [{"id": n[:20], "response": "\\boxed{1}", "reference": "1", "verifier": n} for n in names]
    body = client.post("/v1/score", json={"items": items}).json()
    statuses = [r["status"] for r in body["results"]]
    assert statuses[:4] == ["error"] * 4 and all(s in ("error", "correct") for s in statuses)  # "" means none
    assert "no_such_plugin" in body["results"][0]["reason"] and "identifier" in body["results"][1]["reason"]


def test_code_answers_that_loop_or_allocate_fail_alone_and_fast(client):
    loops = ["while True:\n    pass", "import time\ntime.sleep(60)", "x = bytearray(8 * 2**30)\nprint(1)",
             "x = []\nwhile True:\n    x.append(' ' * 10**6)", "import os\nwhile True:\n    os.fork()",
             "print('1' * 10**8)"]
    items = [{"id": i, "response": f"```python\n{c}\n```", "reference": "1"} for i, c in enumerate(loops)]
    items.append({"id": "ok", "response": "```python\nprint(1)\n```", "reference": "1"})
    t0 = time.monotonic()
    body = client.post("/v1/score", json={"items": items}).json()
    assert [r["status"] for r in body["results"][:-1]] == ["error"] * len(loops), body
    assert body["results"][-1]["status"] == "correct"  # the sandbox survived its neighbours
    assert time.monotonic() - t0 < 60


def test_hostile_requirement_strings_are_refused_with_a_message(client):
    hostile = [["evil @ https://example.invalid/e.whl"], ["--index-url=https://example.invalid"], ["-r /etc/passwd"],
               ["x; python_version > '0' and __import__('os')"], ["\x00"], ["a" * 50_000], [" "] * 1000, ["numpy==2.2.6"]]
    for reqs in hostile:
        reply = client.post("/v1/score", json={"items": [{"response": "```python\nprint(1)\n```", "reference": "1",
                                                          "requirements": reqs}]})
        if reqs == [" "] * 1000:  # blank strings name no package at all: the item keeps its domain's (none)
            assert reply.status_code == 403 or reply.json()["results"][0]["status"] == "correct"
            continue
        assert reply.status_code == 403, reqs
        assert "--allow-requirements" in _error_body(reply) and len(reply.text) < 3000
