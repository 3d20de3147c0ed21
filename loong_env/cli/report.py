"""`loong report RUN_DIR`: a run's metrics.jsonl as PNG plots and a short summary, live or finished."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console


def register(subparsers: Any) -> None:
    """Add the `report` command."""
    p = subparsers.add_parser(
        "report",
        help="plot a run's live metrics (generation, validation, env) as PNG + a text summary",
        description="Read RUN_DIR/metrics.jsonl (written while `loong generate`, `loong seeds validate "
        "--out` or an env with metrics= runs) and write report.png, report.txt and report.json. Works on "
        "a run that is still going or was killed: a torn last line is skipped. A `loong calibrate` folder "
        "(or its calibration.jsonl) gets calibration.png and calibration.txt: pass rates per domain.",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="run folder holding metrics.jsonl, or a .jsonl file")
    p.add_argument("--out", default=None, metavar="DIR", help="where to write the report (default: RUN_DIR)")
    p.add_argument("--bins", type=int, default=30, help="time bins of the plots (default: 30)")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    """Render the report and print its summary; exit 2 when there are no metrics to read."""
    from loong_env.errors import NotFoundError
    from loong_env.runs.report import (
        ReportDependencyError,
        has_calibration,
        render_calibration_report,
        render_report,
    )

    console = Console()
    if has_calibration(args.run_dir):
        try:
            calibration = render_calibration_report(args.run_dir, out_dir=args.out)
        except ReportDependencyError as exc:
            console.print(f"[red]error:[/red] {exc}", highlight=False)
            return 2
        console.print(calibration.text, highlight=False, markup=False, end="")
        console.print(f"wrote {calibration.png}, {calibration.text_path.name}", highlight=False)
        if not (Path(args.run_dir) / "metrics.jsonl").exists():
            return 0
    try:
        report = render_report(args.run_dir, out_dir=args.out, bins=args.bins)
    except (NotFoundError, ReportDependencyError) as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False)
        return 2
    console.print(report.text, highlight=False, markup=False, end="")
    console.print(f"wrote {report.png}, {report.text_path.name}, {report.json_path.name}", highlight=False)
    return 0
