"""The figures of a run, computed from its metrics records: one code path for `loong report` and live views.

Feed records in order to `RunFigures.add` (live, from a MetricsWriter's `on_record`) or build one from a
file with `RunFigures.from_log(read_metrics(dir))`; then `summary()` gives totals, rates and latency
percentiles, `summary_rows(summary)` the same figures as labelled text, and `timeline(bins)` the series
the report plots. Time is active run time: a resumed run's segments are laid end to end, gaps left out.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Iterable, Sequence

from pydantic import BaseModel, Field

from loong_env.runs.diagnostics import VERDICTS
from loong_env.runs.metrics import (
    CallRecord,
    EndRecord,
    ItemRecord,
    MetricRecord,
    MetricsLog,
    RunRecord,
    StepRecord,
)


class Latency(BaseModel):
    """Latency of one kind of call, in seconds."""

    count: int = 0
    errors: int = 0
    mean: float | None = None
    p50: float | None = None
    p90: float | None = None
    p99: float | None = None
    max: float | None = None


class RunSummary(BaseModel):
    """A run's figures: what the report's text and a live display both show."""

    runs: list[str] = Field(default_factory=list, description="Kind of each segment (a resume adds one).")
    status: str = "running or killed"
    active_s: float = 0.0
    items: int = 0
    ok: int = 0
    ok_rate: float = 0.0
    items_per_s: float = 0.0
    outcomes: dict[str, int] = Field(default_factory=dict)
    reasons: dict[str, int] = Field(default_factory=dict, description="Why items were not ok, most first.")
    errors: dict[str, int] = Field(default_factory=dict, description="Items that failed by error, by kind.")
    error_rate: float = 0.0
    tokens: int = 0
    tokens_per_s: float = 0.0
    cost_usd: float | None = None
    llm: Latency = Field(default_factory=Latency)
    sandbox: Latency = Field(default_factory=Latency)
    call_errors: dict[str, int] = Field(default_factory=dict, description="Failed calls by 'op:kind'.")
    steps: int = 0
    reward_last: float | None = None
    reward_mean: float | None = None
    correct_last: float | None = None
    values: dict[str, float] = Field(
        default_factory=dict, description="Curriculum arm values at the last step."
    )
    verdicts: dict[str, int] = Field(default_factory=dict, description="Answers per verdict kind, all steps.")
    zero_variance_last: float | None = None
    zero_variance_mean: float | None = Field(default=None, description="Mean over steps that had groups.")
    verifiers: dict[str, int] = Field(default_factory=dict, description="Answers judged per verifier.")
    dataset_versions: dict[str, int] = Field(default_factory=dict)
    step_seconds_mean: float | None = None
    skipped_lines: int = 0


class Timeline(BaseModel):
    """Per time bin (active seconds): counts, reasons, errors, latency percentiles; per step: env figures."""

    edges: list[float] = Field(default_factory=list)
    items: list[int] = Field(default_factory=list)
    ok: list[int] = Field(default_factory=list)
    tokens: list[int] = Field(default_factory=list)
    cost: list[float] = Field(default_factory=list)
    reasons: dict[str, list[int]] = Field(default_factory=dict)
    errors: dict[str, list[int]] = Field(default_factory=dict)
    llm_p50: list[float | None] = Field(default_factory=list)
    llm_p90: list[float | None] = Field(default_factory=list)
    sandbox_p50: list[float | None] = Field(default_factory=list)
    sandbox_p90: list[float | None] = Field(default_factory=list)
    steps: list[int] = Field(default_factory=list)
    reward: list[float] = Field(default_factory=list)
    correct: list[float] = Field(default_factory=list)
    values: dict[str, list[float | None]] = Field(default_factory=dict)
    drawn: dict[str, list[int]] = Field(default_factory=dict, description="Draws per category per step.")
    verdicts: dict[str, list[int]] = Field(default_factory=dict, description="Answers per verdict per step.")
    zero_variance: list[float | None] = Field(default_factory=list, description="Per step; None: no group.")
    step_seconds: list[float] = Field(default_factory=list)

    @property
    def widths(self) -> list[float]:
        return [b - a for a, b in zip(self.edges, self.edges[1:])]


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0-100) by linear interpolation; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def latency(seconds: Sequence[float], errors: int = 0) -> Latency:
    """Count, mean and percentiles of call durations."""
    if not seconds:
        return Latency(errors=errors)
    return Latency(
        count=len(seconds),
        errors=errors,
        mean=sum(seconds) / len(seconds),
        p50=percentile(seconds, 50),
        p90=percentile(seconds, 90),
        p99=percentile(seconds, 99),
        max=max(seconds),
    )


class RunFigures:
    """Accumulates metric records in order and computes a run's figures from them."""

    def __init__(self) -> None:
        self.runs: list[str] = []
        self.items: list[tuple[float, ItemRecord]] = []
        self.calls: list[tuple[float, CallRecord]] = []
        self.steps: list[tuple[float, StepRecord]] = []
        self.status: str | None = None
        self.skipped = 0
        self._offset = 0.0  # active seconds of the segments before the current one
        self._start: float | None = None
        self._last: float | None = None

    @classmethod
    def from_records(cls, records: Iterable[MetricRecord], skipped: int = 0) -> RunFigures:
        figures = cls()
        for record in records:
            figures.add(record)
        figures.skipped = skipped
        return figures

    @classmethod
    def from_log(cls, log: MetricsLog) -> RunFigures:
        return cls.from_records(log.records, log.skipped)

    def add(self, record: MetricRecord) -> None:
        """Take one record (in file order)."""
        if isinstance(record, RunRecord) or self._start is None:
            if self._start is not None and self._last is not None:
                self._offset += self._last - self._start
            self._start = self._last = record.t
            self.status = None
            if isinstance(record, RunRecord):
                self.runs.append(record.run)
                return
        x = self._offset + max(0.0, record.t - self._start)
        self._last = max(self._last or record.t, record.t)
        if isinstance(record, ItemRecord):
            self.items.append((x, record))
        elif isinstance(record, CallRecord):
            self.calls.append((x, record))
        elif isinstance(record, StepRecord):
            self.steps.append((x, record))
        elif isinstance(record, EndRecord):
            self.status = record.status

    def active_s(self, now: float | None = None) -> float:
        """Active seconds so far: to the last record, or to `now` for a run still going."""
        if self._start is None:
            return 0.0
        end = self._last if now is None else max(now, self._last or now)
        return self._offset + max(0.0, (end or self._start) - self._start)

    def summary(self, now: float | None = None) -> RunSummary:
        """Totals, rates and percentiles; pass `now=time.time()` for a live run."""
        active = self.active_s(now)
        items = [r for _, r in self.items]
        ok = sum(r.ok for r in items)
        reasons = Counter(r.reason or r.outcome for r in items if not r.ok)
        errors = Counter(r.error for r in items if r.error)
        calls = [r for _, r in self.calls]
        tokens = sum(r.tokens for r in calls) + sum(r.tokens for r in items)
        costs = [r.cost_usd for r in calls if r.cost_usd is not None]
        n = len(items)
        summary = RunSummary(
            runs=list(self.runs),
            status=self.status or "running or killed",
            active_s=active,
            items=n,
            ok=ok,
            ok_rate=ok / n if n else 0.0,
            items_per_s=n / active if active else 0.0,
            outcomes=dict(Counter(r.outcome for r in items).most_common()),
            reasons=dict(reasons.most_common()),
            errors=dict(errors.most_common()),
            error_rate=sum(errors.values()) / n if n else 0.0,
            tokens=tokens,
            tokens_per_s=tokens / active if active else 0.0,
            cost_usd=sum(costs) if costs else None,
            llm=self._latency("llm"),
            sandbox=self._latency("sandbox"),
            call_errors=dict(Counter(f"{r.op}:{r.error}" for r in calls if not r.ok).most_common()),
            steps=len(self.steps),
            skipped_lines=self.skipped,
        )
        if self.steps:
            last = self.steps[-1][1]
            summary.reward_last, summary.correct_last = last.reward_mean, last.correct_rate
            summary.values = dict(last.values)
            summary.reward_mean = sum(s.reward_mean for _, s in self.steps) / len(self.steps)
            steps = [s for _, s in self.steps]
            verdicts: Counter[str] = Counter()
            for s in steps:
                verdicts.update(s.counts)
            summary.verdicts = {k: v for k, v in verdicts.items() if v}
            fractions = [s.zero_variance_fraction for s in steps if s.zero_variance_fraction is not None]
            summary.zero_variance_last = last.zero_variance_fraction
            summary.zero_variance_mean = sum(fractions) / len(fractions) if fractions else None
            summary.verifiers = dict(sum((Counter(s.verifiers) for s in steps), Counter()).most_common())
            summary.dataset_versions = dict(sum((Counter(s.dataset_versions) for s in steps), Counter()))
            summary.step_seconds_mean = sum(s.seconds for s in steps) / len(steps)
        return summary

    def _latency(self, op: str) -> Latency:
        calls = [r for _, r in self.calls if r.op == op]
        return latency([r.seconds for r in calls], errors=sum(not r.ok for r in calls))

    def timeline(self, bins: int = 30, now: float | None = None) -> Timeline:
        """The run cut into `bins` equal spans of active time, plus one entry per env step."""
        span = max(self.active_s(now), 1e-9)
        bins = max(1, bins)
        edges = [span * i / bins for i in range(bins + 1)]

        def slot(x: float) -> int:
            return min(bins - 1, int(x / span * bins))

        tl = Timeline(edges=edges, items=[0] * bins, ok=[0] * bins, tokens=[0] * bins, cost=[0.0] * bins)
        not_ok = Counter(r.reason or r.outcome for _, r in self.items if not r.ok)
        top_reasons = [reason for reason, _ in not_ok.most_common(6)]
        for x, item in self.items:
            i = slot(x)
            tl.items[i] += 1
            tl.ok[i] += item.ok
            tl.tokens[i] += item.tokens
            if not item.ok:
                reason = item.reason or item.outcome
                key = reason if reason in top_reasons else "other"
                tl.reasons.setdefault(key, [0] * bins)[i] += 1
            if item.error:
                tl.errors.setdefault(item.error, [0] * bins)[i] += 1
        durations: dict[str, list[list[float]]] = {op: [[] for _ in range(bins)] for op in ("llm", "sandbox")}
        for x, call in self.calls:
            i = slot(x)
            tl.tokens[i] += call.tokens
            tl.cost[i] += call.cost_usd or 0.0
            durations.setdefault(call.op, [[] for _ in range(bins)])[i].append(call.seconds)
            if not call.ok:
                tl.errors.setdefault(f"{call.op}:{call.error}", [0] * bins)[i] += 1
        tl.llm_p50 = [percentile(d, 50) for d in durations["llm"]]
        tl.llm_p90 = [percentile(d, 90) for d in durations["llm"]]
        tl.sandbox_p50 = [percentile(d, 50) for d in durations["sandbox"]]
        tl.sandbox_p90 = [percentile(d, 90) for d in durations["sandbox"]]
        arms = sorted({a for _, s in self.steps for a in s.values})
        drawn = sorted({a for _, s in self.steps for a in s.drawn})
        tl.values = {a: [] for a in arms}
        tl.drawn = {a: [] for a in drawn}
        kinds = [k for k in VERDICTS if any(s.counts.get(k) for _, s in self.steps)]
        tl.verdicts = {k: [] for k in kinds}
        for _, step in self.steps:
            tl.steps.append(step.step)
            tl.reward.append(step.reward_mean)
            tl.correct.append(step.correct_rate)
            tl.zero_variance.append(step.zero_variance_fraction)
            tl.step_seconds.append(step.seconds)
            for k in kinds:
                tl.verdicts[k].append(step.counts.get(k, 0))
            for a in arms:
                tl.values[a].append(step.values.get(a))
            for a in drawn:
                tl.drawn[a].append(step.drawn.get(a, 0))
        return tl


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k}={v}" for k, v in counts.items())


def summary_rows(summary: RunSummary) -> list[tuple[str, str]]:
    """The summary as (label, value) rows: the report's text and the live table print exactly these."""
    s = summary
    cost = f"  (${s.cost_usd:.4f})" if s.cost_usd is not None else ""
    rows = [("run", f"{' + '.join(s.runs) or '?'} ({s.status}), {s.active_s:.1f} s active")]
    if s.items or not s.steps:  # an env-only run has steps, not items
        rows += [
            ("items", f"{s.items} ({s.ok} ok, {s.ok_rate:.1%})"),
            ("throughput", f"{60 * s.items_per_s:.2f} items/min, {s.tokens_per_s:.1f} tokens/s"),
            ("tokens", f"{s.tokens}{cost}"),
            ("not ok", _counts(s.reasons) or "-"),
            ("errors", f"{s.error_rate:.1%} of items" + (f": {_counts(s.errors)}" if s.errors else "")),
        ]
    for name, lat in (("llm calls", s.llm), ("sandbox runs", s.sandbox)):
        if lat.count or lat.errors:
            spread = f"p50 {_seconds(lat.p50)}, p90 {_seconds(lat.p90)}, p99 {_seconds(lat.p99)}"
            rows.append((name, f"{lat.count} ({spread}), {lat.errors} not ok"))
    if s.call_errors:
        rows.append(("failed calls", _counts(s.call_errors)))
    if s.steps:
        rewards = (
            f"reward last {s.reward_last:.3f}, mean {s.reward_mean:.3f}, correct last {s.correct_last:.1%}"
        )
        rows.append(("steps", f"{s.steps}, {rewards}"))
        if s.verdicts:
            rows.append(("verdicts", _counts(s.verdicts)))
        if s.zero_variance_mean is not None:
            last = "-" if s.zero_variance_last is None else f"{s.zero_variance_last:.1%}"
            rows.append(("zero-variance groups", f"mean {s.zero_variance_mean:.1%}, last {last}"))
        if s.verifiers:
            rows.append(("verifiers", _counts(s.verifiers)))
        if s.dataset_versions:
            rows.append(("dataset versions", _counts(s.dataset_versions)))
        if s.step_seconds_mean:
            rows.append(("step time", f"mean {_seconds(s.step_seconds_mean)}"))
        top = dict(sorted(((k, v) for k, v in s.values.items() if v > 0), key=lambda kv: -kv[1])[:5])
        if top:
            rows.append(("top arms", ", ".join(f"{k}={v:.3f}" for k, v in top.items())))
    if s.skipped_lines:
        rows.append(("skipped", f"{s.skipped_lines} unreadable line(s) (torn by a kill?)"))
    return rows


def live_summary(figures: RunFigures) -> RunSummary:
    """The summary of a run still going: time runs to now."""
    return figures.summary(now=time.time())
