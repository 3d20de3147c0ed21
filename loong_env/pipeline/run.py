"""`run_cot`: one call from a problem source to a resumable output directory of verified reasoning traces."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from loong_env.errors import UnknownNameError
from loong_env.pipeline.calls import Caller
from loong_env.pipeline.config import CoTConfig
from loong_env.pipeline.evaluators import Evaluator, LLMJudge, VerifierEvaluator
from loong_env.pipeline.limiter import AdaptiveLimiter, request_priority
from loong_env.pipeline.problems import load_problems
from loong_env.pipeline.records import Outcome, Problem, ProblemFailure, ProblemResult, Trace
from loong_env.pipeline.refine import refine_problem
from loong_env.pipeline.rejection import sample_problem
from loong_env.pipeline.runner import run_in_order
from loong_env.pipeline.stats import RunStats
from loong_env.pipeline.store import CoTStore, read_results
from loong_env.pipeline.traces import rationalize
from loong_env.routing import VerifierRouter
from loong_env.runs.frame import RunFrame
from loong_env.runs.metrics import MetricsWriter
from loong_env.runs.timing import TimedClient
from loong_env.types import DataPoint

OutcomeCallback = Callable[[Outcome], None]


class CoTSummary(BaseModel):
    """What one `run_cot` call did, and every finished problem of the directory in input order."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    out_dir: Path
    mode: str
    model: str | None
    status: str
    stats: RunStats
    results: list[ProblemResult]
    skipped_duplicates: int = 0


def build_problems(items: Sequence[DataPoint], router: VerifierRouter) -> tuple[list[Problem], int]:
    """Problems with their answer keys (first occurrence of each id only), and how many were dropped."""
    seen: set[str] = set()
    out = []
    for index, dp in enumerate(items):
        if dp.id in seen:
            continue
        seen.add(dp.id)
        out.append(Problem(index=index, datapoint=dp, key=router.key(dp)))
    return out, len(items) - len(out)


def check_thresholds(config: CoTConfig, evaluators: Sequence[Evaluator]) -> None:
    """Every threshold must name a score some evaluator gives (a typo would never let refinement stop)."""
    known = [name for ev in evaluators for name in ev.qualified()]
    for name in config.thresholds:
        if name not in known:
            raise UnknownNameError("threshold score", name, known)


async def run_cot(
    source: str | os.PathLike[str] | Iterable[DataPoint] | Any,
    *,
    out: str | os.PathLike[str],
    config: CoTConfig | None = None,
    client: Any = None,
    base_url: str | None = None,
    model: str | None = None,
    api_key: str | None = None,
    judge: bool | str | None = None,
    evaluators: Sequence[Evaluator] = (),
    router: VerifierRouter | None = None,
    stats: RunStats | None = None,
    on_outcome: OutcomeCallback | None = None,
    on_start: Callable[[dict[str, Any]], None] | None = None,
) -> CoTSummary:
    """Make, judge and keep reasoning traces for every problem of `source` not yet done in `out`.

    `source`: see `load_problems`. Without `client`/`base_url` the embedded local model answers. `judge`:
    True / "self" adds an LLMJudge on the same model, a model name one on that model of the same server.
    The verifier always judges; `evaluators` adds more (e.g. a RewardModel). Each finished problem is
    written before `on_outcome` sees it; cancelling (Ctrl-C) leaves a directory the same call resumes.
    """
    config = config or CoTConfig()
    router = router or VerifierRouter()
    problems, duplicates = build_problems(load_problems(source), router)
    owned: list[Any] = []  # clients made here, closed at the end
    try:
        if client is None:
            from loong_env.llm import LLMClient

            client = LLMClient(
                base_url=base_url, model=model, api_key=api_key, max_concurrency=config.limiter.max_limit
            )
            owned.append(client)
        caller = Caller(client, AdaptiveLimiter(config.limiter))
        callers = [caller]
        chain: list[Evaluator] = [VerifierEvaluator(router)]
        if judge:
            judge_client = caller
            if isinstance(judge, str) and judge != "self":
                from loong_env.llm import LLMClient

                judge_client = Caller(LLMClient(config=client.config, model=judge), caller.limiter)
                owned.append(judge_client.client)
                callers.append(judge_client)
            chain.append(LLMJudge(judge_client))
        chain.extend(e for e in evaluators if not isinstance(e, VerifierEvaluator))
        check_thresholds(config, chain)
        model_name = str(getattr(client, "model", None) or model or "") or None
        settings = {**config.fingerprint(), "evaluators": [e.name for e in chain], "model": model_name}
        store = CoTStore(out).open(settings, model=model_name)
        metrics = MetricsWriter.in_dir(out, run="cot", info=settings)  # `loong report OUT` plots it live
        for each in callers:  # every request becomes a `call` record (seconds, tokens, errors)
            each.client = TimedClient(each.client, metrics)
        todo = [p for p in problems if p.id not in store.done_ids]
        stats = stats or RunStats()
        stats.mode, stats.total, stats.resumed = config.mode, len(todo), len(problems) - len(todo)
        stats.started = time.monotonic()
        if on_start is not None:
            on_start(
                {
                    "out": str(out),
                    "mode": config.mode,
                    "model": model_name,
                    "problems": len(problems),
                    "resumed": stats.resumed,
                    "todo": len(todo),
                    "duplicates": duplicates,
                }
            )
        solve = refine_problem if config.mode == "refine" else sample_problem

        async def attempt(problem: Problem) -> Outcome:
            from loong_env.llm import LLMError

            started = time.monotonic()
            traces: list[Trace] = []
            request_priority.set(problem.index)  # an earlier problem's requests go first
            try:
                result = await solve(problem, caller, chain, config, traces)
                if config.rationalize and result.best is None:
                    hinted = await rationalize(problem, result.prompt, caller, chain, config)
                    result.traces.append(hinted)
                    if hinted.correct:
                        result.rationalized = len(result.traces) - 1
            except LLMError as exc:  # the first line says what failed, the last what the server said last
                lines = [line.strip() for line in str(exc).splitlines()]
                why = lines[0] + (f" Last: {lines[-1]}" if len(lines) > 1 else "")
                return _failure(problem, f"LLM request failed: {why}"[:500], traces, started)
            except Exception as exc:  # noqa: BLE001 - one broken problem must not end a long run
                return _failure(problem, f"{type(exc).__name__}: {exc}"[:500], traces, started)
            result.tokens = sum(t.tokens for t in result.traces)
            result.seconds = round(time.monotonic() - started, 3)
            return result

        def finished(problem: Problem, outcome: Outcome) -> None:
            if (
                outcome.id in store.done_ids
            ):  # cannot happen (todo skips them); the store would refuse it anyway
                return
            stats.record(outcome)
            failed = isinstance(outcome, ProblemFailure)
            solved = not failed and outcome.solved
            metrics.item(
                ok=solved,
                outcome="failed" if failed else "solved" if solved else "unsolved",
                error=outcome.error.split(":")[0] if failed else None,
                seconds=outcome.seconds,
                domain=problem.datapoint.domain,
            )
            stats.concurrency = caller.limiter.stats.limit
            store.record(outcome, stats)
            if on_outcome is not None:
                on_outcome(outcome)

        async with RunFrame(store, metrics) as frame:
            await run_in_order(todo, attempt, workers=max(2, config.limiter.max_limit), on_done=finished)
            frame.status = "done"
    finally:
        for made in owned:
            await made.close()
    return CoTSummary(
        out_dir=Path(out),
        mode=config.mode,
        model=model_name,
        status=frame.status,
        stats=stats,
        results=read_results(out),
        skipped_duplicates=duplicates,
    )


def _failure(problem: Problem, error: str, traces: list[Trace], started: float) -> ProblemFailure:
    return ProblemFailure(
        index=problem.index,
        id=problem.id,
        question=problem.question,
        error=error,
        traces=list(traces),
        tokens=sum(t.tokens for t in traces),
        seconds=round(time.monotonic() - started, 3),
    )
