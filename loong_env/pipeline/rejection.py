"""Rejection sampling: N traces per problem at temperature > 0, keep what the verifier accepts, rank it.

pass@k for every k <= N comes from the unbiased estimator over the unhinted samples (pipeline.passk).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from loong_env.pipeline import prompts
from loong_env.pipeline.calls import Caller
from loong_env.pipeline.config import CoTConfig
from loong_env.pipeline.evaluators import Evaluator
from loong_env.pipeline.passk import pass_at_ks
from loong_env.pipeline.records import Problem, ProblemResult, Trace
from loong_env.pipeline.traces import best_index, make_trace


async def sample_problem(
    problem: Problem, caller: Caller, evaluators: Sequence[Evaluator], config: CoTConfig, traces: list[Trace]
) -> ProblemResult:
    """Draw `config.samples` traces for one problem and judge them; `traces` receives them when made."""
    prompt = prompts.solve(problem.question)
    samples = await caller.sample(
        prompt, config.samples, temperature=config.temperature, max_tokens=config.max_tokens
    )
    made = await asyncio.gather(
        *(
            make_trace(
                problem,
                s,
                evaluators,
                kind="sample",
                round=i,
                others_if_correct_only=not config.judge_all_samples,
            )
            for i, s in enumerate(samples)
        )
    )
    traces.extend(made)
    correct = sum(t.correct for t in made)
    return ProblemResult.of(
        problem,
        mode="rejection",
        prompt=prompt,
        traces=traces,
        stop_reason="sampled",
        samples=len(made),
        correct_samples=correct,
        pass_at=pass_at_ks(len(made), correct),
        best=best_index(traces, config.select),
    )
