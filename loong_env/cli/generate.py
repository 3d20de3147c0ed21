"""`loong generate`: grow a domain's seeds into a resumable output directory, with a live progress display."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from loong_env.cli.options import add_endpoint_options
from loong_env.cli.ray import add_ray_option
from loong_env.generators.base import GenerationStats
from loong_env.generators.keep import KeepConfig, Verdict
from loong_env.generators.run import METHODS, GenerationRequest, run_generation
from loong_env.runs.figures import RunFigures, live_summary, summary_rows
from loong_env.runs.metrics import metrics_path, read_metrics


def register(subparsers: Any) -> None:
    """Add the `generate` command."""
    p = subparsers.add_parser(
        "generate",
        help="generate new verified problems from a domain's seeds",
        description="Generate problems with an LLM; keep one only when its sandboxed code and an independent "
        "chain-of-thought solve agree. Stops at N kept, K attempts or S seconds, whichever comes first. "
        "Re-running with the same --out resumes (Ctrl-C is safe).",
    )
    p.add_argument("--domain", required=True, help="seed domain name (under seeds/) or a domain folder")
    p.add_argument("--method", choices=sorted(METHODS), default="few-shot")
    p.add_argument(
        "--n", type=int, required=True, help="target number of kept items in --out (earlier runs count)"
    )
    p.add_argument(
        "--out",
        required=True,
        help="output directory (accepted/rejected.jsonl, manifest.json; metrics.jsonl for loong report)",
    )
    p.add_argument("--max-attempts", type=int, default=None, help="stop after K attempts in this run")
    p.add_argument("--time-budget", type=float, default=None, metavar="S", help="stop after S seconds")
    add_endpoint_options(p)
    add_endpoint_options(
        p.add_argument_group("the independent solver (default: the writer's endpoint)"), role="solver"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--concurrency", type=int, default=4, help="candidates in flight (match the server's slots)"
    )
    p.add_argument("--max-tokens", type=int, default=512, help="token limit of the question+code reply")
    keep = KeepConfig()  # the keep rule's defaults are the CLI's: one place decides them
    p.add_argument(
        "--solve-max-tokens", type=int, default=keep.solve_max_tokens, help="token limit of each CoT solve"
    )
    p.add_argument(
        "--solve-attempts",
        type=int,
        default=keep.solve_attempts,
        help="independent solves the agreement rule counts (default: %(default)s)",
    )
    p.add_argument(
        "--agreement",
        choices=["any", "majority", "all"],
        default=keep.agreement,
        help="how many solves must agree with the code's answer (default: %(default)s)",
    )
    p.add_argument(
        "--solve-prompt",
        choices=["plain", "conditions"],
        default=keep.solve_prompt,
        help="'conditions' lists the question's quantities and conditions in the solve prompt "
        "(default: %(default)s)",
    )
    p.add_argument(
        "--no-grounding",
        action="store_true",
        help="keep code that never uses a condition the question states (off: today's checks are cheap)",
    )
    p.add_argument(
        "--no-well-posedness", action="store_true", help="keep questions that are not self-contained"
    )
    p.add_argument(
        "--perturbation",
        choices=["quantities", "conditions", "off"],
        default=keep.perturbation_scope if keep.perturbation else "off",
        help="run the code again with each stated number, table and data text (or only each stated bound) "
        "moved, and reject it when the answer never moves (default: %(default)s)",
    )
    p.add_argument(
        "--novelty-threshold",
        type=float,
        default=keep.novelty_threshold,
        help="max ROUGE-L to any seed or kept item",
    )
    p.add_argument(
        "--seeds-root", default=None, help="seed library root (default: seeds/ or $LOONG_SEEDS_DIR)"
    )
    ray = p.add_argument_group("Ray (needs the `ray` extra; see docs/ray.md)")
    add_ray_option(ray, "fan attempts out over Ray worker actors (--base-url may then list several URLs)")
    ray.add_argument(
        "--ray-workers", type=int, default=2, help="worker actors (each runs --concurrency attempts)"
    )
    ray.add_argument("--ray-worker-cpus", type=float, default=1.0, help="CPUs reserved per worker actor")
    p.add_argument("--quiet", action="store_true", help="no live display, only the final summary")
    p.set_defaults(func=main)


def progress_table(figures: RunFigures, stats: GenerationStats, target: int, already: int) -> Table:
    """The live panel: kept vs target and attempts in flight, then the figures `loong report` prints."""
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    table.add_row("accepted", f"{already + stats.accepted}/{target}  (this run {stats.accepted})")
    table.add_row("in flight", str(stats.attempts - stats.finished - stats.abandoned))
    for label, value in summary_rows(live_summary(figures)):
        table.add_row(label, value)
    return table


def verdict_line(verdict: Verdict) -> Text:
    """One line per finished candidate: its verdict, reason and question head."""
    question = (verdict.question or "").replace("\n", " ")[:70]
    if verdict.accepted:
        return Text.assemble(
            ("  kept     ", "green"), f"#{verdict.attempt} ", (f"= {verdict.answer}  ", "bold"), question
        )
    return Text.assemble(
        ("  rejected ", "red"),
        f"#{verdict.attempt} ",
        (f"{verdict.reason} ", "yellow"),
        (verdict.detail[:80], "dim"),
    )


def main(args: argparse.Namespace) -> int:
    """Run the generation with a live display; exit code 0 when it stopped normally, 130 on Ctrl-C."""
    console = Console(stderr=True)
    stats = GenerationStats()
    # earlier runs into the same --out count too, so the panel shows what `loong report` will
    earlier = metrics_path(args.out)
    figures = RunFigures.from_log(read_metrics(earlier)) if earlier.is_file() else RunFigures()
    meta: dict[str, Any] = {"already": 0}
    keep_config = KeepConfig(
        solve_attempts=args.solve_attempts,
        agreement=args.agreement,
        solve_max_tokens=args.solve_max_tokens,
        novelty_threshold=args.novelty_threshold,
        solve_prompt=args.solve_prompt,
        grounding=not args.no_grounding,
        well_posedness=not args.no_well_posedness,
        perturbation=args.perturbation != "off",
        perturbation_scope="conditions" if args.perturbation == "conditions" else "quantities",
        solver_model=args.solver_model,
        solver_base_url=args.solver_base_url,
        solver_api_key=args.solver_api_key or (args.api_key if args.solver_base_url else None),
    )

    live = Live(
        get_renderable=lambda: Group(progress_table(figures, stats, args.n, meta["already"])),
        console=console,
        refresh_per_second=4,
        transient=False,
    )

    def on_verdict(verdict: Verdict) -> None:
        if not args.quiet:
            live.console.print(verdict_line(verdict))

    def on_start(info: dict[str, Any]) -> None:
        meta.update(info)
        if not args.quiet:
            live.console.print(
                f"generating {info['domain']} with {info['method']} ({info['model']}): "
                f"{info['already']} already kept in {info['out']}, target {info['target']}"
            )
            if "workers" in info:
                live.console.print(
                    f"on Ray at {info['address']}: {len(info['workers'])} workers on {info['nodes']} "
                    f"node(s), LLM endpoints {', '.join(info['endpoints'])}"
                )

    urls = [u.strip() for u in (args.base_url or "").split(",") if u.strip()]
    request = GenerationRequest(
        domain=args.domain,
        out=args.out,
        n=args.n,
        method=args.method,
        max_attempts=args.max_attempts,
        time_budget_s=args.time_budget,
        base_url=urls if len(urls) > 1 else args.base_url,
        model=args.model,
        api_key=args.api_key,
        seed=args.seed,
        concurrency=args.concurrency,
        max_tokens=args.max_tokens,
        keep_config=keep_config,
        seeds_root=args.seeds_root,
    )
    executor = None
    if args.ray is not None:
        from loong_env.distributed import RayExecutor, RayOptions

        options = RayOptions(
            address=args.ray or None, workers=args.ray_workers, worker_cpus=args.ray_worker_cpus
        )
        executor = RayExecutor(options)
    coro = run_generation(
        request=request,
        executor=executor,
        on_verdict=on_verdict,
        stats=stats,
        on_start=on_start,
        on_metric=figures.add,
    )
    try:
        with contextlib.nullcontext() if args.quiet else live:
            summary = asyncio.run(coro)
    except KeyboardInterrupt:
        console.print(
            f"[yellow]interrupted[/]: output in {args.out} is consistent; run the same command to resume"
        )
        return 130
    console.print(
        f"stopped ({summary.stopped_because}): kept {summary.accepted} this run, {summary.accepted_total} "
        f"total in {summary.out_dir}; rejected {summary.rejected} {summary.rejected_by_reason}; "
        f"{summary.tokens} tokens in {summary.elapsed_s:.1f}s; plots: loong report {args.out}"
    )
    return 0
