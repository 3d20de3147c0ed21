"""`loong calibrate`: per-item pass rates of a policy (k answers judged by the env); --out resumes."""

from __future__ import annotations

import argparse
import asyncio
from typing import TYPE_CHECKING, Any

from rich.console import Console

from loong_env.cli.options import add_endpoint_options, endpoint

if TYPE_CHECKING:  # imported lazily at run time: `loong --help` must not load the LLM stack
    from loong_env.runs.calibration import ItemCalibration


def register(subparsers: Any) -> None:
    """Add the `calibrate` command."""
    p = subparsers.add_parser(
        "calibrate",
        help="measure each item's pass rate under a policy (k answers, judged by the env's verifiers)",
        description="For each problem, sample k answers from an OpenAI-compatible endpoint (default: the "
        "embedded local model), judge them with the env's verifier router, and write the item's pass rate, "
        "sample count, model id and calibrated difficulty (1-5, fifths of the pass rate; the author's label "
        "is kept beside it) to OUT/calibration.jsonl. Re-running with the same --out resumes (kill -9 and "
        "Ctrl-C are safe). Show it with `loong seeds list --calibration OUT`; plot it with "
        "`loong report OUT`.",
    )
    p.add_argument(
        "--input",
        default="seeds",
        metavar="SOURCE",
        help="seeds | seeds:DOMAIN[,DOMAIN] | a generation run folder | a JSONL file | a saved dataset "
        "(default: every seed)",
    )
    p.add_argument("--out", required=True, help="output directory (calibration.jsonl, manifest.json)")
    p.add_argument("-k", "--samples", type=int, default=4, help="answers sampled per item (default 4)")
    p.add_argument("--temperature", type=float, default=1.0, help="sampling temperature (default 1.0)")
    p.add_argument("--max-tokens", type=int, default=512, help="token budget of each answer")
    p.add_argument("--concurrency", type=int, default=4, help="items in flight at once")
    p.add_argument("--limit", type=int, default=None, help="only the first N problems")
    p.add_argument("--difficulty", default=None, metavar="LEVELS", help="keep these author levels, e.g. 1,2")
    add_endpoint_options(p)
    p.add_argument("--quiet", action="store_true", help="no line per item, only the final summary")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    """Run the calibration; 0 when every item was measured, 1 if some were not, 130 on Ctrl-C."""
    from loong_env.calibration import CalibrationConfig, calibrate
    from loong_env.llm import LLMClient
    from loong_env.pipeline.problems import load_problems

    console = Console(stderr=True)
    levels = [int(x) for x in args.difficulty.split(",")] if args.difficulty else None
    problems = load_problems(args.input, difficulty=levels, limit=args.limit)
    config = CalibrationConfig(
        k=args.samples,
        temperature=args.temperature,
        max_tokens=args.max_tokens,
        concurrency=args.concurrency,
    )

    def show(rec: ItemCalibration) -> None:
        if not args.quiet:
            console.print(
                f"  {rec.domain} d{rec.difficulty} -> calibrated {rec.calibrated_difficulty}: "
                f"{rec.correct}/{rec.samples} correct  {rec.id}",
                highlight=False,
            )

    async def run() -> Any:
        async with LLMClient(**endpoint(args), max_concurrency=args.concurrency) as client:
            console.print(f"calibrating {len(problems)} items with {client.model}, k={config.k}")
            return await calibrate(problems, out=args.out, client=client, config=config, on_item=show)

    try:
        summary = asyncio.run(run())
    except KeyboardInterrupt:
        console.print(f"[yellow]interrupted[/]: {args.out} is consistent; run the same command to resume")
        return 130
    console.print(
        f"{summary.calibrated} items calibrated, {summary.already} done earlier, {summary.failed} failed "
        f"(re-run to retry them); {summary.tokens} tokens in {summary.seconds:.0f}s -> {summary.out}",
        highlight=False,
    )
    return 1 if summary.failed else 0
