"""A run's metrics as PNG plots and a short text summary: the engine behind `loong report RUN_DIR`.

    report = render_report("runs/gdm")          # writes runs/gdm/report.png, report.txt, report.json
    print(report.text)

Works on a finished run, one still going and one that was killed (a torn last line is skipped). The
figures come from `loong_env.runs.figures`, the same code the live display of `loong generate` uses.
Needs matplotlib (`pip install 'loong-env[report]'`); it is imported only here.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from loong_env.errors import LoongError
from loong_env.runs.calibration import (
    CALIBRATION,
    DomainCalibration,
    calibration_path,
    pass_rates_by_domain,
    read_calibration,
    summarize_by_domain,
)
from loong_env.runs.figures import RunFigures, RunSummary, Timeline, summary_rows
from loong_env.runs.metrics import read_metrics

PNG = "report.png"
TEXT = "report.txt"
JSON = "report.json"
CALIBRATION_PNG = "calibration.png"
CALIBRATION_TEXT = "calibration.txt"
MAX_ARMS_PLOTTED = 10


class ReportDependencyError(LoongError, ImportError):
    """matplotlib is missing; the message names the extra that installs it."""


class Report(BaseModel):
    """What `render_report` wrote, and the summary it printed."""

    png: Path
    text_path: Path
    json_path: Path
    summary: RunSummary
    text: str


def summary_text(summary: RunSummary, source: str | None = None) -> str:
    """The summary as aligned `label: value` lines (what report.txt holds)."""
    rows = summary_rows(summary)
    width = max(len(label) for label, _ in rows)
    head = [f"metrics: {source}"] if source else []
    return "\n".join(head + [f"{label.ljust(width)}  {value}" for label, value in rows]) + "\n"


def render_report(
    location: str | os.PathLike[str], *, out_dir: str | os.PathLike[str] | None = None, bins: int = 30
) -> Report:
    """Read a run folder's metrics.jsonl (or a .jsonl path), write the PNG, text and JSON summary."""
    log = read_metrics(location)
    figures = RunFigures.from_log(log)
    summary = figures.summary()
    out = Path(out_dir) if out_dir is not None else log.path.parent
    out.mkdir(parents=True, exist_ok=True)
    png = plot_run(summary, figures.timeline(bins), out / PNG)
    text = summary_text(summary, str(log.path))
    (out / TEXT).write_text(text, encoding="utf-8")
    (out / JSON).write_text(summary.model_dump_json(indent=2), encoding="utf-8")
    return Report(png=png, text_path=out / TEXT, json_path=out / JSON, summary=summary, text=text)


class CalibrationReport(BaseModel):
    """What `render_calibration_report` wrote."""

    png: Path
    text_path: Path
    domains: list[DomainCalibration]
    text: str


def has_calibration(location: str | os.PathLike[str]) -> bool:
    """The location is a calibration run folder or a calibration.jsonl."""
    file = calibration_path(location)
    return file.name == CALIBRATION and file.is_file()


def render_calibration_report(
    location: str | os.PathLike[str], *, out_dir: str | os.PathLike[str] | None = None
) -> CalibrationReport:
    """Pass-rate distributions per domain from a calibration file: calibration.png and calibration.txt."""
    calibration = read_calibration(location)
    domains = summarize_by_domain(calibration)
    out = Path(out_dir) if out_dir is not None else calibration_path(location).parent
    out.mkdir(parents=True, exist_ok=True)
    models = ", ".join(sorted({m for d in domains for m in d.models})) or "no model"
    lines = [f"calibration: {calibration_path(location)} ({len(calibration)} items, {models})"]
    lines.append(f"{'domain':30s} {'items':>5s} {'pass':>5s}   c1  c2  c3  c4  c5  same-as-author")
    for d in domains:
        levels = " ".join(f"{d.levels.get(level, 0):3d}" for level in range(1, 6))
        lines.append(f"{d.domain:30s} {d.items:5d} {d.mean_pass_rate:5.2f}  {levels}  {d.same_as_author}")
    text = "\n".join(lines) + "\n"
    (out / CALIBRATION_TEXT).write_text(text, encoding="utf-8")
    png = plot_pass_rates(pass_rates_by_domain(calibration), models, out / CALIBRATION_PNG)
    return CalibrationReport(png=png, text_path=out / CALIBRATION_TEXT, domains=domains, text=text)


def plot_pass_rates(rates: dict[str, list[float]], models: str, path: Path) -> Path:
    """One box per domain, then a histogram per domain binned by calibrated level (fifths of the rate)."""
    ncols = 3
    nrows = 1 + -(-max(1, len(rates)) // ncols)
    fig = _pyplot_free_figure(nrows)
    fig.suptitle(f"pass rates per item under {models}", fontsize=12)
    grid = fig.add_gridspec(nrows, ncols)
    overview = fig.add_subplot(grid[0, :])
    if rates:
        overview.boxplot(list(rates.values()), tick_labels=list(rates), orientation="horizontal")
    overview.set(title="pass rate per domain", xlabel="pass rate", xlim=(-0.02, 1.02))
    edges = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    for i, (domain, values) in enumerate(rates.items()):
        ax = fig.add_subplot(grid[1 + i // ncols, i % ncols])
        ax.hist(values, bins=edges, color="#3182bd", edgecolor="white")
        mean = sum(values) / len(values)
        ax.set(title=f"{domain} ({len(values)} items, mean {mean:.2f})", xlabel="pass rate", xlim=(0, 1))
        ax.set_xticks([0.1, 0.3, 0.5, 0.7, 0.9], ["c5", "c4", "c3", "c2", "c1"])
    fig.savefig(path, dpi=90)
    return path


def _pyplot_free_figure(nrows: int) -> Any:
    """A matplotlib Figure without pyplot (no GUI backend, no global state), or a helpful error."""
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ReportDependencyError(
            "loong report draws with matplotlib, which is not installed: pip install 'loong-env[report]' "
            "(or uv sync --extra report)"
        ) from exc
    return Figure(figsize=(13, 3.4 * nrows), layout="constrained")


def panel_names(summary: RunSummary, tl: Timeline) -> list[str]:
    """The panels `plot_run` draws for this run, by name (e.g. `verdicts`, `zero_variance`)."""
    return [draw.__name__.lstrip("_") for draw, wanted in _PANELS if wanted(summary, tl)]


def plot_run(summary: RunSummary, tl: Timeline, path: Path) -> Path:
    """Draw every panel the run has data for into one PNG."""
    panels = [p for p in _PANELS if p[1](summary, tl)]
    ncols = 2 if len(panels) > 1 else 1
    nrows = max(1, -(-len(panels) // ncols))
    fig = _pyplot_free_figure(nrows)
    runs = " + ".join(summary.runs) or "run"
    counts = f"{summary.items} items, {summary.steps} steps, {summary.active_s:.0f} s active"
    fig.suptitle(f"{runs} ({summary.status}): {counts}", fontsize=12)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, (draw, _) in zip(axes, panels):
        draw(ax, summary, tl)
    for ax in axes[len(panels) :]:
        ax.set_axis_off()
    if not panels:
        axes[0].text(0.5, 0.5, "no items, calls or steps recorded yet", ha="center", va="center")
    fig.savefig(path, dpi=90)
    return path


# ------------------------------------------------------------------------------------------- panels


def _mids(tl: Timeline) -> list[float]:
    return [(a + b) / 2 for a, b in zip(tl.edges, tl.edges[1:])]


def _throughput(ax: Any, s: RunSummary, tl: Timeline) -> None:
    x, w = _mids(tl), tl.widths
    ax.bar(x, [60 * n / d for n, d in zip(tl.items, w)], width=w, color="#9ecae1", label="items/min")
    ax.bar(x, [60 * n / d for n, d in zip(tl.ok, w)], width=w, color="#3182bd", label="ok/min")
    title = f"throughput ({60 * s.items_per_s:.2f} items/min)"
    ax.set(title=title, xlabel="active seconds", ylabel="per minute")
    if s.tokens:
        twin = ax.twinx()
        twin.plot(x, [t / d for t, d in zip(tl.tokens, w)], color="#e6550d", marker=".", label="tokens/s")
        twin.set_ylabel("tokens/s")
        twin.legend(loc="upper right", fontsize=8)
    ax.legend(loc="upper left", fontsize=8)


def _acceptance(ax: Any, s: RunSummary, tl: Timeline) -> None:
    x = _mids(tl)
    pairs = [(xi, ok / n) for xi, ok, n in zip(x, tl.ok, tl.items) if n]
    done = ok_total = 0
    cumulative = []
    for xi, ok, n in zip(x, tl.ok, tl.items):
        done, ok_total = done + n, ok_total + ok
        if done:
            cumulative.append((xi, ok_total / done))
    ax.plot(*zip(*pairs), marker="o", linestyle="", color="#31a354", label="per bin")
    ax.plot(*zip(*cumulative), color="#006d2c", label="cumulative")
    ax.set(title=f"ok rate ({s.ok_rate:.1%} of {s.items})", xlabel="active seconds", ylim=(-0.02, 1.02))
    ax.legend(fontsize=8)


def _stacked(ax: Any, tl: Timeline, series: dict[str, list[int]], title: str) -> None:
    x, w = _mids(tl), tl.widths
    bottom = [0] * len(x)
    for name, counts in sorted(series.items(), key=lambda kv: -sum(kv[1])):
        ax.bar(x, counts, width=w, bottom=bottom, label=f"{name} ({sum(counts)})")
        bottom = [b + c for b, c in zip(bottom, counts)]
    ax.set(title=title, xlabel="active seconds", ylabel="count")
    ax.legend(fontsize=8)


def _reasons(ax: Any, s: RunSummary, tl: Timeline) -> None:
    _stacked(ax, tl, tl.reasons, f"not ok, by reason ({s.items - s.ok})")


def _errors(ax: Any, s: RunSummary, tl: Timeline) -> None:
    _stacked(ax, tl, tl.errors, f"errors by kind ({s.error_rate:.1%} of items)")


def _latency(ax: Any, s: RunSummary, tl: Timeline) -> None:
    x = _mids(tl)
    kinds = [
        ("llm", tl.llm_p50, tl.llm_p90, "#756bb1"),
        ("sandbox", tl.sandbox_p50, tl.sandbox_p90, "#e6550d"),
    ]
    for name, p50, p90, color in kinds:
        if any(v is not None for v in p50):
            ax.plot(x, p50, marker="o", color=color, label=f"{name} p50")
            ax.plot(x, p90, marker="^", linestyle="--", color=color, label=f"{name} p90")
    llm, box = s.llm, s.sandbox
    title = f"latency (llm p50 {llm.p50 or 0:.2f} s, sandbox p50 {box.p50 or 0:.2f} s)"
    ax.set(title=title, xlabel="active seconds", ylabel="seconds", yscale="log")
    ax.legend(fontsize=8)


def _tokens(ax: Any, s: RunSummary, tl: Timeline) -> None:
    total = cost = 0.0
    tokens, costs = [], []
    for t, c in zip(tl.tokens, tl.cost):
        total, cost = total + t, cost + c
        tokens.append(total)
        costs.append(cost)
    ax.plot(tl.edges[1:], tokens, color="#e6550d", label="tokens")
    ax.set(title=f"tokens ({s.tokens}) and cost", xlabel="active seconds", ylabel="tokens (cumulative)")
    if s.cost_usd is not None:
        twin = ax.twinx()
        twin.plot(tl.edges[1:], costs, color="#636363", linestyle="--", label="USD")
        twin.set_ylabel("USD (cumulative)")
    ax.legend(fontsize=8)


def _reward(ax: Any, s: RunSummary, tl: Timeline) -> None:
    ax.plot(tl.steps, tl.reward, marker=".", label="mean reward")
    ax.plot(tl.steps, tl.correct, marker=".", alpha=0.6, label="correct rate")
    ax.set(title=f"env reward per step (last {s.reward_last:.3f})", xlabel="step")
    ax.legend(fontsize=8)


def _top(series: dict[str, list[Any]], key: Any) -> list[str]:
    return sorted(series, key=key, reverse=True)[:MAX_ARMS_PLOTTED]


def _arm_color(tl: Timeline, arm: str) -> Any:
    """One color per arm in every panel: its place among all arms, on a 20-color map."""
    from matplotlib import colormaps

    arms = sorted(set(tl.values) | set(tl.drawn))
    return colormaps["tab20"](arms.index(arm) % 20)


def _rolling(values: list[float], window: int) -> list[float]:
    """Trailing mean over `window` steps (shorter at the start)."""
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v - (values[i - window] if i >= window else 0.0)
        out.append(total / min(i + 1, window))
    return out


def _arm_values(ax: Any, s: RunSummary, tl: Timeline) -> None:
    peak = {a: max((v or 0.0) for v in vs) for a, vs in tl.values.items()}
    for arm in _top({a: vs for a, vs in tl.values.items() if peak[a] > 0} or tl.values, peak.get):
        series = [v if v is not None else float("nan") for v in tl.values[arm]]
        ax.plot(tl.steps, series, label=arm, color=_arm_color(tl, arm))
    ax.set(title="curriculum arm values (smoothed |advantage|)", xlabel="step", ylabel="value")
    ax.legend(fontsize=7, ncols=2, loc="best")


def _draws(ax: Any, s: RunSummary, tl: Timeline) -> None:
    arms = _top(tl.drawn, lambda a: sum(tl.drawn[a]))
    window = max(1, len(tl.steps) // 25)
    totals = _rolling([float(sum(tl.drawn[a][i] for a in tl.drawn)) for i in range(len(tl.steps))], window)
    smoothed = {a: _rolling([float(x) for x in tl.drawn[a]], window) for a in arms}
    shares = [[d / (t or 1) for d, t in zip(smoothed[a], totals)] for a in arms]
    ax.stackplot(tl.steps, shares, labels=arms, colors=[_arm_color(tl, a) for a in arms])
    title = "curriculum sampling shares" + (f" ({window}-step mean)" if window > 1 else "")
    ax.set(title=title, xlabel="step", ylabel="share of problems", ylim=(0, 1))
    ax.legend(fontsize=7, ncols=2, loc="lower left")


def _verdicts(ax: Any, s: RunSummary, tl: Timeline) -> None:
    colors = {
        "correct": "tab:green",
        "incorrect": "tab:red",
        "no_answer": "tab:gray",
        "timeout": "tab:orange",
    }
    kinds = list(tl.verdicts)
    ax.stackplot(
        tl.steps,
        [tl.verdicts[k] for k in kinds],
        labels=kinds,
        colors=[colors.get(k, "tab:purple") for k in kinds],
    )
    ax.set(title="verdicts per step", xlabel="step", ylabel="answers")
    ax.legend(fontsize=7, loc="upper left")


def _zero_variance(ax: Any, s: RunSummary, tl: Timeline) -> None:
    points = [(x, y) for x, y in zip(tl.steps, tl.zero_variance) if y is not None]
    ax.plot([x for x, _ in points], [y for _, y in points], marker=".", label="zero-variance groups")
    ax.set(
        title="groups with no signal (all rewards equal)",
        xlabel="step",
        ylabel="share of groups",
        ylim=(0, 1.05),
    )
    ax.legend(fontsize=7, loc="upper left")
    if any(tl.step_seconds):
        twin = ax.twinx()
        twin.plot(tl.steps, tl.step_seconds, color="tab:gray", alpha=0.5, label="step time (s)")
        twin.set_ylabel("seconds")
        twin.legend(fontsize=7, loc="upper right")


_PANELS = [
    (_throughput, lambda s, tl: s.items > 0),
    (_acceptance, lambda s, tl: s.items > 0),
    (_reasons, lambda s, tl: bool(tl.reasons)),
    (_errors, lambda s, tl: bool(tl.errors)),
    (_latency, lambda s, tl: s.llm.count + s.sandbox.count > 0),
    (_tokens, lambda s, tl: s.tokens > 0),
    (_reward, lambda s, tl: s.steps > 0),
    (_verdicts, lambda s, tl: bool(tl.verdicts)),
    (_zero_variance, lambda s, tl: any(v is not None for v in tl.zero_variance)),
    (_arm_values, lambda s, tl: bool(tl.values)),
    (_draws, lambda s, tl: bool(tl.drawn)),
]
