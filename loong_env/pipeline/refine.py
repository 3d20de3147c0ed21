"""Refine mode: trace -> evaluation -> refined trace, until every threshold is met or max_iterations is spent.

The loop always ends: after `max_iterations` refinements, or at once when a threshold's evaluator gave no
score and nothing else says what to fix (`evaluation_failed`), never by waiting for a good evaluation.
"""

from __future__ import annotations

from collections.abc import Sequence

from loong_env.pipeline import prompts
from loong_env.pipeline.calls import Caller
from loong_env.pipeline.config import CoTConfig
from loong_env.pipeline.evaluators import Evaluator
from loong_env.pipeline.records import Problem, ProblemResult, StopReason, Trace
from loong_env.pipeline.traces import best_index, feedback, make_trace, unmet, unscored


async def refine_problem(
    problem: Problem, caller: Caller, evaluators: Sequence[Evaluator], config: CoTConfig, traces: list[Trace]
) -> ProblemResult:
    """Run the refine loop for one problem; `traces` receives every trace as it is made (kept on failure)."""
    prompt = prompts.solve(problem.question)
    messages = prompt
    hinted = False
    stop: StopReason = "max_iterations"
    for iteration in range(config.max_iterations + 1):
        temperature = config.first_temperature if iteration == 0 else config.temperature
        [sample] = await caller.sample(messages, 1, temperature=temperature, max_tokens=config.max_tokens)
        trace = await make_trace(
            problem,
            sample,
            evaluators,
            kind="initial" if iteration == 0 else "refined",
            round=iteration,
            hinted=hinted,
        )
        traces.append(trace)
        missing = unmet(trace, config.thresholds)
        if not missing:
            stop = "thresholds_met"
            break
        if iteration == config.max_iterations:
            break
        if set(missing) <= set(unscored(trace, config.thresholds)) and not any(
            e.ok and e.feedback for e in trace.evaluations if e.status is None
        ):
            stop = "evaluation_failed"  # only failed evaluations stand in the way: nothing says what to fix
            break
        # feedback from an evaluator that saw the reference may carry it: what follows is hinted
        by_name = {e.name: e for e in evaluators}
        hinted = hinted or any(
            by_name[e.evaluator].sees_reference
            for e in trace.evaluations
            if e.ok and e.feedback and e.evaluator in by_name
        )
        messages = prompts.refine(prompt, trace.text, feedback(trace))
    return ProblemResult.of(
        problem,
        mode="refine",
        prompt=prompt,
        traces=traces,
        stop_reason=stop,
        best=best_index(traces, config.select),
    )
