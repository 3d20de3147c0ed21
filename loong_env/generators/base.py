"""The generator contract, and the concurrent propose -> parse -> keep pipeline every LLM method shares.

A subclass only says which messages to send (`propose`); the base class runs attempts concurrently so
the LLM server stays busy, turns each into one Verdict, stops at a target / attempt cap / deadline, and
serves `sample()` from a buffer that a background task refills.
"""

from __future__ import annotations

import asyncio
import inspect
import random
import time
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Literal, Self

from pydantic import BaseModel, Field

from loong_env.errors import LoongError
from loong_env.generators.keep import (
    Candidate,
    ChatClient,
    KeepRule,
    RejectReason,
    Verdict,
    reject,
    usage_tokens,
)
from loong_env.generators.parsing import ParseFailure, candidate_response_format, parse_candidate
from loong_env.types import DataPoint

VerdictCallback = Callable[[Verdict], Awaitable[None] | None]
StopReason = Literal["target", "max_attempts", "time_budget", "interrupted", "exhausted"]


class GenerationError(LoongError):
    """A generator could not run at all (no seeds, a dead background task); the message says which."""


class GenerationStats(BaseModel):
    """Live counters of a run: what the progress display shows and the manifest records."""

    attempts: int = 0
    accepted: int = 0
    rejected: Counter[str] = Field(default_factory=Counter)
    abandoned: int = Field(0, description="Attempts cancelled in flight at a deadline, target or Ctrl-C.")
    tokens: int = 0
    started: float = Field(default_factory=time.monotonic)
    stopped_because: StopReason | None = None

    @property
    def finished(self) -> int:
        return self.accepted + sum(self.rejected.values())

    @property
    def elapsed_s(self) -> float:
        return time.monotonic() - self.started

    @property
    def acceptance(self) -> float:
        return self.accepted / self.finished if self.finished else 0.0

    def record(self, verdict: Verdict) -> None:
        """Count one finished attempt."""
        self.tokens += verdict.tokens
        if verdict.accepted:
            self.accepted += 1
        else:
            self.rejected[str(verdict.reason)] += 1


class Proposal(BaseModel):
    """What one attempt sends to the writer model, and which seeds / parent it used."""

    messages: list[dict[str, str]]
    seed_ids: list[str] = Field(default_factory=list)
    parent_id: str | None = None
    extra: dict[str, Any] = Field(default_factory=dict)


class BaseGenerator(ABC):
    """Anything that produces DataPoints: `await generate(n)` for a batch, `await sample()` for one at a time.

    `sample()` is served from a buffer of `buffer_size` items that a background task refills by calling
    `generate`; an error in that task is raised from the next `sample()` instead of hanging. Call
    `close()` (or use `async with`) to stop the background task.
    """

    name: str = "base"

    def __init__(self, *, seed: int | None = 0, buffer_size: int = 4) -> None:
        self.seed = seed
        self.buffer_size = max(1, buffer_size)
        self._buffer: asyncio.Queue[DataPoint] | None = None
        self._refill: asyncio.Task[None] | None = None

    @abstractmethod
    async def generate(self, n: int) -> list[DataPoint]:
        """Produce n datapoints (fewer only if the generator's own attempt limits run out)."""

    async def sample(self) -> DataPoint:
        """One datapoint from the buffer; starts the background refill on first use."""
        if self._buffer is None:
            self._buffer = asyncio.Queue()
        if self._refill is None or self._refill.done():
            if (
                self._refill is not None
                and not self._refill.cancelled()
                and self._refill.exception() is not None
            ):
                raise GenerationError(f"{self.name}: background refill failed") from self._refill.exception()
            self._refill = asyncio.create_task(self._refill_loop(), name=f"{self.name}-refill")
        getter = asyncio.ensure_future(self._buffer.get())
        done, _ = await asyncio.wait({getter, self._refill}, return_when=asyncio.FIRST_COMPLETED)
        if getter in done:
            return getter.result()
        getter.cancel()
        exc = None if self._refill.cancelled() else self._refill.exception()
        raise GenerationError(f"{self.name}: background refill stopped without producing an item") from exc

    async def _refill_loop(self) -> None:
        assert self._buffer is not None
        while True:
            missing = self.buffer_size - self._buffer.qsize()
            if missing <= 0:
                await asyncio.sleep(0.01)
                continue
            items = await self.generate(missing)
            if not items:
                raise GenerationError(f"{self.name}: generate({missing}) returned nothing")
            for item in items:
                self._buffer.put_nowait(item)

    async def close(self) -> None:
        """Stop the background refill task."""
        if self._refill is not None:
            self._refill.cancel()
            try:
                await self._refill
            except (asyncio.CancelledError, Exception):  # noqa: BLE001, S110 - closing; sample() reports errors
                pass
            self._refill = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class CandidateGenerator(BaseGenerator):
    """An LLM writes question + code; the keep rule decides. Subclasses implement `propose` only.

    `concurrency` attempts are in flight at once (match the server's parallel slots). Attempt k uses
    its own RNG seeded from (seed, method, k), so a run is reproducible and a resumed run continues
    with fresh attempt numbers instead of replaying old prompts.
    """

    def __init__(
        self,
        seeds: Sequence[DataPoint],
        client: ChatClient,
        keep: KeepRule,
        *,
        domain: str | None = None,
        requirements: Sequence[str] | None = None,
        model: str | None = None,
        seed: int | None = 0,
        concurrency: int = 4,
        max_tokens: int = 512,
        temperature: float = 0.8,
        json_mode: bool = True,
        buffer_size: int = 4,
    ) -> None:
        super().__init__(seed=seed, buffer_size=buffer_size)
        if not seeds:
            raise GenerationError(f"{self.name}: needs at least one seed, got none")
        self.seeds = list(seeds)
        self.client = client
        self.keep = keep
        self.domain = domain or self.seeds[0].domain
        self.requirements = list(
            requirements if requirements is not None else self.seeds[0].required_dependencies
        )
        self.model = model or getattr(client, "model", None)
        self.concurrency = max(1, concurrency)
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.json_mode = json_mode
        self.kept: list[DataPoint] = []
        self.next_attempt = 0
        for dp in self.seeds:
            if not keep.pool.contains(dp.question):
                keep.add_to_pool(dp, "seed")

    @abstractmethod
    def propose(self, rng: random.Random, attempt: int) -> Proposal:
        """The messages for one attempt (pure: all randomness from `rng`)."""

    def remember(self, items: Sequence[DataPoint]) -> None:
        """Adopt items kept earlier (e.g. by a resumed run): they join the novelty pool and the demo pool."""
        for dp in items:
            if not self.keep.pool.contains(dp.question):
                self.keep.add_to_pool(dp, "kept")
            self.kept.append(dp)

    def rng_for(self, attempt: int) -> random.Random:
        return random.Random(f"{self.seed}:{self.name}:{attempt}")

    async def attempt(self, number: int) -> Verdict:
        """Run one attempt end to end; always returns a Verdict (a bug becomes `internal_error`)."""
        from loong_env.llm import LLMError

        verdict = Verdict(attempt=number, method=self.name, accepted=False)
        started = time.perf_counter()
        try:
            proposal = self.propose(self.rng_for(number), number)
            verdict.seed_ids = proposal.seed_ids
            try:
                completion = await self.client.chat(
                    proposal.messages,
                    temperature=self.temperature,
                    max_tokens=self.max_tokens,
                    response_format=candidate_response_format() if self.json_mode else None,
                    seed=(self.seed or 0) * 100_003 + number,
                )
            except LLMError as exc:
                verdict = reject(verdict, RejectReason.llm_error, str(exc).splitlines()[0][:300])
                return verdict
            verdict.timings["generate_s"] = round(time.perf_counter() - started, 4)
            verdict.tokens += usage_tokens(completion)
            text = completion.text or ""
            verdict.raw_reply = text
            try:
                parsed = parse_candidate(text)
            except ParseFailure as exc:
                if (
                    completion.finish_reason == "length"
                ):  # cut off before a complete candidate: unknown, not bad
                    detail = f"reply hit max_tokens={self.max_tokens}"
                    verdict = reject(verdict, RejectReason.truncated, detail)
                else:
                    verdict = reject(verdict, RejectReason.unparsable, str(exc))
                return verdict
            candidate = Candidate(
                question=parsed.question,
                code=parsed.code,
                domain=self.domain,
                method=self.name,
                model=getattr(completion, "model", None) or self.model,
                attempt=number,
                seed_ids=proposal.seed_ids,
                parent_id=proposal.parent_id,
                parsed_by=parsed.parsed_by,
                extra=proposal.extra,
                tokens=verdict.tokens,
                timings=verdict.timings,
                raw_reply=text,
            )
            verdict = await self.keep.judge(candidate)  # from here the keep rule's verdict is the attempt's
            if verdict.accepted and verdict.datapoint is not None:
                verdict.raw_reply = None
                self.kept.append(verdict.datapoint)
            return verdict
        except Exception as exc:  # noqa: BLE001 - one broken attempt must not end a long run
            verdict = reject(verdict, RejectReason.internal_error, f"{type(exc).__name__}: {exc}"[:300])
            return verdict
        finally:
            verdict.timings["total_s"] = round(time.perf_counter() - started, 4)

    async def run(
        self,
        *,
        target: int,
        max_attempts: int | None = None,
        time_budget_s: float | None = None,
        on_verdict: VerdictCallback | None = None,
        stats: GenerationStats | None = None,
    ) -> GenerationStats:
        """Attempt concurrently until `target` kept, `max_attempts` tried or `time_budget_s` spent.

        In-flight attempts are cancelled when the run stops (counted as `abandoned`, never written), so
        every written candidate is a finished one. `on_verdict` runs for each finished attempt, in order of
        completion; it may be sync or async.
        """
        stats = stats or GenerationStats()
        deadline = None if time_budget_s is None else time.monotonic() + time_budget_s
        launched = 0
        done = asyncio.Event()
        in_flight: set[asyncio.Task[Verdict]] = set()

        def may_launch() -> StopReason | None:
            if stats.accepted >= target:
                return "target"
            if max_attempts is not None and launched >= max_attempts:
                return "max_attempts"
            if deadline is not None and time.monotonic() >= deadline:
                return "time_budget"
            return None

        async def worker() -> None:
            nonlocal launched
            while (why := may_launch()) is None:
                number = self.next_attempt
                self.next_attempt += 1
                launched += 1
                stats.attempts += 1
                task = asyncio.ensure_future(self.attempt(number))
                in_flight.add(task)
                try:
                    verdict = await task
                finally:
                    in_flight.discard(task)
                if (
                    stats.accepted >= target
                ):  # the target was reached while this one was in flight: stop exactly
                    stats.abandoned += 1
                    if verdict.accepted and verdict.datapoint in self.kept:
                        self.kept.remove(verdict.datapoint)
                    break
                stats.record(verdict)
                if on_verdict is not None:
                    result = on_verdict(verdict)
                    if inspect.isawaitable(result):
                        await result
            if stats.stopped_because is None:
                stats.stopped_because = why or may_launch()
            done.set()

        workers = [
            asyncio.create_task(worker(), name=f"{self.name}-worker{i}") for i in range(self.concurrency)
        ]
        try:
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                await asyncio.wait_for(done.wait(), timeout)
            except TimeoutError:
                stats.stopped_because = "time_budget"
            # The first stop condition ends the run: cancel what is still in flight.
            if stats.stopped_because == "max_attempts" and stats.accepted < target:
                # attempts already launched may still finish and count; wait for them unless the deadline hits
                remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
                _, pending = await asyncio.wait(workers, timeout=remaining)
                if pending:
                    stats.stopped_because = "time_budget"
        except asyncio.CancelledError:
            stats.stopped_because = "interrupted"
            raise
        finally:
            stats.abandoned += len(in_flight)
            for w in workers:
                w.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
        return stats

    async def generate(self, n: int, *, max_attempts: int | None = None) -> list[DataPoint]:
        """Keep attempting until n new datapoints are kept (or `max_attempts` run out)."""
        before = len(self.kept)
        await self.run(target=n, max_attempts=max_attempts)
        return self.kept[before:]
