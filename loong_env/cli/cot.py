"""`loong cot`: verified reasoning traces for a problem source, shown live; the same --out resumes."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from loong_env.cli.options import add_endpoint_options
from loong_env.errors import ConfigError
from loong_env.pipeline.records import Outcome, ProblemFailure
from loong_env.pipeline.stats import RunStats


def register(subparsers: Any) -> None:
    """Add the `cot` command."""
    p = subparsers.add_parser(
        "cot",
        help="make verified chain-of-thought traces (refinement or rejection sampling) for SFT / DPO data",
        description="For each problem (question + reference answer) make reasoning traces with an LLM, judge "
        "them with the verifiers (and optionally an LLM judge or a reward model), and keep the whole "
        "history. "
        "refine: trace -> evaluation -> refined trace until the thresholds are met. rejection: N samples, "
        "pass@k, best verified trace. Problems nothing solved get one hinted (STaR) round, marked as such. "
        "Writes results.jsonl (one line per finished problem), then sft.jsonl and preference.jsonl. "
        "Re-running with the same --out resumes (kill -9 and Ctrl-C are safe).",
    )
    p.add_argument(
        "--input",
        required=True,
        metavar="SOURCE",
        help="seeds | seeds:DOMAIN[,DOMAIN] | a generation run folder | a JSONL file | a saved dataset",
    )
    p.add_argument(
        "--out", required=True, help="output directory (results.jsonl, failed.jsonl, manifest.json)"
    )
    p.add_argument("--mode", choices=["refine", "rejection"], default="refine")
    p.add_argument("--samples", type=int, default=4, metavar="N", help="traces per problem (rejection mode)")
    p.add_argument("--max-iterations", type=int, default=2, help="refinement rounds after the first trace")
    p.add_argument(
        "--threshold",
        action="append",
        default=[],
        metavar="SCORE=MIN",
        help="refine until this score reaches MIN, e.g. verifier.correct=1 judge.clarity=0.7 "
        "(repeatable; default verifier.correct=1)",
    )
    p.add_argument(
        "--judge",
        default=None,
        metavar="self|MODEL",
        help="add an LLM judge (correctness, clarity, completeness): the same model, or another "
        "model on the same server",
    )
    p.add_argument("--reward-url", default=None, help="add a reward-model endpoint as an evaluator")
    p.add_argument("--reward-protocol", choices=["http", "openai"], default="http")
    p.add_argument(
        "--no-rationalize", action="store_true", help="no hinted (STaR) round for unsolved problems"
    )
    p.add_argument(
        "--temperature", type=float, default=0.7, help="sampling temperature (samples, refinements)"
    )
    p.add_argument("--max-tokens", type=int, default=512, help="token limit of each trace")
    p.add_argument("--concurrency", type=int, default=8, help="most requests in flight (adapts below this)")
    p.add_argument("--limit", type=int, default=None, help="only the first N problems")
    p.add_argument(
        "--difficulty", default=None, metavar="LEVELS", help="keep these difficulty levels, e.g. 1,2"
    )
    add_endpoint_options(p)
    p.add_argument(
        "--no-export", action="store_true", help="do not write sft.jsonl / preference.jsonl at the end"
    )
    p.add_argument("--quiet", action="store_true", help="no live display, only the final summary")
    p.set_defaults(func=main)


def progress_table(stats: RunStats) -> Table:
    """The live panel: problems done, pass rates so far, tokens, rates."""
    elapsed = max(stats.elapsed_s, 1e-9)
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    table.add_row(
        "problems",
        f"{stats.finished}/{stats.total} finished ({stats.failed} failed), {stats.resumed} done earlier",
    )
    if stats.mode == "refine":
        table.add_row(
            "pass rate", f"first trace {stats.first_pass_rate:.1%}, after refinement {stats.pass_rate:.1%}"
        )
    else:
        shown = {
            k: v for k, v in stats.pass_at().items() if k in (1, 2, 4, 8, 16) or k == max(stats.pass_at())
        }
        table.add_row("pass@k", "  ".join(f"@{k} {v:.1%}" for k, v in shown.items()) or "-")
    table.add_row("rationalized", f"{stats.rationalized} tried, {stats.rationalized_correct} verified")
    table.add_row("tokens", f"{stats.tokens}  ({stats.tokens / elapsed:.1f} tok/s)")
    table.add_row(
        "rate",
        f"{60.0 * stats.finished / elapsed:.2f} problems/min, {stats.seconds_per_problem:.1f}s per problem",
    )
    if stats.concurrency is not None:
        table.add_row("concurrency", f"{stats.concurrency:.1f} requests in flight at most (adaptive)")
    table.add_row("elapsed", f"{elapsed:.0f}s")
    return table


def outcome_line(outcome: Outcome) -> Text:
    """One line per finished problem."""
    question = outcome.question.replace("\n", " ")[:60]
    if isinstance(outcome, ProblemFailure):
        return Text.assemble(("  failed   ", "red"), f"#{outcome.index} ", (outcome.error[:90], "dim"))
    verified = sum(t.correct for t in outcome.traces if not t.hinted)
    tag, style = (
        ("solved   ", "green")
        if outcome.solved
        else (("hinted   ", "yellow") if outcome.rationalized is not None else ("unsolved ", "red"))
    )
    return Text.assemble(
        (f"  {tag}", style),
        f"#{outcome.index} ",
        (f"{verified}/{len(outcome.traces)} verified  ", "bold"),
        question,
    )


def _thresholds(pairs: list[str]) -> dict[str, float] | None:
    if not pairs:
        return None
    out = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            raise ConfigError(
                f"--threshold expects SCORE=MIN like verifier.correct=1, got {pair!r}"
            ) from None
        if not sep:
            raise ConfigError(f"--threshold expects SCORE=MIN like verifier.correct=1, got {pair!r}")
    return out


def main(args: argparse.Namespace) -> int:
    """Run the pipeline with a live display; 0 when all finished, 1 if some failed, 130 on Ctrl-C."""
    from loong_env.pipeline.config import CoTConfig
    from loong_env.pipeline.evaluators import RewardModel
    from loong_env.pipeline.export import write_exports
    from loong_env.pipeline.limiter import LimiterConfig
    from loong_env.pipeline.problems import load_problems
    from loong_env.pipeline.run import run_cot

    console = Console(stderr=True)
    levels = [int(x) for x in args.difficulty.split(",")] if args.difficulty else None
    problems = load_problems(args.input, difficulty=levels, limit=args.limit)
    config = CoTConfig(
        mode=args.mode,
        samples=args.samples,
        max_iterations=args.max_iterations,
        temperature=args.temperature,
        max_tokens=args.max_tokens,
        rationalize=not args.no_rationalize,
        limiter=LimiterConfig(max_limit=args.concurrency),
        **({"thresholds": t} if (t := _thresholds(args.threshold)) else {}),
    )
    evaluators = [RewardModel(args.reward_url, protocol=args.reward_protocol)] if args.reward_url else []
    stats = RunStats()
    live = Live(get_renderable=lambda: progress_table(stats), console=console, refresh_per_second=4)

    def on_outcome(outcome: Outcome) -> None:
        if not args.quiet:
            live.console.print(outcome_line(outcome))

    def on_start(info: dict[str, Any]) -> None:
        if not args.quiet:
            live.console.print(
                f"cot {info['mode']} with {info['model']}: {info['problems']} problems, "
                f"{info['resumed']} already "
                f"done in {info['out']}, {info['todo']} to go"
                + (f" ({info['duplicates']} duplicate questions skipped)" if info["duplicates"] else "")
            )

    coro = run_cot(
        problems,
        out=args.out,
        config=config,
        base_url=args.base_url,
        model=args.model,
        api_key=args.api_key,
        judge=args.judge,
        evaluators=evaluators,
        stats=stats,
        on_outcome=on_outcome,
        on_start=on_start,
    )
    try:
        with contextlib.nullcontext() if args.quiet else live:
            summary = asyncio.run(coro)
    except KeyboardInterrupt:
        console.print(f"[yellow]interrupted[/]: {args.out} is consistent; run the same command to resume")
        return 130
    if not args.no_export:
        paths = write_exports(args.out)
        console.print(f"exports: {paths['sft']} and {paths['preference']}")
    s = summary.stats
    rates = (
        f"first-trace pass rate {s.first_pass_rate:.1%}, after refinement {s.pass_rate:.1%}"
        if s.mode == "refine"
        else "pass@k " + ", ".join(f"@{k} {v:.1%}" for k, v in s.pass_at().items())
    )
    console.print(
        f"finished {s.done} problems ({s.failed} failed, {s.resumed} done earlier) in {s.elapsed_s:.1f}s: "
        f"{rates}; "
        f"{s.rationalized_correct}/{s.rationalized} rationalized; {s.tokens} tokens; "
        f"{len(summary.results)} results in {summary.out_dir}"
    )
    return 1 if s.failed else 0
