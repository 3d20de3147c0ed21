"""Each method against a REAL local model: every candidate ends in a verdict; the keep rule keeps and rejects.

Every finished candidate must end accepted or rejected with a specific reason, the files and manifest must
agree, nothing crashes. The model is the conftest's plumbing model (SmolLM2-135M, ~3x faster than the
default Qwen2.5-Coder-0.5B) because these are behaviour checks, not quality checks: on this shared 2-core
machine a Qwen run of three methods did not finish one self-instruct candidate in 170 s. Quality (acceptance
per method with the default model) is measured in benchmarks/bench_generators.py and notebooks/generate.ipynb.
The three methods run at once so the server's slots stay busy and the test stays short. That run may keep
nothing, so the keep rule's own outcome is checked separately with the default model on an easy question
whose answer it reliably gets right, once with right code (kept) and once with wrong code (rejected).
"""

from __future__ import annotations

import asyncio

import pytest

from loong_env.generators import (
    Candidate,
    GenerationStats,
    KeepConfig,
    KeepRule,
    RejectReason,
    Verdict,
    read_accepted,
    read_manifest,
    read_rejected,
    run_generation,
)
from loong_env.llm import LLMClient, RetryPolicy
from loong_env.sandbox import Sandbox

pytestmark = [pytest.mark.llm, pytest.mark.timeout(300)]

METHODS = ("few-shot", "self-instruct", "evol-instruct")


async def test_every_method_ends_each_real_candidate_with_a_verdict_and_files_agree(local_llm, tmp_path):
    verdicts: dict[str, list[Verdict]] = {m: [] for m in METHODS}
    stats = {m: GenerationStats() for m in METHODS}
    keep = KeepConfig(solve_max_tokens=160)
    async with LLMClient(base_url=local_llm.base_url, model=local_llm.model, timeout_s=150,
                         retry=RetryPolicy(max_attempts=2)) as client:  # fmt: skip
        summaries = await asyncio.gather(*(
            run_generation(
                "graph_discrete_math", out=tmp_path / m, n=2, method=m, max_attempts=2, time_budget_s=170,
                client=client, concurrency=1, max_tokens=192, keep_config=keep, seed=7,
                on_verdict=lambda v, m=m: verdicts[m].append(v) or print(m, v.reason or "KEPT", v.detail[:100]),
                stats=stats[m],
            )
            for m in METHODS
        ))  # fmt: skip

    for method, summary in zip(METHODS, summaries, strict=True):
        got = verdicts[method]
        out = tmp_path / method
        assert summary.stopped_because in ("target", "max_attempts", "time_budget")
        assert len(got) + summary.abandoned == summary.attempts  # every launched attempt is accounted for
        assert got, f"{method}: no candidate finished within the budget"
        for v in got:
            assert v.accepted or v.reason in set(RejectReason), (method, v)
            assert v.accepted or v.detail, (method, v)
            assert v.reason != RejectReason.internal_error, (method, v.detail)
            if v.accepted:  # a kept item really was checked by both routes
                assert v.datapoint.final_answer == v.answer and v.solves[-1].outcome == "agree"
                assert v.datapoint.rationale == v.code  # the code that printed the answer (repaired or not)
            assert len(v.repairs) <= keep.repair_attempts
        accepted, rejected = read_accepted(out), read_rejected(out)
        manifest = read_manifest(out)
        assert len(accepted) == manifest.accepted == sum(v.accepted for v in got)
        assert len(rejected) == manifest.rejected == sum(not v.accepted for v in got)
        assert sorted(r["reason"] for r in rejected) == sorted(str(v.reason) for v in got if not v.accepted)
        assert manifest.runs[-1].status == summary.stopped_because
        assert all(dp.metadata["generator"] == method for dp in accepted)
        assert stats[method].tokens > 0  # real tokens were spent and counted


QUESTION = "A shop sells 17 red pens and 25 blue pens. How many pens does the shop sell in total?"


@pytest.mark.parametrize(("code", "accepted", "reason"), [
    ("print(17 + 25)", True, None),
    ("print(17 * 25)", False, RejectReason.disagreement),
], ids=["right_code_is_kept", "wrong_code_is_rejected"])
async def test_keep_rule_with_the_real_model_keeps_right_code_and_rejects_wrong_code(
    local_qwen_client, code, accepted, reason
):
    """The keep path end to end with a real solver: an easy question the 0.5B model answers (42) at
    temperature 0; the same question with code that prints 425 must then be a disagreement."""
    async with Sandbox([], timeout_s=5.0, workers=1) as sandbox:
        keep = KeepRule(sandbox, local_qwen_client, config=KeepConfig(solve_max_tokens=256))
        candidate = Candidate(question=QUESTION, code=code, domain="toy", method="test", attempt=0)
        verdict = await keep.judge(candidate)
    assert verdict.accepted is accepted, (verdict.reason, verdict.detail, [s.boxed for s in verdict.solves])
    assert verdict.reason == reason
    assert verdict.solves and verdict.solves[0].boxed is not None and verdict.solves[0].boxed.strip() == "42"
    if accepted:
        assert verdict.datapoint is not None and verdict.datapoint.final_answer == "42"
