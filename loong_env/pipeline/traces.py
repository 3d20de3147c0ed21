"""Making and judging traces for both modes: score one, check thresholds, pick the best, rationalize."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from loong_env.pipeline import prompts
from loong_env.pipeline.calls import Caller, Sample
from loong_env.pipeline.config import CoTConfig
from loong_env.pipeline.evaluators import Evaluator, VerifierEvaluator, evaluate_all
from loong_env.pipeline.records import Messages, Problem, Trace, TraceKind
from loong_env.types import VerificationStatus


async def make_trace(
    problem: Problem,
    sample: Sample,
    evaluators: Sequence[Evaluator],
    *,
    kind: TraceKind,
    round: int,
    hinted: bool = False,
    others_if_correct_only: bool = False,
) -> Trace:
    """A Trace for one sample, evaluated by every evaluator (the verifier first, always).

    With `others_if_correct_only`, evaluators other than the verifier run only when the verifier accepts
    (rejection sampling ranks verified traces; scoring the wrong ones would only cost).
    """
    verifiers = [e for e in evaluators if isinstance(e, VerifierEvaluator)]
    others = [e for e in evaluators if not isinstance(e, VerifierEvaluator)]
    evaluations = await evaluate_all(verifiers, problem, sample.text)
    verdict = next((e for e in evaluations if e.status is not None), None)
    status = (
        verdict.status if verdict is not None and verdict.status is not None else VerificationStatus.error
    )
    if others and (not others_if_correct_only or status is VerificationStatus.correct):
        evaluations += await evaluate_all(others, problem, sample.text)
    return Trace(
        kind=kind,
        round=round,
        text=sample.text,
        hinted=hinted,
        status=status,
        extracted=verdict.extracted if verdict is not None else None,
        evaluations=evaluations,
        finish_reason=sample.finish_reason,
        tokens=sample.tokens,
        tokens_estimated=sample.tokens_estimated,
        latency_s=sample.latency_s,
    )


def unmet(trace: Trace, thresholds: Mapping[str, float]) -> list[str]:
    """Threshold names the trace does not reach (a score an evaluator failed to give counts as unmet)."""
    scores = trace.scores()
    return [name for name, low in thresholds.items() if scores.get(name, float("-inf")) < low]


def unscored(trace: Trace, thresholds: Mapping[str, float]) -> list[str]:
    """Threshold names with no score at all on this trace (their evaluator failed)."""
    scores = trace.scores()
    return [name for name in thresholds if name not in scores]


CUT_OFF = (
    "The solution was cut off by the length limit before it ended: write a much shorter one, only the key "
    "steps, and reach the final answer."
)


def feedback(trace: Trace) -> str:
    """What the evaluators said about a trace, one line each (errors left out), and whether it was cut off."""
    lines = [CUT_OFF] if trace.finish_reason == "length" else []
    lines += [e.feedback for e in trace.evaluations if e.ok and e.feedback]
    return "\n".join(f"- {line}" for line in lines) or "- Check every step."


def best_index(traces: Sequence[Trace], select: str) -> int | None:
    """The best verified unhinted trace: highest rank score (ties and unscored: shortest), or shortest."""
    good = [i for i, t in enumerate(traces) if t.correct and not t.hinted]
    if not good:
        return None
    if select == "score":
        return min(good, key=lambda i: (-(traces[i].rank_score() or 0.0), len(traces[i].text), i))
    return min(good, key=lambda i: (len(traces[i].text), i))


async def rationalize(
    problem: Problem, prompt: Messages, caller: Caller, evaluators: Sequence[Evaluator], config: CoTConfig
) -> Trace:
    """STaR's second chance: one trace written with the reference answer as a hint, marked `hinted`."""
    [sample] = await caller.sample(
        prompts.rationalize(prompt, problem.key.reference),
        1,
        temperature=config.temperature,
        max_tokens=config.max_tokens,
    )
    return await make_trace(
        problem, sample, evaluators, kind="rationalized", round=0, hinted=True, others_if_correct_only=True
    )
