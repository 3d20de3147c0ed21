"""The CoT pipeline with the real local model (Qwen2.5-Coder-0.5B): a refinement, rejection sampling on seeds.

Outcomes of a 0.5B model are not scripted, so these tests check what must hold whatever it writes: the
history is complete and consistent with the verifier, pass@k agrees with the verified count, the n>1
request path is used on llama.cpp, and the output directory holds exactly what was returned.
"""

from __future__ import annotations

import pytest

from loong_env.pipeline import CoTConfig, pass_at_ks, read_results, run_cot
from loong_env.pipeline.prompts import FEEDBACK_MARKER
from loong_env.routing import VerifierRouter
from loong_env.seeds.dataset import load_seeds
from loong_env.types import DataPoint

# A 0.5B model does not count the divisors of a seven-digit number in 96 tokens, so its first greedy trace
# is wrong or unfinished and the loop must refine it; what the refinement concludes is the model's business.
DIVISORS = DataPoint(
    question="How many positive divisors does 7207200 have?",
    final_answer="432",
    domain="number_theory_combinatorics",
)


@pytest.mark.timeout(600)
async def test_the_local_model_refines_a_wrong_trace_end_to_end(tmp_path, local_qwen_client):
    config = CoTConfig(max_iterations=1, max_tokens=96, rationalize=False)
    summary = await run_cot([DIVISORS], out=tmp_path, client=local_qwen_client, config=config)
    [result] = summary.results
    first, refined = result.traces
    assert (first.kind, refined.kind) == ("initial", "refined") and not first.correct
    assert result.stop_reason == ("thresholds_met" if refined.correct else "max_iterations")
    router = VerifierRouter()
    for trace in result.traces:  # each verdict is the verifier's on that very text
        verdict, _ = await router.judge(trace.text, router.key(DIVISORS))
        assert trace.status == verdict.status and trace.evaluations[0].scores["correct"] == float(
            verdict.correct
        )
        assert trace.tokens > 0 and trace.latency_s > 0
    assert result.solved == refined.correct and summary.stats.first_correct == 0
    assert read_results(tmp_path) == summary.results


@pytest.mark.timeout(600)
async def test_rejection_sampling_with_the_local_model_on_seeds_reports_consistent_pass_at_k(
    tmp_path, local_qwen_client
):
    seeds = {dp.id: dp for dp in load_seeds()}
    problems = [seeds["9283de1e95a80c30"], seeds["a925c8a1466cabad"]]  # K_12 edges; lim sin(5x)/x
    config = CoTConfig(mode="rejection", samples=2, max_tokens=96, temperature=0.8, rationalize=False)
    summary = await run_cot(problems, out=tmp_path, client=local_qwen_client, config=config)
    assert [r.id for r in summary.results] == [p.id for p in problems]
    for result in summary.results:
        samples = [t for t in result.traces if t.kind == "sample"]
        assert len(samples) == result.samples == 2
        assert result.correct_samples == sum(t.correct for t in samples)
        assert result.pass_at == pass_at_ks(2, result.correct_samples)
        assert (result.best is not None) == (result.correct_samples > 0)
        assert all(t.tokens_estimated for t in samples)  # both came from one n=2 request
        assert not any(FEEDBACK_MARKER in t.text for t in samples)
    assert summary.stats.samples == 4 and summary.stats.failed == 0
