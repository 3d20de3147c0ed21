"""`loong seeds ...`: list the seed library, prepare its environments, and prove every seed."""

from __future__ import annotations

import argparse
import asyncio
import json
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from loong_env.cli.ray import add_ray_option
from loong_env.errors import NotFoundError
from loong_env.runs.metrics import MetricsWriter
from loong_env.seeds.dataset import SeedDataset, SeedFormatError, load_seeds

if TYPE_CHECKING:
    from loong_env.seeds.validation import SeedCheck

_VALIDATE_HELP = """\
Run every seed's rationale in the sandbox with its requirements and check that what it prints is equivalent
to final_answer (read by the shared rule: a \\boxed{} answer, else the whole output, else its last line).
Each requirement set is installed once; one that cannot be installed marks its seeds env_error with the
installer's reason and the others still run. Records without code are reported as "no code".

Then (unless --no-reachability) every seed's reference is re-spelled the ways a correct solver may write it
(sympy LaTeX/str forms, at the precision the question states or the tolerance implies, more digits, with
and without its unit, labelled) and judged through the env's verifier router: a spelling judged wrong is a
located warning saying whether the seed or the comparison looks at fault. Decimal answers whose question
states no precision are warned about too.

Exit code: 1 when any seed fails (wrong answer, code error, timeout, env_error, or a rejected record),
0 with --allow-failures (for noisy upstream data, where the reproduction rate is the finding)."""


def register(sub: argparse._SubParsersAction) -> None:
    """Add `seeds list`, `seeds prepare` and `seeds validate`."""
    seeds = sub.add_parser("seeds", help="inspect and validate the seed library")
    seeds_sub = seeds.add_subparsers(dest="seeds_command", metavar="ACTION", required=True)

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "domains",
        nargs="*",
        metavar="DOMAIN",
        help="domain names under --root, or paths to domain folders (ours or Loong's seed_dataset.json); "
        "default: all",
    )
    common.add_argument("--root", help="seed library root (default: $LOONG_SEEDS_DIR or the repo's seeds/)")
    common.add_argument("--show", type=int, default=50, help="list at most this many items per list")

    ls = seeds_sub.add_parser("list", parents=[common], help="count seeds per domain and difficulty")
    ls.add_argument(
        "--calibration",
        metavar="FILE",
        help="a `loong calibrate` folder or its calibration.jsonl: also show the calibrated difficulty",
    )
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
        help="run every seed's rationale in the sandbox, check it prints final_answer; check reachability",
        description=_VALIDATE_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    val.add_argument("--timeout", type=float, default=20.0, help="seconds per seed (default: 20)")
    val.add_argument("--limit", type=int, help="validate only the first N seeds of each domain")
    val.add_argument("--allow-failures", action="store_true", help="report failures but exit 0")
    val.add_argument(
        "--relax-pins",
        action="store_true",
        help="retry a requirement set that cannot be installed with the same package names and no "
        "version pins (newest versions compatible with this Python); reported as relaxed",
    )
    val.add_argument("--no-reachability", action="store_true", help="skip the reachability check")
    val.add_argument("--json", metavar="PATH", help="also write the whole report (checks, flags, coercions)")
    val.add_argument(
        "--out",
        metavar="DIR",
        help="run folder for live metrics (DIR/metrics.jsonl); plot with: loong report DIR",
    )
    add_ray_option(val, "spread the seeds over Ray worker actors")
    val.add_argument("--ray-workers", type=int, default=2, help="Ray worker actors, spread over the nodes")
    val.set_defaults(func=_validate)


def _load(args: argparse.Namespace, console: Console) -> SeedDataset | None:
    """The datasets named on the command line; unusable records are listed and left out, coercions shown."""
    from loong_env.cli.seeds_tables import show_issues, show_load_report

    names = args.domains or [None]
    try:
        parts = [load_seeds(d, root=args.root, on_error="skip", report=True) for d in names]
        dataset = SeedDataset.concat(parts)
    except (SeedFormatError, NotFoundError) as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False)
        return None
    show_load_report(console, dataset.load_report)
    show_issues(console, dataset.issues, args.show)
    return dataset


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
        table.add_row(
            domain,
            *(str(counts.get(i, 0)) for i in range(1, 6)),
            str(counts.get(None, 0)),
            str(sum(counts.values())),
        )
    console.print(table)
    if args.calibration:
        from loong_env.cli.seeds_tables import show_calibration
        from loong_env.runs.calibration import read_calibration, summarize_by_domain

        try:
            calibration = read_calibration(args.calibration)
        except NotFoundError as exc:
            console.print(f"[red]error:[/red] {exc}", highlight=False)
            return 2
        ids = {p.id for p in dataset}
        missing = len(ids - set(calibration))
        show_calibration(console, summarize_by_domain(calibration, ids), uncalibrated=missing)
    return 0


def _progress(console: Console, label: str) -> Progress:
    columns = (TextColumn(label), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[note]}"))
    return Progress(*columns, TimeElapsedColumn(), console=console, transient=True)


def _validate(args: argparse.Namespace) -> int:
    from loong_env.cli.seeds_tables import show_reachability, show_validation
    from loong_env.seeds.reachability import ReachabilityReport, check_reachability
    from loong_env.seeds.validation import EnvironmentOutcome, validate_seeds

    console = Console()
    dataset = _load(args, console)
    if dataset is None:
        return 2
    if args.limit:
        dataset = SeedDataset.concat(dataset.filter(domain=d)[: args.limit] for d in dataset.domains)
    metrics = None
    if args.out:
        info = {"domains": dataset.domains, "seeds": len(dataset), "timeout_s": args.timeout}
        metrics = MetricsWriter.in_dir(args.out, run="validation", info=info)
    with _progress(console, "validating") as progress:
        task = progress.add_task("seeds", total=len(dataset), note="")
        bad = 0

        def tick(check: SeedCheck) -> None:
            nonlocal bad
            bad += check.failed
            progress.update(task, advance=1, note=f"{bad} bad")
            if metrics is not None:
                record_check(metrics, check)

        def environment(requirements: list[str], outcome: EnvironmentOutcome | None) -> None:
            shown = ", ".join(requirements) or "standard library only"
            progress.update(task, note=f"installing [{shown}]" if outcome is None else f"{bad} bad")

        common = {
            "timeout_s": args.timeout,
            "relax": args.relax_pins,
            "on_result": tick,
            "on_environment": environment,
        }
        if args.ray is None:
            run = validate_seeds(dataset, **common)
        else:
            from loong_env.distributed import RayOptions, validate_seeds_ray

            run = validate_seeds_ray(
                dataset, ray=RayOptions(address=args.ray or None, workers=args.ray_workers), **common
            )
        status = "interrupted"
        try:
            report = asyncio.run(run)
            status = "done"
        finally:
            if metrics is not None:
                metrics.close(status)
    show_validation(console, report, args.show)

    reach: ReachabilityReport | None = None
    if not args.no_reachability:
        with _progress(console, "reachability") as progress:
            task = progress.add_task("seeds", total=len(dataset), note="")
            flagged = 0

            def seen(_point: object, flags: list) -> None:
                nonlocal flagged
                flagged += bool(flags)
                progress.update(task, advance=1, note=f"{flagged} flagged")

            reach = asyncio.run(check_reachability(dataset, on_seed=seen))
        show_reachability(console, reach, args.show)

    if args.json:
        payload = {
            "validation": report.model_dump(mode="json"),
            "reachability": reach.model_dump(mode="json") if reach else None,
            "load_report": dataset.load_report.model_dump(mode="json") if dataset.load_report else None,
            "rejected": [i.model_dump(mode="json") for i in dataset.issues],
        }
        Path(args.json).write_text(json.dumps(payload, indent=1))
    failures = len(report.failures) + len(dataset.issues)
    runnable = sum(s.runnable for s in report.domains)
    if failures and not args.allow_failures:
        total = runnable + len(dataset.issues)
        console.print(f"[red]{failures} of {total} seeds do not reproduce their answer (or were rejected)[/]")
        return 1
    passed = runnable - len(report.failures)
    console.print(f"[green]{passed} of {runnable} seeds reproduce their answer[/green]")
    return 0


def _prepare(args: argparse.Namespace) -> int:
    from loong_env.sandbox import ensure_env

    console = Console()
    dataset = _load(args, console)
    if dataset is None:
        return 2
    sets = {
        tuple(sorted(p.required_dependencies or dataset.domain_config(p.domain).requirements))
        for p in dataset
    }
    for requirements in sorted(sets):
        python = ensure_env(list(requirements))
        shown = ", ".join(requirements) or "standard library only"
        console.print(f"ready: [{shown}] -> {python}", highlight=False, markup=False)
    return 0


def record_check(metrics: MetricsWriter, check: SeedCheck) -> None:
    """One validated seed as metrics: an item (its status) and the sandbox run behind it."""
    from loong_env.seeds.validation import CheckStatus

    passed = check.status is CheckStatus.passed
    error = (
        None
        if check.status in (CheckStatus.passed, CheckStatus.wrong_answer, CheckStatus.no_code)
        else str(check.status)
    )
    reason = None if passed else check.status.value
    metrics.item(
        ok=passed,
        outcome=check.status.value,
        reason=reason,
        error=error,
        seconds=check.duration_s,
        domain=check.domain,
    )
    if check.status not in (CheckStatus.env_error, CheckStatus.no_code):
        metrics.call("sandbox", check.duration_s, ok=error is None, error=error)
