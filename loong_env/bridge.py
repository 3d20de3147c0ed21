"""The one sync face of an async library: every `*_sync` method runs its coroutine through `run` here.

Async is the core of loong_env (`reset`, `step`, `verify`, `run`, `chat`, `start`, `close` are coroutines).
Scripts, notebooks and trainers that cannot `await` call the blocking twin, `<name>_sync`, which hands the
coroutine to one private event loop in a daemon thread. That works with no loop at all and inside a running
one (Jupyter, a trainer's callback), and keeps loop-bound resources (HTTP connection pools, semaphores)
alive across calls instead of rebuilding them per `asyncio.run`.

The loop thread is per process: a forked child (gymnasium's async vector env, a multiprocessing pool, a
DataLoader worker) starts its own on first use and never waits on the parent's, which does not exist there.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import threading
from collections.abc import Coroutine
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, TypeVar

from loong_env.errors import SyncBridgeError

T = TypeVar("T")


class _LoopThread:
    """One private event loop in a daemon thread, owned by the process that started it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def loop(self) -> asyncio.AbstractEventLoop:
        """The running loop, started on first use."""
        with self._lock:
            if self._loop is None or self._loop.is_closed():
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name="loong-bridge", daemon=True)
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    def in_loop_thread(self) -> bool:
        return self._thread is not None and threading.current_thread() is self._thread

    def close(self) -> None:
        """Stop the loop (at exit); a later call starts a new one."""
        with self._lock:
            loop, self._loop, self._thread = self._loop, None, None
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(loop.stop)

    def forget(self) -> None:
        """In a forked child: the parent's loop thread does not exist here; start afresh on next use."""
        self._lock = threading.Lock()
        self._loop, self._thread = None, None


_RUNNER = _LoopThread()
atexit.register(_RUNNER.close)
os.register_at_fork(after_in_child=_RUNNER.forget)


def run(coro: Coroutine[Any, Any, T], *, timeout: float | None = None) -> T:
    """Run a coroutine to completion from sync code; works with or without a running event loop.

    `timeout` bounds the wait in seconds: on expiry the coroutine is cancelled and `TimeoutError` raised.
    """
    if _RUNNER.in_loop_thread():
        coro.close()
        raise SyncBridgeError(
            "a *_sync method was called from async code running on loong_env's bridge loop, where it would "
            "wait on itself forever; await the async method instead"
        )
    future = asyncio.run_coroutine_threadsafe(coro, _RUNNER.loop())
    try:
        return future.result(timeout)
    except FutureTimeout:
        future.cancel()
        raise TimeoutError(f"gave up after {timeout} s (the coroutine was cancelled)") from None
