"""run_in_order: work on items concurrently, pass each result on when it finishes, return input order."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


async def run_in_order(
    items: Sequence[T],
    work: Callable[[T], Awaitable[R]],
    *,
    workers: int,
    on_done: Callable[[T, R], Awaitable[None] | None] | None = None,
) -> list[R]:
    """`work(item)` for every item, at most `workers` at once; `on_done` sees each result when it finishes.

    `work` should turn its own failures into results; an exception it lets out stops the run (the other
    workers are cancelled) and is raised here. Cancelling the caller cancels everything in flight, so only
    finished items ever reach `on_done`.
    """
    results: list[R | None] = [None] * len(items)
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(len(items)):
        queue.put_nowait(i)

    async def worker() -> None:
        while True:
            try:
                i = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            result = await work(items[i])
            results[i] = result
            if on_done is not None:
                maybe = on_done(items[i], result)
                if inspect.isawaitable(maybe):
                    await maybe

    tasks = [asyncio.create_task(worker()) for _ in range(max(1, min(workers, len(items))))]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return [r for r in results if r is not None]
