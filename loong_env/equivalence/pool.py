"""A small pool of killable worker processes for the sympy-heavy checks.

Threads cannot be interrupted and SIGALRM only works in the main thread, so a hard time bound that holds in
threads, asyncio and process pools alike means a separate process we can kill. Workers start lazily and are
forked from a "zygote" process that imported and warmed up sympy once, so replacing a killed worker costs a
fork, not a 2.5 s import (where fork is unavailable each worker imports sympy itself). Requests travel as one
JSON line each.
"""

from __future__ import annotations

import atexit
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Any

from pydantic import BaseModel

from loong_env.errors import ConfigError, LoongError

STARTUP_TIMEOUT_S = 120.0  # importing sympy on a busy 2-core machine can take several seconds
FORK_TIMEOUT_S = 10.0
CAN_FORK = hasattr(os, "fork") and hasattr(socket, "send_fds") and sys.platform != "darwin"
WORKERS_ENV = "LOONG_EQUIVALENCE_WORKERS"  # else `[equivalence] workers` in loong.toml, else each core


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity, not the machine's total), at least 1."""
    counter = getattr(os, "process_cpu_count", None)  # Python 3.13+
    if counter is not None:
        count = counter()
    elif hasattr(os, "sched_getaffinity"):
        count = len(os.sched_getaffinity(0))
    else:
        count = os.cpu_count()
    return max(1, count or 1)


def configured_size() -> int:
    """How many sympy workers a pool runs: $LOONG_EQUIVALENCE_WORKERS, else loong.toml's `[equivalence]
    workers`, else one per usable core (symbolic checks are CPU-bound, one core each)."""
    from loong_env.settings import config_file, read_table

    raw: object = os.environ.get(WORKERS_ENV) or None
    where = f"${WORKERS_ENV}"
    if raw is None and (path := config_file()) is not None:
        raw, where = read_table(path, "equivalence").get("workers"), f"[equivalence] workers in {path}"
    if raw is None:
        return usable_cores()
    try:
        size = int(str(raw))
    except ValueError:
        size = 0
    if size < 1:
        raise ConfigError(f"{where}: expected a whole number of sympy workers >= 1, found {raw!r}")
    return size


class WorkerTimeout(LoongError):
    """The check did not finish within its time bound; the worker was killed."""


class WorkerCrash(LoongError):
    """The worker died or answered garbage; it was replaced."""


class _Channel:
    """Line-based reads with a deadline from one file descriptor; what both kinds of worker share."""

    ready = False
    _buf = b""

    def _fd(self) -> int:
        raise NotImplementedError

    def _readline(self, deadline: float) -> bytes:
        fd = self._fd()
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
                self._readline(time.monotonic() + STARTUP_TIMEOUT_S)
            except WorkerTimeout:
                raise WorkerCrash(f"worker did not start within {STARTUP_TIMEOUT_S:.0f} s") from None
            self.ready = True

    def _send(self, data: bytes) -> None:
        raise NotImplementedError

    def call(self, request: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        self.wait_ready()
        try:
            self._send(json.dumps(request).encode() + b"\n")
        except OSError:
            raise WorkerCrash("worker pipe closed") from None
        return json.loads(self._readline(time.monotonic() + timeout_s))

    def kill(self) -> None:
        raise NotImplementedError

    def disown(self) -> None:
        """A forked child's view: close our copies of the pipes, never signal the parent's process."""
        raise NotImplementedError


def _kill(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL a process we started and reap it (already gone is fine)."""
    try:
        proc.kill()
        proc.wait(timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        pass


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONDONTWRITEBYTECODE="1", OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")


class _Worker(_Channel):
    """A worker started from scratch (imports sympy itself): the fallback when forking is unavailable."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "loong_env.equivalence._worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=_env(),
            bufsize=0,
        )

    def _fd(self) -> int:
        assert self.proc.stdout is not None
        return self.proc.stdout.fileno()

    def _send(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)

    def kill(self) -> None:
        _kill(self.proc)

    def disown(self) -> None:
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()
        self.proc.returncode = 0  # not our child: never wait for it or kill it from here


class _ForkedWorker(_Channel):
    """A worker forked by the zygote, already warm; killed through a pidfd so a reused pid is never hit."""

    ready = True

    def __init__(self, sock: socket.socket, pid: int) -> None:
        self.sock, self.pid = sock, pid
        try:
            self.pidfd: int | None = os.pidfd_open(pid)
        except (AttributeError, OSError):
            self.pidfd = None

    def _fd(self) -> int:
        return self.sock.fileno()

    def _send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def kill(self) -> None:
        try:
            if self.pidfd is not None:
                signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)
            else:
                os.kill(self.pid, signal.SIGKILL)
        except (OSError, AttributeError):
            pass  # already gone
        finally:
            if self.pidfd is not None:
                os.close(self.pidfd)
                self.pidfd = None
            self.sock.close()

    def disown(self) -> None:
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None
        self.sock.close()


class _Zygote(_Channel):
    """A process that imported and warmed up sympy once and forks workers on request (POSIX only)."""

    def __init__(self) -> None:
        self.ctrl, theirs = socket.socketpair()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "loong_env.equivalence._worker", "--zygote", str(theirs.fileno())],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=_env(),
            pass_fds=(theirs.fileno(),),
        )
        theirs.close()
        self._lock = threading.Lock()

    def _fd(self) -> int:
        return self.ctrl.fileno()

    def fork(self) -> _ForkedWorker:
        """A new warm worker (WorkerCrash when the zygote is gone)."""
        with self._lock:
            self.wait_ready()
            ours, theirs = socket.socketpair()
            try:
                socket.send_fds(self.ctrl, [b"w"], [theirs.fileno()])
                pid = int(self._readline(time.monotonic() + FORK_TIMEOUT_S))
            except (OSError, ValueError, WorkerTimeout) as exc:
                ours.close()
                raise WorkerCrash(f"zygote could not fork a worker: {exc!r}") from None
            finally:
                theirs.close()
        return _ForkedWorker(ours, pid)

    def kill(self) -> None:
        self.ctrl.close()
        _kill(self.proc)

    def disown(self) -> None:
        self.ctrl.close()
        self.proc.returncode = 0


class PoolStats(BaseModel):
    """A snapshot of the pool: its size, its live workers' pids, and the zygote they fork from."""

    size: int
    worker_pids: list[int]
    ready: int  # workers that finished importing sympy and can take a check now
    zygote_pid: int | None


class WorkerPool:
    """Up to `size` workers; `call` borrows one (a warm one first), and kills and replaces it on a timeout."""

    def __init__(self, size: int | None = None) -> None:
        self.size = size or configured_size()
        self._cond = threading.Condition()
        self._reset()

    def _reset(self) -> None:
        self._idle: list[_Channel] = []
        self._all: list[_Channel] = []
        self._zygote: _Zygote | None = None

    def _spawn(self) -> _Channel:
        """A new worker: forked from the warm zygote if the OS allows (milliseconds), else started afresh."""
        if CAN_FORK:
            for _ in range(2):
                if self._zygote is None:
                    self._zygote = _Zygote()
                try:
                    return self._zygote.fork()
                except WorkerCrash:
                    self._zygote.kill()
                    self._zygote = None
        return _Worker()

    def _checkout(self) -> _Channel:
        with self._cond:
            while True:
                if self._idle:
                    for w in self._idle:
                        if w.ready or w.poll_ready():
                            self._idle.remove(w)
                            return w
                    if len(self._all) >= self.size:
                        return self._idle.pop(0)  # all warming up: take the oldest and wait for it
                if len(self._all) < self.size:
                    w = self._spawn()
                    self._all.append(w)
                    return w
                self._cond.wait()

    def _checkin(self, w: _Channel) -> None:
        with self._cond:
            self._idle.append(w)
            self._cond.notify()

    def _replace(self, dead: _Channel) -> None:
        dead.kill()
        with self._cond:
            if dead in self._all:
                self._all.remove(dead)
            fresh = self._spawn()  # a fork of the warm zygote (or it starts importing now)
            self._all.append(fresh)
            self._idle.append(fresh)
            self._cond.notify()

    def warm_up(self) -> None:
        """Start every worker and wait until each has imported sympy (call before latency-sensitive work)."""
        with self._cond:
            while len(self._all) < self.size:
                w = self._spawn()
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

    def stats(self) -> PoolStats:
        """Which processes serve the pool now (for tests, benchmarks and debugging)."""
        with self._cond:
            pids = [w.pid if isinstance(w, _ForkedWorker) else w.proc.pid for w in self._all]  # type: ignore[attr-defined]
            zygote = self._zygote.proc.pid if self._zygote is not None else None
            ready = sum(w.ready for w in self._all)
        return PoolStats(size=self.size, worker_pids=pids, ready=ready, zygote_pid=zygote)

    def forget_parent(self) -> None:
        """In a forked child: drop the parent's workers and zygote unharmed; new ones start on first use."""
        self._cond = threading.Condition()
        for w in self._all:
            w.disown()
        if self._zygote is not None:
            self._zygote.disown()
        self._reset()

    def close(self) -> None:
        """Kill every worker (also run at interpreter exit)."""
        with self._cond:
            for w in self._all:
                w.kill()
            if self._zygote is not None:
                self._zygote.kill()
            self._reset()


_POOL: WorkerPool | None = None
_POOL_LOCK = threading.Lock()


def _after_fork_in_child() -> None:
    global _POOL_LOCK
    _POOL_LOCK = threading.Lock()
    if _POOL is not None:
        _POOL.forget_parent()


os.register_at_fork(after_in_child=_after_fork_in_child)


def get_pool() -> WorkerPool:
    """The process-wide pool, created on first use."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = WorkerPool()
            atexit.register(_POOL.close)
        return _POOL
