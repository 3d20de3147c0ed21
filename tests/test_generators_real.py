"""Each method against a REAL local model: bounded attempts, behaviour asserted, no kept item required.

Every finished candidate must end accepted or rejected with a specific reason, the files and manifest must
agree, nothing crashes. The model is the conftest's plumbing model (SmolLM2-135M, ~3x faster than the
default Qwen2.5-Coder-0.5B) because these are behaviour checks, not quality checks: on this shared 2-core
machine a Qwen run of three methods did not finish one self-instruct candidate in 170 s. Quality (acceptance
per method with the default model) is measured in benchmarks/bench_generators.py and notebooks/generate.ipynb.
The three methods run at once so the server's slots stay busy and the test stays short.
"""

from __future__ import annotations

import asyncio

import pytest

from loong_env.generators import (
    GenerationStats,
    KeepConfig,
    RejectReason,
    Verdict,
    read_accepted,
    read_manifest,
    read_rejected,
    run_generation,
)
from loong_env.llm import LLMClient, RetryPolicy

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
