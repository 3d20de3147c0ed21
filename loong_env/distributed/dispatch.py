"""Attempts over a fleet of worker actors: launch by number, retry what a dying worker held, stop exactly.

The driver hands out attempt numbers; each worker slot runs one attempt at a time on its actor. When an
actor dies, every attempt it held comes back as an actor error: the attempt's novelty claim is released,
its number goes to the front of the queue for any live slot, and the actor is replaced. A number is
counted once: when its verdict arrives (written), or as abandoned when the run stops first.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from loong_env.distributed.cluster import ClusterError
from loong_env.generators.base import GenerationError, GenerationStats, StopReason
from loong_env.generators.keep import RejectReason, Verdict


class Fleet:
    """The worker actors of a run: made by `make(index)`, replaced when one dies, stopped at the end."""

    def __init__(self, make: Callable[[int], Any], size: int, *, max_failures: int) -> None:
        self.make = make
        self.handles = [make(i) for i in range(size)]
        self.failures = 0
        self.max_failures = max_failures

    def replace(self, index: int, dead: Any) -> Any:
        """Start a new actor in place of `dead` (once, however many slots report it); returns the live one."""
        import ray

        if self.handles[index] is not dead:
            return self.handles[index]
        ray.kill(dead)  # "unavailable" may only mean unreachable: make sure it runs nothing more
        self.failures += 1
        if self.failures > self.max_failures:
            raise ClusterError(
                f"{self.failures} worker actors died during this run (limit {self.max_failures}): the "
                "cluster keeps losing workers (see `ray status` and the raylet logs); a generation's output "
                "is consistent, and the same command resumes it"
            )
        self.handles[index] = self.make(index)
        return self.handles[index]

    async def close(self, timeout_s: float = 30.0) -> None:
        """Close each actor's sandbox and HTTP pool, then let it go."""
        import ray

        closing = [h.close.remote() for h in self.handles]
        await asyncio.wait([asyncio.ensure_future(_quiet(ref)) for ref in closing], timeout=timeout_s)
        for handle in self.handles:
            ray.kill(handle)


async def _quiet(ref: Any) -> None:
    try:
        await ref
    except Exception:  # noqa: BLE001, S110 - a dead actor has nothing left to close
        pass


class Dispatch:
    """One run's bookkeeping: which numbers are queued, in flight and finished, and why it stopped."""

    def __init__(
        self,
        fleet: Fleet,
        pool: Any,
        *,
        first_attempt: int,
        slots_per_worker: int,
        target: int,
        max_attempts: int | None,
        time_budget_s: float | None,
        stats: GenerationStats,
        on_verdict: Callable[[Verdict], Awaitable[None]],
        method: str,
    ) -> None:
        self.fleet, self.pool, self.stats, self.on_verdict = fleet, pool, stats, on_verdict
        self.next_number = first_attempt
        self.slots_per_worker = slots_per_worker
        self.target, self.max_attempts, self.method = target, max_attempts, method
        self.deadline = None if time_budget_s is None else time.monotonic() + time_budget_s
        self.launched = 0
        self.retried: list[int] = []  # numbers run again after their worker died, in order
        self.abandoned: list[int] = []  # numbers launched but not written: the run stopped first
        self.queue: deque[int] = deque()  # attempts whose worker died, to run again first
        self.in_flight: set[int] = set()
        self.finished: set[int] = set()
        self.changed = asyncio.Event()
        self.done = asyncio.Event()
        self.error: ClusterError | GenerationError | None = None
        self._errors: Any = None  # ray.exceptions, bound in run()

    def _stop(self) -> StopReason | None:
        if self.stats.accepted >= self.target:
            return "target"
        if self.deadline is not None and time.monotonic() >= self.deadline:
            return "time_budget"
        return None

    def _take(self) -> int | None:
        """The next number to run: a retry first, then a fresh one while the attempt cap allows."""
        if self._stop() is not None:
            return None
        if self.queue:
            return self.queue.popleft()
        if self.max_attempts is not None and self.launched >= self.max_attempts:
            return None
        number = self.next_number
        self.next_number += 1
        self.launched += 1
        self.stats.attempts += 1
        return number

    async def run(self) -> None:
        """Run until a stop condition; `retried` and `abandoned` then name the attempts concerned."""
        import ray

        self._errors = ray.exceptions
        workers = len(self.fleet.handles)
        slots = [asyncio.create_task(self._slot(i % workers)) for i in range(workers * self.slots_per_worker)]
        try:
            timeout = None if self.deadline is None else max(0.0, self.deadline - time.monotonic())
            try:
                await asyncio.wait_for(self.done.wait(), timeout)
            except TimeoutError:
                self.stats.stopped_because = "time_budget"
            if self.error is not None:
                raise self.error
            if self.stats.stopped_because == "max_attempts" and self.stats.accepted < self.target:
                remaining = None if self.deadline is None else max(0.0, self.deadline - time.monotonic())
                _, pending = await asyncio.wait(slots, timeout=remaining)
                if pending:
                    self.stats.stopped_because = "time_budget"
        except asyncio.CancelledError:
            self.stats.stopped_because = "interrupted"
            raise
        finally:
            self.abandoned.extend(sorted(self.in_flight | set(self.queue)))
            self.stats.abandoned += len(self.in_flight) + len(self.queue)
            for slot in slots:
                slot.cancel()
            await asyncio.gather(*slots, return_exceptions=True)

    async def _slot(self, index: int) -> None:
        why: StopReason | None = None
        try:
            while True:
                number = self._take()
                if number is None:
                    why = self._stop()
                    if why is not None or not self.in_flight:
                        break
                    self.changed.clear()  # a worker may still die and hand its attempt back: wait for that
                    await self.changed.wait()
                    continue
                verdict = await self._one(index, number)
                if verdict is None:
                    continue
                if self.stats.accepted >= self.target:  # reached while this one was in flight: stop exactly
                    self.stats.abandoned += 1
                    self.abandoned.append(number)
                    why = "target"
                    break
                self.stats.record(verdict)
                await self.on_verdict(verdict)
        except (ClusterError, GenerationError) as exc:  # the fleet gave up, or the pool is gone: run ends
            self.error = exc
            why = "interrupted"
        finally:
            if self.stats.stopped_because is None:
                self.stats.stopped_because = why or self._stop() or "max_attempts"
            self.done.set()

    async def _one(self, index: int, number: int) -> Verdict | None:
        """Run attempt `number` on slot `index`'s actor; None if the actor died (the number waits again)."""
        handle = self.fleet.handles[index]
        self.in_flight.add(number)
        try:
            verdict: Verdict = await handle.attempt.remote(number)
        except self._errors.RayActorError:
            await self._ask_pool(self.pool.release.remote(number))  # before anyone runs the number again
            self.in_flight.discard(number)
            self.queue.appendleft(number)  # a live worker's slot takes it next ...
            self.retried.append(number)
            self.changed.set()
            await self._revive(index, handle)  # ... while this slot waits for its new actor
            return None
        # a bug outside the attempt's own guard: one rejection, not the end of the run
        except self._errors.RayTaskError as exc:
            verdict = Verdict(
                attempt=number,
                method=self.method,
                accepted=False,
                reason=RejectReason.internal_error,
                detail=f"worker raised: {str(exc).splitlines()[-1]}"[:300],
            )
        finally:
            self.in_flight.discard(number)
            self.changed.set()
        if number in self.finished:  # never expected: a number is answered once; never count it twice
            return None
        self.finished.add(number)
        if verdict.reason is RejectReason.internal_error:  # the pool gone? then stop, not burn attempts
            await self._ask_pool(self.pool.size.remote())
        return verdict

    async def _revive(self, index: int, dead: Any) -> None:
        """Replace slot `index`'s dead actor and wait until the new one is built."""
        while True:
            handle = self.fleet.replace(index, dead)
            try:
                await handle.info.remote()
                return
            except self._errors.RayActorError:
                dead = handle

    async def _ask_pool(self, ref: Any) -> None:
        try:
            await ref
        except Exception as exc:
            raise GenerationError(
                f"the run's novelty pool is gone ({type(exc).__name__}); the output is consistent: run the "
                "same command again to resume"
            ) from exc
