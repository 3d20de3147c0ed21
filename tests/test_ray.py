"""Scale-out on Ray: generation keeps run_generation's output promises when a driver or a worker is killed,
novelty stays global across nodes, seeds validate on workers, rewards serve from Ray Serve replicas.

One real two-node Ray cluster (two raylets on loopback, one CPU each) serves the whole module; LLM calls go
over HTTP to the scripted OpenAI-compatible server, so outcomes are exact.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import ray_cluster  # before ray: keeps the cluster on loopback

ray = pytest.importorskip("ray")

import httpx
from scripted_openai_server import Answer, Request, ScriptedServer, candidate_json, numbered_problems

from loong_env.distributed import NoveltyPool, RayOptions, run_generation_ray, validate_seeds_ray
from loong_env.generators import KeepConfig, read_accepted, read_manifest, read_rejected
from loong_env.generators.keep import RejectReason
from loong_env.seeds.dataset import SeedDataset, load_seeds
from loong_env.seeds.validation import validate_seeds
from loong_env.types import DataPoint, normalize_question

pytestmark = pytest.mark.timeout(300)

DOMAIN = "graph_discrete_math"
LOW_BAR = KeepConfig(novelty_threshold=0.95)  # numbered problems differ only in their numbers


@pytest.fixture(scope="module")
def cluster():
    with ray_cluster.local_cluster(nodes=2) as running:
        yield running


@pytest.fixture(scope="module")
def numbered():
    with ScriptedServer(numbered_problems(delay_s=0.2)) as server:
        yield server


def _written(out: Path) -> tuple[list[DataPoint], list[dict]]:
    return read_accepted(out), read_rejected(out)


def _attempts(out: Path) -> list[int]:
    """Attempt numbers of every complete line (a kill may leave a torn last line; the next run cuts it)."""
    accepted, rejected = _written(out)
    return [dp.metadata["attempt"] for dp in accepted] + [r["attempt"] for r in rejected]


def _assert_consistent(out: Path, expected_accepted: int) -> list[int]:
    """Each attempt written once, no question kept twice, the manifest matching the files; the attempts."""
    accepted, rejected = _written(out)
    numbers = [dp.metadata["attempt"] for dp in accepted] + [r["attempt"] for r in rejected]
    assert [n for n, c in Counter(numbers).items() if c > 1] == [], "an attempt was written twice"
    questions = Counter(normalize_question(dp.question) for dp in accepted)
    assert max(questions.values()) == 1, "a question was kept twice"
    manifest = read_manifest(out)
    assert (manifest.accepted, manifest.rejected) == (len(accepted), len(rejected))
    assert len(accepted) == expected_accepted
    for path in (out / "accepted.jsonl", out / "rejected.jsonl"):
        data = path.read_bytes() if path.exists() else b""
        assert not data or data.endswith(b"\n"), f"{path.name} has a torn line"
    return numbers


def test_pool_claims_atomically_and_a_released_claim_frees_its_question() -> None:
    seed = DataPoint(
        question="How many edges does the complete graph on five vertices have?",
        final_answer="10",
        rationale="print(10)",
        domain=DOMAIN,
    )
    pool = NoveltyPool(KeepConfig(), [seed])
    twin = DataPoint(
        question="A basket has 1001 and 7 apples; how many apples are in the basket in total?",
        final_answer="1008",
        rationale="print(1008)",
        domain=DOMAIN,
    )
    assert pool.claim(1, twin).reason is None
    assert pool.claim(2, twin).reason is RejectReason.duplicate  # a second worker's copy loses
    assert pool.release(1) and pool.claim(2, twin).reason is None  # attempt 1 is being retried: 2 may have it
    changes, cursor = pool.changes_since(0)
    assert [c.op for c in changes] == ["add", "remove", "add"] and cursor == 3 and pool.size() == 2


def test_generation_survives_a_killed_driver_and_a_killed_worker_without_loss_or_duplicates(
    cluster, numbered, tmp_path: Path
) -> None:
    out = tmp_path / "gen"
    address = ray.get_runtime_context().gcs_address
    # 1) a driver process (the CLI) is killed -9 once it has written two accepted items
    driver = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "loong_env",
            "generate",
            "--domain",
            DOMAIN,
            "--n",
            "40",
            "--out",
            str(out),
            "--ray",
            address,
            "--ray-workers",
            "2",
            "--base-url",
            numbered.base_url,
            "--model",
            "scripted",
            "--concurrency",
            "2",
            "--novelty-threshold",
            "0.95",
            "--quiet",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    accepted_file = out / "accepted.jsonl"
    deadline = time.monotonic() + 150
    while not (accepted_file.exists() and accepted_file.read_bytes().count(b"\n") >= 2):
        assert driver.poll() is None, driver.stderr.read().decode()[-2000:] if driver.stderr else ""
        assert time.monotonic() < deadline, "the driver wrote nothing in time"
        time.sleep(0.1)
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    before = _attempts(out)
    assert read_manifest(out).runs[-1].status == "running"  # it never closed: the next open says "killed"

    # 2) the resumed run loses a worker mid-run; its in-flight attempts run again on the other one
    killed: list[int] = []
    pids: list[int] = []

    def on_start(info: dict) -> None:
        pids.extend(w.pid for w in info["workers"])
        assert info["nodes"] == 2 and len({w.node_id for w in info["workers"]}) == 2  # one worker per node

    def on_verdict(_verdict: object) -> None:
        if not killed:
            os.kill(pids[0], signal.SIGKILL)
            killed.append(pids[0])

    target = len(read_accepted(out)) + 8  # room for the retried attempts to finish before the target
    summary = asyncio.run(
        run_generation_ray(
            DOMAIN,
            out=out,
            n=target,
            base_url=numbered.base_url,
            model="scripted",
            ray=RayOptions(workers=2),
            concurrency=2,
            keep_config=LOW_BAR,
            on_start=on_start,
            on_verdict=on_verdict,
        )
    )
    assert killed and summary.worker_failures == 1 and summary.retried, (
        "nothing was in flight on the killed worker"
    )
    numbers = _assert_consistent(out, target)
    written, abandoned = set(numbers), set(summary.abandoned_attempts)
    assert set(summary.retried) <= written | abandoned, "a retried attempt was neither written nor reported"
    assert set(summary.retried) & written, "no retried attempt was run to the end on another worker"
    assert not written & abandoned and len(abandoned) == summary.abandoned
    assert min(written - set(before)) > max(before), "the resumed run replayed an old attempt number"
    assert summary.attempts == summary.accepted + summary.rejected + summary.abandoned
    assert summary.accepted_total == target and read_manifest(out).runs[-2].status == "killed"


def test_near_duplicates_from_two_nodes_are_kept_once(cluster, tmp_path: Path) -> None:
    question = (
        "A basket holds 1200 apples and 34 pears in two rows; how many fruits does the basket hold in total?"
    )

    def twins(request: Request) -> Answer:  # every worker proposes the same problem; solves take a while
        if request.is_solve:
            return Answer("1200 + 34 = 1234. \\boxed{1234}", delay_s=0.5)
        return Answer(candidate_json(question, "print(1200 + 34)"), delay_s=0.2)

    with ScriptedServer(twins) as server:
        summary = asyncio.run(
            run_generation_ray(
                DOMAIN,
                out=tmp_path / "twins",
                n=3,
                max_attempts=4,
                base_url=server.base_url,
                model="scripted",
                ray=RayOptions(workers=2),
                concurrency=1,
            )
        )
    assert summary.accepted == 1 and summary.rejected_by_reason == {"duplicate": 3}
    late = [r for r in read_rejected(tmp_path / "twins") if r["solves"]]
    assert late, "no twin got past the early check: the final atomic claim was not exercised"


def _small_library() -> SeedDataset:
    every = load_seeds()
    return SeedDataset.concat(every.filter(domain=d)[:3] for d in every.domains[:2])


def test_seed_validation_on_ray_workers_matches_the_single_process_report(cluster) -> None:
    dataset = _small_library()
    seen: list[str] = []
    report = asyncio.run(
        validate_seeds_ray(
            dataset, ray=RayOptions(workers=2), chunk_size=3, on_result=lambda c: seen.append(c.id)
        )
    )
    local = asyncio.run(validate_seeds(dataset))
    assert [(c.id, c.status) for c in report.checks] == [(c.id, c.status) for c in local.checks]
    assert sorted(seen) == sorted(p.id for p in dataset) and report.ok
    assert [(d.domain, d.passed) for d in report.domains] == [(d.domain, d.passed) for d in local.domains]


def test_serve_options_become_rays_autoscaling_config_and_bad_ranges_are_refused() -> None:
    from pydantic import ValidationError

    from loong_env.distributed.serve import ServeOptions

    scaled = ServeOptions(autoscale=(0, 8), target_ongoing_requests=2).deployment_options()
    assert "num_replicas" not in scaled
    assert scaled["autoscaling_config"] == {
        "min_replicas": 0,
        "max_replicas": 8,
        "initial_replicas": 1,
        "target_ongoing_requests": 2,
    }
    assert ServeOptions(replicas=3).deployment_options()["num_replicas"] == 3
    with pytest.raises(ValidationError, match="autoscale"):
        ServeOptions(autoscale=(4, 2))


def test_reward_server_on_ray_serve_answers_the_same_api_from_two_replicas(cluster) -> None:
    from ray import serve
    from reward_server_helpers import free_port

    from loong_env.distributed.serve import ServeOptions, serve_rewards, stop_rewards
    from loong_env.integrations.reward_scoring import RewardScorer
    from loong_env.integrations.reward_server import ServerConfig

    options = ServeOptions(replicas=2, replica_cpus=0.5, port=free_port(), proxy_location="HeadOnly")
    url = serve_rewards(ServerConfig(), options)
    try:
        status = serve.status().applications[options.name].deployments[options.name]
        assert status.replica_states.get("RUNNING") == 2
        items = [
            {"id": 1, "response": "so \\boxed{42}", "reference": "42"},
            {"id": 2, "response": "\\boxed{41}", "reference": "42"},
            {"id": 3, "response": "```python\nprint(sum(range(10)))\n```", "reference": "45"},
        ]
        with httpx.Client(base_url=url, timeout=120) as client:
            scored = client.post("/v1/score", json={"items": items})
            openrlhf = client.post(
                "/get_reward",
                json={"query": ["Q: 6*7? A: \\boxed{42}"], "prompts": ["Q: 6*7? A: "], "labels": ["42"]},
            )
            health = client.get("/health")
        assert scored.status_code == 200 and openrlhf.status_code == 200 and health.json()["status"] == "ok"
        from loong_env.integrations.reward_models import ScoreRequest

        here = RewardScorer().score_sync(ScoreRequest.model_validate({"items": items}))
        got = scored.json()["results"]
        assert [(r["id"], r["reward"], r["status"]) for r in got] == [
            (r.id, r.reward, r.status) for r in here.results
        ]
        assert openrlhf.json()["rewards"] == [1.0]
    finally:
        stop_rewards(options.name)
        serve.shutdown()
