"""The reward service's core, free of any web framework: request models -> answer keys -> judge -> responses.

`RewardScorer.score` / `score_openrlhf` are what the HTTP endpoints call; a Ray Serve deployment (or any
other host) wraps the same object. It bounds its own load: at most `max_batch` items a request, at most
`max_pending_items` items admitted at once (more is `OverloadedError`, HTTP 429), at most
`max_concurrency` verifications running, and a deadline per request (`DeadlineError`, HTTP 503).

It installs nothing a caller asks for: an item's requirement set (what a code answer may import, and so
what gets installed for it) must be its domain's, which the operator's seed library sets, or one of the
operator's `allowed_requirements`; any other set refuses the request (`RequirementsNotAllowedError`, 403).

Given `metrics` (a `MetricsWriter` or `loong_env.runs.sinks.open_sinks(...)`), each request is one `step`
record of the run's diagnostics: verdict counts, zero-variance groups (items of one prompt, or of one
reference), verifiers and time.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from loong_env import bridge
from loong_env.errors import ConfigError
from loong_env.integrations.errors import (
    BatchTooLargeError,
    DeadlineError,
    OverloadedError,
    RequirementsNotAllowedError,
)
from loong_env.integrations.keys import answer_key, key_from_label
from loong_env.integrations.reward_models import (
    ItemScore,
    OpenRLHFRequest,
    OpenRLHFResponse,
    ScoreItem,
    ScoreRequest,
    ScoreResponse,
)
from loong_env.rewards import is_well_formatted
from loong_env.routing import VerifierRouter
from loong_env.runs.diagnostics import ItemOutcome, diagnose
from loong_env.runs.metrics import StepRecord
from loong_env.sandbox import normalize_requirements
from loong_env.types import AnswerKey, VerificationStatus
from loong_env.verifiers.base import Verifier

if TYPE_CHECKING:
    from loong_env.runs.sinks import Sink


class ScoringConfig(BaseModel):
    """Limits and reward shape of the scorer; the defaults suit one machine serving one trainer."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_batch: int = Field(default=1024, ge=1, description="Items in one request; more is HTTP 413.")
    max_pending_items: int = Field(
        default=4096, ge=1, description="Items admitted at once; more is HTTP 429."
    )
    max_concurrency: int = Field(default=64, ge=1, description="Verifications running at once.")
    request_timeout_s: float = Field(
        default=120.0, gt=0, description="Deadline of one request; then HTTP 503."
    )
    max_response_chars: int = Field(default=100_000, ge=1, description="Longer responses score 0 (invalid).")
    format_weight: float = Field(default=0.0, ge=0, description="Bonus per well-formatted answer.")
    route: bool = Field(
        default=True, description="Code answers -> PythonVerifier, plug-in domains -> plug-in."
    )
    allowed_requirements: tuple[tuple[str, ...], ...] = Field(
        default=(),
        description="Requirement sets an item may name besides its domain's (the operator's choice: each "
        "set is installed on first use).",
    )

    @field_validator("allowed_requirements")
    @classmethod
    def _normalized(cls, sets: tuple[tuple[str, ...], ...]) -> tuple[tuple[str, ...], ...]:
        return tuple(tuple(normalize_requirements(s)) for s in sets)


class _Job:
    """One item on its way to a verdict: the response and key, or why it cannot be judged."""

    __slots__ = ("error", "group", "id", "key", "response")

    def __init__(
        self, id: Any, response: str, key: AnswerKey | None, error: str | None, group: str = ""
    ) -> None:
        self.id, self.response, self.key, self.error = id, response, key, error
        self.group = group or (f"{key.domain}:{key.reference}" if key is not None else f"item:{id}")


class RewardScorer:
    """Scores batches of responses with loong_env's verifiers, within fixed bounds; safe to call at once."""

    def __init__(
        self,
        config: ScoringConfig | None = None,
        *,
        verifier: Verifier | None = None,
        router: VerifierRouter | None = None,
        metrics: Sink | None = None,
    ) -> None:
        self.config = config or ScoringConfig()
        self.metrics = metrics
        self.batches = 0
        self.router = router or VerifierRouter(verifier, route=self.config.route)
        self._lock = threading.Lock()
        self._pending = 0
        self._semaphores: dict[asyncio.AbstractEventLoop, asyncio.Semaphore] = {}

    @property
    def pending_items(self) -> int:
        """Items admitted and not yet answered (queued or being verified)."""
        return self._pending

    async def start(self) -> None:
        """Warm the default verifier, so the first request is not an outlier."""
        await self.router.start()

    async def score(self, request: ScoreRequest) -> ScoreResponse:
        """Verdicts for a batch of our API, in request order."""
        t0 = time.perf_counter()
        jobs = [self._job_from_item(item) for item in request.items]
        weight = self.config.format_weight if request.format_weight is None else request.format_weight
        results = await self._judge_all(jobs, weight)
        self._record(jobs, results, time.perf_counter() - t0)
        return ScoreResponse(
            results=results,
            n=len(results),
            correct=sum(r.status == "correct" for r in results),
            invalid=sum(r.status == "invalid" for r in results),
            errors=sum(r.status == "error" for r in results),
            duration_s=time.perf_counter() - t0,
        )

    async def score_openrlhf(self, request: OpenRLHFRequest) -> OpenRLHFResponse:
        """OpenRLHF's remote reward answer for a batch: rewards, scores, numeric extra_logs, details."""
        t0 = time.perf_counter()
        n = len(request.query)
        prompts = _padded(request.prompts, n)
        labels = _padded(request.labels, n)
        jobs = [self._job_from_query(i, request.query[i], prompts[i], labels[i]) for i in range(n)]
        results = await self._judge_all(jobs, self.config.format_weight)
        self._record(jobs, results, time.perf_counter() - t0)
        return OpenRLHFResponse(
            rewards=[r.reward for r in results],
            scores=[r.correctness for r in results],
            extra_logs={
                "correct": [r.correctness for r in results],
                "well_formatted": [float(r.well_formatted) for r in results],
                "verifier_error": [float(r.status in ("error", "invalid")) for r in results],
            },
            details=results,
        )

    def score_sync(self, request: ScoreRequest) -> ScoreResponse:
        """Blocking twin of `score`."""
        return bridge.run(self.score(request))

    def score_openrlhf_sync(self, request: OpenRLHFRequest) -> OpenRLHFResponse:
        """Blocking twin of `score_openrlhf`."""
        return bridge.run(self.score_openrlhf(request))

    # -- items -> jobs ---------------------------------------------------------------------------------

    def _job_from_item(self, item: ScoreItem) -> _Job:
        if item.error is not None:
            return _Job(item.id, "", None, item.error)
        error = self._check_length(item.response)
        if error:
            return _Job(item.id, "", None, error)
        try:
            key = answer_key(
                item.reference,
                domain=item.domain,
                tolerance=item.tolerance,
                requirements=item.requirements,
                verifier=item.verifier,
                router=self.router,
            )
        except ConfigError as exc:
            return _Job(item.id, "", None, f"invalid item: {exc}")
        self._check_requirements(key, item.requirements, f"item {item.id!r}")
        return _Job(item.id, item.response, key, None)

    def _job_from_query(self, index: int, query: Any, prompt: Any, label: Any) -> _Job:
        if not isinstance(query, str):
            return _Job(
                index, "", None, f"invalid item: query[{index}] must be a string, got {type(query).__name__}"
            )
        response = response_from_query(query, prompt if isinstance(prompt, str) else None)
        error = self._check_length(response)
        if error:
            return _Job(index, "", None, error)
        try:
            key = key_from_label(label, router=self.router)
        except ConfigError as exc:
            return _Job(index, "", None, f"invalid item: label[{index}]: {exc}")
        self._check_requirements(key, key.requirements, f"labels[{index}]")
        return _Job(index, response, key, None, group=prompt if isinstance(prompt, str) else "")

    def _check_requirements(self, key: AnswerKey, asked: Any, where: str) -> None:
        """Refuse a requirement set that is neither the item's domain's nor on the operator's list."""
        if not asked:
            return  # the key holds its domain's requirements (or none)
        config = self.router.config(key.domain)
        prepared = tuple(normalize_requirements(config.requirements)) if config is not None else ()
        try:
            wanted = tuple(normalize_requirements(asked)) if isinstance(asked, list | tuple) else None
        except ConfigError:
            wanted = None
        if wanted is not None and (wanted == prepared or wanted in self.config.allowed_requirements):
            return
        shown = [_short(r) for r in asked][:8] if isinstance(asked, list | tuple) else _short(asked)
        allowed = [list(s) for s in self.config.allowed_requirements][:5]
        raise RequirementsNotAllowedError(
            f"{where} names the requirement set {shown}, which this server does not install: an item may "
            f"name its domain (domain {key.domain!r} has {list(prepared)}) or a set the operator allowed "
            f"with --allow-requirements (allowed: {allowed or 'none'}); leave `requirements` out to use the "
            "domain's"
        )

    def _check_length(self, response: str) -> str | None:
        limit = self.config.max_response_chars
        if len(response) > limit:
            return f"invalid item: the response has {len(response)} characters, more than the limit {limit}"
        return None

    def _record(self, jobs: Sequence[_Job], results: Sequence[ItemScore], seconds: float) -> None:
        """One batch as one `step` record of the run's diagnostics (when the scorer has a sink)."""
        if self.metrics is None:
            return
        with self._lock:
            self.batches += 1
            step = self.batches
        items = [
            ItemOutcome(
                group=job.group, reward=result.reward, status=result.status, reason=result.reason,
                verifier=result.verifier,
            )
            for job, result in zip(jobs, results, strict=True)
        ]  # fmt: skip
        self.metrics.write(
            StepRecord.from_diagnostics(step, diagnose(items, seconds=seconds), source="reward_server")
        )

    # -- judging, within bounds ------------------------------------------------------------------------

    async def _judge_all(self, jobs: Sequence[_Job], format_weight: float) -> list[ItemScore]:
        cfg = self.config
        if len(jobs) > cfg.max_batch:
            raise BatchTooLargeError(f"a request holds at most {cfg.max_batch} items, got {len(jobs)}")
        self._admit(len(jobs))
        try:
            coros = (self._judge_one(job, format_weight) for job in jobs)
            return await asyncio.wait_for(asyncio.gather(*coros), cfg.request_timeout_s)
        except TimeoutError:
            raise DeadlineError(
                f"{len(jobs)} items were not scored within {cfg.request_timeout_s} s; "
                "retry, or send smaller batches"
            ) from None
        finally:
            with self._lock:
                self._pending -= len(jobs)

    def _admit(self, n: int) -> None:
        with self._lock:
            limit = self.config.max_pending_items
            if self._pending + n > limit:
                raise OverloadedError(
                    f"busy: {self._pending} items are being scored and {n} more would pass the limit of "
                    f"{limit}; retry in a moment"
                )
            self._pending += n

    async def _judge_one(self, job: _Job, format_weight: float) -> ItemScore:
        if job.key is None:
            return ItemScore(id=job.id, reward=0.0, correctness=0.0, status="invalid", reason=job.error or "")
        async with self._semaphore():
            result, name = await self.router.judge(job.response, job.key)
        well = is_well_formatted(job.response)
        correctness = 1.0 if result.status is VerificationStatus.correct else 0.0
        return ItemScore(
            id=job.id,
            reward=correctness + format_weight * well,
            correctness=correctness,
            well_formatted=well,
            status=result.status.value,
            verifier=name,
            verifier_version=self.router.version(name),
            extracted=result.extracted,
            reference=result.reference,
            reason=result.reason,
            duration_s=result.duration_s,
        )

    def _semaphore(self) -> asyncio.Semaphore:
        """The concurrency bound of the running loop (one per loop: the server's, or the bridge's)."""
        loop = asyncio.get_running_loop()
        sem = self._semaphores.get(loop)
        if sem is None:
            sem = self._semaphores[loop] = asyncio.Semaphore(self.config.max_concurrency)
        return sem


def response_from_query(query: str, prompt: str | None) -> str:
    """The response part of an OpenRLHF query (prompt + response): the text after the prompt, else all."""
    if prompt:
        at = query.find(prompt)
        if at >= 0:
            return query[at + len(prompt) :]
    return query


def _short(value: Any, limit: int = 120) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} characters)"


def _padded(values: list[Any] | None, n: int) -> list[Any]:
    values = list(values or [])
    return values[:n] + [None] * (n - len(values))
