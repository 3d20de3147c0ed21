"""How `loong seeds ...` shows its reports as rich tables and located lists (the library prints nothing)."""

from __future__ import annotations

import os

from rich import box
from rich.console import Console
from rich.table import Table

from loong_env.runs.calibration import DomainCalibration
from loong_env.seeds.load_report import LoadReport, SeedIssue
from loong_env.seeds.reachability import ReachabilityReport
from loong_env.seeds.validation import CheckStatus, ValidationReport

_COLUMNS = [
    ("passed", "pass"),
    ("wrong_answer", "wrong"),
    ("code_error", "code\nerr"),
    ("timeout", "time\nout"),
    ("env_error", "env\nerr"),
    ("no_code", "no\ncode"),
]


def _table(title: str) -> Table:
    """A table without vertical rules, so nine domains and their counts fit 80 columns."""
    return Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)


def _short(text: str) -> str:
    """Paths under the working directory shown relative to it."""
    cwd = os.getcwd() + os.sep
    return text.replace(cwd, "")


def _line(console: Console, text: str) -> None:
    console.print(_short(text), highlight=False, soft_wrap=True, markup=False)


def show_issues(console: Console, issues: list[SeedIssue], limit: int) -> None:
    """Records rejected as unusable, located."""
    if not issues:
        return
    console.print(f"[red]{len(issues)} record(s) rejected as unusable:[/red]")
    for issue in issues[:limit]:
        _line(console, f"  {issue}")
    if len(issues) > limit:
        console.print(f"  ... and {len(issues) - limit} more")


def show_load_report(console: Console, report: LoadReport | None) -> None:
    """What loading coerced, counted by field and rule, with one located example each."""
    if report is None:
        return
    if report.coercions:
        table = _table(f"coerced while loading ({report.records} records read)")
        for col, justify in (("field", "left"), ("rule", "left"), ("records", "right"), ("example", "left")):
            table.add_column(col, justify=justify)  # type: ignore[arg-type]
        for field, rule, count in report.counts():
            example = report.examples(field, rule, 1)[0]
            table.add_row(field, rule, str(count), f"{example.found} -> {example.kept}")
        console.print(table)
    if report.kept_in_metadata:
        kept = ", ".join(f"{key} ({n})" for key, n in report.kept_in_metadata.items())
        _line(console, f"kept in metadata as found: {kept}")


def show_validation(console: Console, report: ValidationReport, limit: int) -> None:
    """The per-domain outcome table, then the environments that failed or were relaxed, then failures."""
    table = _table(f"seed validation ({report.seconds:.1f} s wall)")
    width = max((len(s.domain) for s in report.domains), default=6)
    table.add_column("domain", no_wrap=True, min_width=width)
    for _, header in _COLUMNS:
        table.add_column(header, justify="right")
    table.add_column("rate", justify="right")
    for s in report.domains:
        rate = f"{100 * s.passed / s.runnable:.3g}%" if s.runnable else "-"
        table.add_row(s.domain, *(str(getattr(s, field)) for field, _ in _COLUMNS), rate)
    console.print(table)
    for env in report.environments:
        asked = ", ".join(env.requirements) or "standard library only"
        if env.error is not None:
            _line(console, f"env_error [{asked}] ({env.seeds} seeds, not run): {env.error}")
        elif env.relaxed:
            _line(console, f"relaxed [{asked}] -> [{', '.join(env.installed or [])}] ({env.seeds} seeds)")
    failures = [c for c in report.failures if c.status is not CheckStatus.env_error]
    for check in failures[:limit]:
        _line(console, f"{check.status.value} {check.origin}: {check.reason}")
    if len(failures) > limit:
        console.print(f"... and {len(failures) - limit} more")


def show_reachability(console: Console, report: ReachabilityReport, limit: int) -> None:
    """Seeds a correct solver can miss, per domain and by likely cause, then the located flags."""
    seed_side, engine_side = report.seeds_flagged("seed"), report.seeds_flagged("comparison")
    undeclared = report.precision_warnings()
    table = _table(f"reachability: seeds a correct solver can miss ({report.seconds:.1f} s)")
    table.add_column("domain", no_wrap=True)
    for header in ("seeds", "flagged", "seed\ncause", "engine\ncause", "states no\nprecision"):
        table.add_column(header, justify="right")
    any_seed = report.seeds_flagged()
    for domain, checked in report.checked.items():
        counts = (checked, any_seed[domain], seed_side[domain], engine_side[domain], undeclared[domain])
        table.add_row(domain, *map(str, counts))
    console.print(table)
    for flag in report.flags[:limit]:
        _line(console, f"warning {flag}")
    if len(report.flags) > limit:
        console.print(f"... and {len(report.flags) - limit} more")


def show_calibration(console: Console, domains: list[DomainCalibration], *, uncalibrated: int) -> None:
    """Calibrated difficulty per domain (levels 1-5 of the measured pass rate), beside the author's table."""
    models = sorted({m for d in domains for m in d.models})
    table = _table(f"calibrated difficulty (pass rate of {', '.join(models) or 'no model'})")
    table.add_column("domain", no_wrap=True)
    for header in ("items", *(f"c{level}" for level in range(1, 6)), "pass\nrate", "same as\nauthor"):
        table.add_column(header, justify="right")
    for d in domains:
        table.add_row(
            d.domain,
            str(d.items),
            *(str(d.levels.get(level, 0)) for level in range(1, 6)),
            f"{d.mean_pass_rate:.2f}",
            str(d.same_as_author),
        )
    console.print(table)
    note = f"{uncalibrated} seeds listed are not calibrated"
    _line(console, f"c1..c5: pass rate >= 0.8, 0.6, 0.4, 0.2, below; {note}")
