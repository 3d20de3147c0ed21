"""A small pool of killable worker processes for the sympy-heavy checks.

Threads cannot be interrupted and SIGALRM only works in the main thread, so a hard time bound that holds in
threads, asyncio and process pools alike means a separate process we can kill. Workers start lazily, a killed
worker is replaced at once (it warms up while other checks run), and requests travel as one JSON line each.
"""

from __future__ import annotations

import atexit
import json
import os
import selectors
import subprocess
import sys
import threading
import time
from typing import Any

STARTUP_TIMEOUT_S = 120.0  # importing sympy on a busy 2-core machine can take several seconds


class WorkerTimeout(Exception):
    """The check did not finish within its time bound; the worker was killed."""


class WorkerCrash(Exception):
    """The worker died or answered garbage; it was replaced."""


class _Worker:
    def __init__(self) -> None:
        env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "loong_env.equivalence._worker"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, bufsize=0,
        )
        self.ready = False
        self._buf = b""

    def _readline(self, deadline: float) -> bytes:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while b"\n" not in self._buf:
                remaining = deadline - time.monotonic()
                if not sel.select(max(0.0, remaining)):
                    raise WorkerTimeout
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    raise WorkerCrash("worker exited")
                self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        return line

    def poll_ready(self) -> bool:
        """True once the start-up line has arrived (never blocks)."""
        if not self.ready:
            try:
                self._readline(time.monotonic())
            except (WorkerTimeout, WorkerCrash):
                return False
            self.ready = True
        return True

    def wait_ready(self) -> None:
        if not self.ready:
            try:
                json.loads(self._readline(time.monotonic() + STARTUP_TIMEOUT_S))
            except WorkerTimeout:
                raise WorkerCrash(f"worker did not start within {STARTUP_TIMEOUT_S:.0f} s") from None
            self.ready = True

    def call(self, request: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        self.wait_ready()
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps(request).encode() + b"\n")
        except (BrokenPipeError, OSError):
            raise WorkerCrash("worker pipe closed") from None
        return json.loads(self._readline(time.monotonic() + timeout_s))

    def kill(self) -> None:
        try:
            self.proc.kill()
            self.proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            pass


class WorkerPool:
    """Up to `size` workers; `call` borrows one (a warm one first), and kills and replaces it on a timeout."""

    def __init__(self, size: int | None = None) -> None:
        self.size = size or max(1, min(2, os.cpu_count() or 1))
        self._cond = threading.Condition()
        self._reset()

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._idle: list[_Worker] = []
        self._all: list[_Worker] = []

    def _checkout(self) -> _Worker:
        with self._cond:
            if self._pid != os.getpid():  # we were forked: the parent's workers are not ours
                self._reset()
            while True:
                if self._idle:
                    for w in self._idle:
                        if w.ready or w.poll_ready():
                            self._idle.remove(w)
                            return w
                    if len(self._all) >= self.size:
                        return self._idle.pop(0)  # all warming up: take the oldest and wait for it
                if len(self._all) < self.size:
                    w = _Worker()
                    self._all.append(w)
                    return w
                self._cond.wait()

    def _checkin(self, w: _Worker) -> None:
        with self._cond:
            self._idle.append(w)
            self._cond.notify()

    def _replace(self, dead: _Worker) -> None:
        dead.kill()
        with self._cond:
            if dead in self._all:
                self._all.remove(dead)
            if self._pid == os.getpid():
                fresh = _Worker()  # starts importing now, so a later check does not wait for it
                self._all.append(fresh)
                self._idle.append(fresh)
            self._cond.notify()

    def warm_up(self) -> None:
        """Start every worker and wait until each has imported sympy (call before latency-sensitive work)."""
        with self._cond:
            while len(self._all) < self.size:
                w = _Worker()
                self._all.append(w)
                self._idle.append(w)
            workers = list(self._all)
        for w in workers:
            try:
                w.wait_ready()
            except WorkerCrash:
                self._replace(w)

    def call(self, request: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        """Run one request on a worker; WorkerTimeout after `timeout_s` of compute, WorkerCrash if it died."""
        w = self._checkout()
        try:
            result = w.call(request, timeout_s)
        except BaseException:
            self._replace(w)
            raise
        self._checkin(w)
        return result

    def close(self) -> None:
        """Kill every worker (also run at interpreter exit)."""
        with self._cond:
            for w in self._all:
                w.kill()
            self._reset()


_POOL: WorkerPool | None = None
_POOL_LOCK = threading.Lock()


def get_pool() -> WorkerPool:
    """The process-wide pool, created on first use."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = WorkerPool()
            atexit.register(_POOL.close)
        return _POOL
