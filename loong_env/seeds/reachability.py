"""Can a correct solver earn each seed's reward? Judge the reference's other correct spellings like the env.

Every spelling from `loong_env.seeds.spellings` is boxed and judged by `VerifierRouter` with the seed's answer
key (its domain's tolerance and plug-in), exactly as a policy's answer would be. A spelling judged wrong is
a located flag: the seed's reward is unreachable for a solver who writes it. The flag says whether it looks
like a bug in the seed (a precision the question does not state, a tolerance tighter than the precision)
or in the comparison (a correct form the engine does not accept). Decimal answers whose question states no
precision are flagged too.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel, Field

from loong_env.routing import VerifierRouter
from loong_env.seeds.dataset import SeedDataset
from loong_env.seeds.spellings import Blame, Spelling, precision_warning, spellings
from loong_env.types import DataPoint


class ReachabilityFlag(BaseModel):
    """One seed whose reward a correct solver can miss, with the spelling that is judged wrong and why."""

    id: str
    domain: str
    origin: str
    kind: str = Field(description="The spelling's kind (at_precision, labelled, ...) or 'no_precision'.")
    spelling: str | None = None
    blame: Blame
    reason: str

    def __str__(self) -> str:
        shown = f" {self.spelling!r}" if self.spelling is not None else ""
        return f"{self.origin}: [{self.blame}] {self.kind}{shown}: {self.reason}"


class ReachabilityReport(BaseModel):
    """Flags of one run and how many seeds were checked, per domain."""

    flags: list[ReachabilityFlag] = Field(default_factory=list)
    checked: dict[str, int] = Field(default_factory=dict)
    seconds: float = 0.0

    def unreachable(self) -> list[ReachabilityFlag]:
        """Flags of spellings judged wrong (a seed may have several)."""
        return [f for f in self.flags if f.kind != "no_precision"]

    def seeds_flagged(self, blame: Literal["seed", "comparison"] | None = None) -> dict[str, int]:
        """Per domain: how many distinct seeds have an unreachable spelling (of one blame, or any)."""
        seen = {(f.domain, f.id) for f in self.unreachable() if blame is None or f.blame == blame}
        counts = Counter(domain for domain, _ in seen)
        return {d: counts.get(d, 0) for d in self.checked}

    def precision_warnings(self) -> dict[str, int]:
        """Per domain: decimal or tolerance-compared answers whose question states no precision."""
        counts = Counter(f.domain for f in self.flags if f.kind == "no_precision")
        return {d: counts.get(d, 0) for d in self.checked}


def _origin(point: DataPoint) -> str:
    return str(point.metadata.get("origin", point.domain))


def _flag(
    point: DataPoint, kind: str, blame: Blame, reason: str, spelling: str | None = None
) -> ReachabilityFlag:
    where = {"id": point.id, "domain": point.domain, "origin": _origin(point)}
    return ReachabilityFlag(**where, kind=kind, spelling=spelling, blame=blame, reason=reason)


async def check_reachability(
    dataset: SeedDataset,
    *,
    router: VerifierRouter | None = None,
    concurrency: int = 8,
    only: Blame | None = None,
    on_seed: Callable[[DataPoint, list[ReachabilityFlag]], None] | None = None,
) -> ReachabilityReport:
    """Judge every seed's other correct spellings through the env's router; flag the ones judged wrong.

    `router` defaults to one that reads domain configs from the dataset (so Loong-format folders and
    library domains with a plug-in are judged as the env would judge them). `only="seed"` judges only the
    spellings whose failure would be the seed's fault (precision, tolerance), `only="comparison"` the rest.
    """
    start = time.perf_counter()
    known = set(dataset.domains)
    if router is None:
        router = VerifierRouter(domain_config=lambda d: dataset.domain_config(d) if d in known else None)
    limit = asyncio.Semaphore(concurrency)
    report = ReachabilityReport(checked=dict(Counter(p.domain for p in dataset)))

    async def judge(point: DataPoint, spelling: Spelling) -> ReachabilityFlag | None:
        key = router.key(point)
        async with limit:
            result, verifier = await router.judge(f"The answer is \\boxed{{{spelling.text}}}.", key)
        if result.correct:
            return None
        blame = spelling.blame
        why = result.reason
        if spelling.kind == "as_written" and "not a quantity" in why:
            blame = "seed"  # the reference itself cannot be read as the domain's answers are
        reason = f"{spelling.note}: judged {result.status.value} by {verifier} ({why})"
        return _flag(point, spelling.kind, blame, reason, spelling.text)

    async def check(point: DataPoint) -> None:
        key = router.key(point)
        found: list[ReachabilityFlag] = []
        why = precision_warning(point.final_answer, point.question, key.tolerance)
        if why is not None and only != "comparison":
            found.append(_flag(point, "no_precision", "seed", why))
        options = spellings(point.final_answer, point.question, key.tolerance)
        options = [s for s in options if only is None or s.blame == only or s.kind == "as_written"]
        found += [f for f in await asyncio.gather(*(judge(point, s) for s in options)) if f is not None]
        report.flags.extend(found)
        if on_seed:
            on_seed(point, found)

    await asyncio.gather(*(check(p) for p in dataset))
    order = {(_origin(p), p.id): i for i, p in enumerate(dataset)}
    report.flags.sort(key=lambda f: order.get((f.origin, f.id), 0))
    report.seconds = time.perf_counter() - start
    return report
