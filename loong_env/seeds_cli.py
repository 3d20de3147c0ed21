"""`loong seeds ...`: list the seed library and prove every seed reproduces its answer."""

from __future__ import annotations

import argparse
import asyncio
from collections import Counter

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from loong_env.distributed.cli import add_ray_option
from loong_env.seeds import SeedDataset, SeedFormatError, load_seeds


def register(sub: argparse._SubParsersAction) -> None:
    """Add `seeds list` and `seeds validate`."""
    seeds = sub.add_parser("seeds", help="inspect and validate the seed library")
    seeds_sub = seeds.add_subparsers(dest="seeds_command", metavar="ACTION", required=True)

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("domains", nargs="*", metavar="DOMAIN",
                        help="domain names under --root, or paths to domain folders (ours or Loong's seed_dataset.json); default: all")  # fmt: skip
    common.add_argument("--root", help="seed library root (default: $LOONG_SEEDS_DIR or the repo's seeds/)")

    ls = seeds_sub.add_parser("list", parents=[common], help="count seeds per domain and difficulty")
    ls.set_defaults(func=_list)

    prep = seeds_sub.add_parser(
        "prepare",
        parents=[common],
        help="create the sandbox environment of every domain now, so later runs (and tests) work offline",
    )
    prep.set_defaults(func=_prepare)

    val = seeds_sub.add_parser(
        "validate",
        parents=[common],
        help="run every seed's rationale in the sandbox and check it prints final_answer",
        description="Run every seed's rationale in the sandbox with its domain's packages and check the printed "
        "output is equivalent to final_answer. Exits 1 if any seed fails (use --allow-failures for noisy "
        "upstream data, where the reproduction rate is the finding).",
    )
    val.add_argument("--timeout", type=float, default=20.0, help="seconds per seed (default: 20)")
    val.add_argument("--limit", type=int, help="validate only the first N seeds of each domain")
    val.add_argument("--allow-failures", action="store_true", help="report failures but exit 0")
    val.add_argument("--show", type=int, default=50, help="list at most this many failures (default: 50)")
    add_ray_option(val, "spread the seeds over Ray worker actors")
    val.add_argument("--ray-workers", type=int, default=2, help="Ray worker actors, spread over the nodes")
    val.set_defaults(func=_validate)


def _load(args: argparse.Namespace, console: Console) -> SeedDataset | None:
    try:
        if not args.domains:
            return load_seeds(root=args.root)
        return SeedDataset.concat(load_seeds(d, root=args.root) for d in args.domains)
    except (SeedFormatError, FileNotFoundError) as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False)
        return None


def _list(args: argparse.Namespace) -> int:
    console = Console()
    dataset = _load(args, console)
    if dataset is None:
        return 2
    table = Table(title=f"{len(dataset)} seeds")
    table.add_column("domain")
    for level in range(1, 6):
        table.add_column(f"d{level}", justify="right")
    table.add_column("none", justify="right")
    table.add_column("total", justify="right")
    for domain in dataset.domains:
        counts = Counter(p.difficulty for p in dataset.filter(domain=domain))
        table.add_row(domain, *(str(counts.get(i, 0)) for i in range(1, 6)), str(counts.get(None, 0)),
                      str(sum(counts.values())))  # fmt: skip
    console.print(table)
    return 0


def _validate(args: argparse.Namespace) -> int:
    from loong_env.validation import CheckStatus, SeedCheck, validate_seeds

    console = Console()
    dataset = _load(args, console)
    if dataset is None:
        return 2
    if args.limit:
        dataset = SeedDataset.concat(dataset.filter(domain=d)[: args.limit] for d in dataset.domains)
    progress = Progress(TextColumn("validating"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[bad]} bad"),
                        TimeElapsedColumn(), console=console, transient=True)  # fmt: skip
    with progress:
        task = progress.add_task("seeds", total=len(dataset), bad=0)
        bad = 0

        def tick(check: SeedCheck) -> None:
            nonlocal bad
            bad += check.status is not CheckStatus.passed
            progress.update(task, advance=1, bad=bad)

        if args.ray is None:
            report = asyncio.run(validate_seeds(dataset, timeout_s=args.timeout, on_result=tick))
        else:
            from loong_env.distributed import RayOptions, validate_seeds_ray

            options = RayOptions(address=args.ray or None, workers=args.ray_workers)
            ray_run = validate_seeds_ray(dataset, timeout_s=args.timeout, ray=options, on_result=tick)
            report = asyncio.run(ray_run)

    table = Table(title=f"seed validation ({report.seconds:.1f} s wall)")
    table.add_column("domain", no_wrap=True, min_width=max((len(s.domain) for s in report.domains), default=6))
    for col in ("passed", "failed", "errors", "total", "rate", "run s"):
        table.add_column(col, justify="right")
    for s in report.domains:
        rate = f"{100 * s.passed / s.total:.1f}%" if s.total else "-"
        table.add_row(s.domain, str(s.passed), str(s.failed), str(s.errors), str(s.total), rate, f"{s.seconds:.1f}")
    console.print(table)
    failures = report.failures
    for check in failures[: args.show]:
        console.print(f"[red]{check.status.value}[/red] {check.origin}: {check.reason}", highlight=False, soft_wrap=True)
    if len(failures) > args.show:
        console.print(f"... and {len(failures) - args.show} more")
    if failures and not args.allow_failures:
        console.print(f"[red]{len(failures)} of {len(report.checks)} seeds do not reproduce their answer[/red]")
        return 1
    console.print(f"[green]{len(report.checks) - len(failures)} of {len(report.checks)} seeds reproduce their answer[/green]")
    return 0


def _prepare(args: argparse.Namespace) -> int:
    from loong_env.sandbox import ensure_env

    console = Console()
    dataset = _load(args, console)
    if dataset is None:
        return 2
    sets = {tuple(sorted(p.required_dependencies or dataset.domain_config(p.domain).requirements)) for p in dataset}
    for requirements in sorted(sets):
        python = ensure_env(list(requirements))
        console.print(f"ready: [{', '.join(requirements) or 'standard library only'}] -> {python}", highlight=False, markup=False)
    return 0
