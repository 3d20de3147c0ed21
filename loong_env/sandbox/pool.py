"""The Sandbox: a lazy pool of warm, jailed workers per requirement set, with an async and a sync face.

The host side is plain threads and blocking pipes, so one Sandbox serves any event loop (or none):
`run_sync` blocks the calling thread and still reuses the same warm workers as `run`.

Fork safety: a Sandbox belongs to the process that started its workers. In a forked child (gymnasium's
async vector env, a multiprocessing pool) the same object forgets the parent's workers and threads without
touching them, and starts its own on first use; the parent's workers keep serving the parent.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import tempfile
import threading
import time
import warnings
import weakref
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from queue import SimpleQueue
from typing import Any, Literal, Self

from loong_env.errors import ConfigError
from loong_env.sandbox import bwrap, cgroups, rootfs, seccomp
from loong_env.sandbox.envs import ensure_env, normalize_requirements, requirement_names
from loong_env.sandbox.errors import SandboxClosedError, SandboxUnavailableError, WorkerGone
from loong_env.sandbox.handle import WorkerHandle
from loong_env.sandbox.limits import SandboxLimits
from loong_env.types import ExecutionResult, ExecutionStatus

WORKER_SCRIPT = Path(__file__).with_name("worker.py")
WATCHDOG_GRACE_S = 5.0
MAX_WARMUP_SNIPPETS = 24


class Sandbox:
    """Runs untrusted Python snippets, isolated, on warm workers that share one requirement set.

    Creating a Sandbox is cheap: the environment is built and the workers start on the first run (or on
    `start()`). A bad snippet is a result (`ExecutionResult.status`), never an exception; only a machine
    that cannot provide the isolation raises `SandboxUnavailableError`.
    """

    def __init__(
        self,
        requirements: Iterable[str] = (),
        *,
        timeout_s: float = 10.0,
        memory_mb: int = 1024,
        max_output_bytes: int = 1_000_000,
        workers: int | None = None,
        max_processes: int = 64,
        max_open_files: int = 256,
        max_file_mb: int = 64,
        scratch_mb: int = 512,
        warmup: Sequence[str] | None = None,
        isolation: Literal["bwrap", "none"] = "bwrap",
        python: str | os.PathLike[str] | None = None,
        allow_unbounded_processes: bool = False,
    ) -> None:
        self.requirements = normalize_requirements(requirements)
        self.limits = SandboxLimits(
            timeout_s=timeout_s,
            memory_mb=memory_mb,
            max_output_bytes=max_output_bytes,
            max_processes=max_processes,
            max_open_files=max_open_files,
            max_file_mb=max_file_mb,
            scratch_mb=scratch_mb,
        )
        if isolation not in ("bwrap", "none"):
            raise ConfigError(f"isolation must be 'bwrap' or 'none', got {isolation!r}")
        if isolation == "none":
            warnings.warn(
                "Sandbox(isolation='none'): untrusted code runs WITHOUT a jail (it can use the network, "
                "write "
                "files and outlive its run); use this only for code you trust.",
                RuntimeWarning,
                stacklevel=2,
            )
        self.isolation = isolation
        self.n_workers = workers or os.cpu_count() or 1
        if self.n_workers < 1:
            raise ConfigError(f"workers must be >= 1, got {self.n_workers}")
        self._warmup = list(warmup or ())[:MAX_WARMUP_SNIPPETS]
        self._python = Path(python) if python is not None else None
        self._allow_unbounded = allow_unbounded_processes
        self._lock = threading.Lock()
        self._argv: list[str] | None = None
        self._env: dict[str, str] = {}
        self._bounds = cgroups.Bounds(memory_mb, max_processes, "not started yet")
        self._hello: dict[str, Any] = {}
        self._idle: SimpleQueue[WorkerHandle | None] = SimpleQueue()
        self._all: set[WorkerHandle] = set()
        self._executor: ThreadPoolExecutor | None = None
        self._closed = False
        self._counter = 0
        for _ in range(self.n_workers):
            self._idle.put(None)  # a slot; its worker starts when first needed
        weakref.finalize(self, _kill_all, self._all)  # a forgotten Sandbox still stops its workers
        _LIVE.add(self)

    # ----- lifecycle -------------------------------------------------------------------------------
    def _prepare(self) -> None:
        """Resolve the jail, the environment and the worker command once (thread-safe)."""
        with self._lock:
            if self._closed:
                raise SandboxClosedError("this Sandbox is closed; create a new one")
            if self._argv is not None:
                if self._executor is None:  # a forked child: the parent's threads are not here
                    self._executor = self._new_executor()
                return
            lim = self.limits
            python = self._python or ensure_env(self.requirements)
            if self.isolation == "bwrap":
                exe = bwrap.find_bwrap()
                self._bounds = cgroups.bounds(lim.memory_mb, lim.max_processes)
                if os.geteuid() == 0 and not self._bounds.pids_cgroup and not self._allow_unbounded:
                    raise SandboxUnavailableError(
                        "running as root, where the kernel ignores RLIMIT_NPROC, and no pids cgroup can be "
                        f"made ({self._bounds.why_not.get('pids')}), so a fork bomb could not be bounded. "
                        "Run as a normal user, or give this process a writable pids cgroup (v1 or v2), or "
                        "pass allow_unbounded_processes=True to accept that risk."
                    )
                root = rootfs.plan_for(Path(python))
                argv = bwrap.bwrap_argv(exe, python, WORKER_SCRIPT, scratch_mb=lim.scratch_mb, root=root)
                env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
            else:
                argv = bwrap.plain_argv(python, WORKER_SCRIPT)
                env = bwrap.plain_env(python)
                self._bounds = cgroups.Bounds(lim.memory_mb, lim.max_processes, "no jail: rlimits only")
            self._hello = {
                "preload": requirement_names(self.requirements),
                "warmup": self._warmup,
                "scratch": "/tmp" if self.isolation == "bwrap" else tempfile.gettempdir(),
                "isolate": self.isolation == "bwrap",
                "seccomp": seccomp.namespace_program().hex() if self.isolation == "bwrap" else "",
                "uid": bwrap.JAIL_UID,
            }
            self._executor = self._new_executor()
            self._env = env
            self._argv = argv

    def _new_executor(self) -> ThreadPoolExecutor:
        return ThreadPoolExecutor(max_workers=self.n_workers, thread_name_prefix="loong-sandbox")

    def _start_worker(self) -> WorkerHandle:
        assert self._argv is not None
        argv, cgroup = self._argv, None
        if self._bounds.hierarchies:
            with self._lock:
                self._counter += 1
                name = f"{id(self):x}-{self._counter}"
            # The worker tree itself holds a few pids: bubblewrap (x2) and the interpreter.
            max_pids = self._bounds.max_processes + 4
            cgroup = cgroups.WorkerCgroup(list(self._bounds.hierarchies), name, max_pids)
            argv = cgroup.wrap(argv)
        try:
            worker = WorkerHandle(argv, self._env, self._hello, cgroup)
        except BaseException:
            if cgroup is not None:
                cgroup.remove()
            raise
        if cgroup is not None and cgroup.bounds_memory:
            try:
                cgroup.limit_memory(self.limits.memory_mb)  # now that the worker is warm: its size + a run
            except BaseException:
                worker.kill()  # and its cgroup with it
                raise
        with self._lock:
            self._all.add(worker)
        return worker

    def _retire(self, worker: WorkerHandle) -> None:
        worker.kill()
        with self._lock:
            self._all.discard(worker)

    async def start(self) -> None:
        """Start every worker now (otherwise they start on first use); returns when all are warm."""
        await asyncio.to_thread(self.start_sync)

    def start_sync(self) -> None:
        """Blocking twin of `start`."""
        self._prepare()
        slots = [self._idle.get() for _ in range(self.n_workers)]
        try:
            assert self._executor is not None
            futures = [self._executor.submit(self._start_worker) for s in slots if s is None or not s.alive()]
            started = [f.result() for f in futures]
            slots = [s for s in slots if s is not None and s.alive()] + started
        finally:
            for s in slots:
                self._idle.put(s)
            for _ in range(self.n_workers - len(slots)):
                self._idle.put(None)

    async def close(self) -> None:
        """Stop every worker; the scratch space dies with them."""
        await asyncio.to_thread(self.close_sync)

    def close_sync(self) -> None:
        """Blocking twin of `close`."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            workers = list(self._all)
            self._all.clear()
        for worker in workers:
            worker.kill()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)

    def _forget_parent(self) -> None:
        """In a forked child: drop the parent's workers, threads and locks without signalling them."""
        self._lock = threading.Lock()
        for worker in self._all:
            worker.disown()
        self._all.clear()  # in place: the finalizer holds this very set
        self._idle = SimpleQueue()
        for _ in range(self.n_workers):
            self._idle.put(None)
        self._executor = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close_sync()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ----- running ---------------------------------------------------------------------------------
    def _request(self, code: str, stdin: str | None) -> dict[str, Any]:
        lim = self.limits
        return {
            "code": code,
            "stdin": stdin,
            "timeout_s": lim.timeout_s,
            "memory_mb": self._bounds.memory_mb,
            "max_output_bytes": lim.max_output_bytes,
            "max_processes": self._bounds.max_processes,
            "max_open_files": lim.max_open_files,
            "max_file_mb": lim.max_file_mb,
        }

    def _run_blocking(self, code: str, stdin: str | None) -> ExecutionResult:
        self._prepare()
        t0 = time.monotonic()
        worker = self._idle.get()
        try:
            if worker is not None and not worker.alive():
                self._retire(worker)
                worker = None
            request = self._request(code, stdin)
            for attempt in range(2):
                if worker is None:
                    worker = self._start_worker()
                try:
                    oom_kills = worker.cgroup.oom_kills() if worker.cgroup is not None else 0
                    answer = worker.call(request, self.limits.timeout_s + WATCHDOG_GRACE_S)
                    break
                except WorkerGone:
                    self._retire(worker)
                    worker = None
                    if attempt:
                        raise SandboxUnavailableError("sandbox workers die as soon as they start") from None
            over_memory = worker.cgroup is not None and worker.cgroup.oom_kills() > oom_kills
            if answer is None:
                hung = worker.alive()
                self._retire(worker)
                worker = None
                fate = "stopped answering" if hung else "died"
                answer = {
                    "status": (ExecutionStatus.timeout if hung else ExecutionStatus.killed).value,
                    "stderr": f"sandbox: the worker {fate}; it was replaced",
                    "duration_s": time.monotonic() - t0,
                }
            result = ExecutionResult.model_validate(answer)
            return _over_memory(result, self.limits.memory_mb) if over_memory else result
        finally:
            if self._closed and worker is not None:
                self._retire(worker)
            self._idle.put(worker)

    async def run(self, code: str, *, stdin: str | None = None) -> ExecutionResult:
        """Run one snippet; its printed output, errors and fate come back as an ExecutionResult."""
        self._prepare()
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._run_blocking, code, stdin)

    async def run_many(
        self, codes: Sequence[str], *, concurrency: int | None = None
    ) -> list[ExecutionResult]:
        """Run many snippets on all workers; results come back in input order."""
        limit = asyncio.Semaphore(concurrency or self.n_workers)

        async def one(code: str) -> ExecutionResult:
            async with limit:
                return await self.run(code)

        return list(await asyncio.gather(*(one(c) for c in codes)))

    def run_sync(self, code: str, *, stdin: str | None = None) -> ExecutionResult:
        """Blocking form of `run`, for scripts and notebooks."""
        return self._run_blocking(code, stdin)

    def run_many_sync(self, codes: Sequence[str], *, concurrency: int | None = None) -> list[ExecutionResult]:
        """Blocking form of `run_many`."""
        self._prepare()
        assert self._executor is not None
        if concurrency is None or concurrency >= self.n_workers:
            return list(self._executor.map(lambda c: self._run_blocking(c, None), codes))
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            return list(pool.map(lambda c: self._run_blocking(c, None), codes))

    # ----- introspection and sharing ---------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        """Pool facts for benchmarks and debugging: workers alive, their memory, what they pre-loaded."""
        with self._lock:
            workers = list(self._all)
        bounded = [w for w in workers if w.cgroup is not None and w.cgroup.bounds_memory]
        return {
            "requirements": self.requirements,
            "isolation": self.isolation,
            "workers": len(workers),
            "rss_kb": [w.rss_kb() for w in workers],
            "worker_pids": [w.proc.pid for w in workers],
            "processes": sum(len(w.tree()) for w in workers),
            "cpu_s": sum(w.cpu_s() for w in workers),
            "preloaded": workers[0].info.get("preloaded", []) if workers else [],
            "warmup_ok": workers[0].info.get("warmup_ok", 0) if workers else 0,
            "pids_cgroup": self._bounds.pids_cgroup,
            "memory_bound": "cgroup" if self._bounds.memory_cgroup else "per-process",
            "cgroups": [str(d) for w in workers if w.cgroup is not None for d in w.cgroup.dirs],
            "memory_limit_bytes": [w.cgroup.limit() for w in bounded],
            "memory_held_bytes": [w.cgroup.working_set() for w in bounded],
            "memory_peak_bytes": [w.cgroup.peak() for w in bounded],
            "diagnostics": self._bounds.description,  # how runs are bounded here, and why
        }

    @classmethod
    def shared(cls, requirements: Iterable[str] = (), **options: Any) -> Sandbox:
        """One Sandbox per (requirement set, options) for the whole process, closed at exit."""
        # the first caller's warm-up code serves every later one: it only buys speed
        keyed = {k: v for k, v in options.items() if k != "warmup"}
        key = (tuple(normalize_requirements(requirements)), tuple(sorted(keyed.items())))
        with _SHARED_LOCK:
            sandbox = _SHARED.get(key)
            if sandbox is None or sandbox._closed:
                sandbox = _SHARED[key] = cls(requirements, **options)
            return sandbox

    def __repr__(self) -> str:
        shown = f"requirements={self.requirements!r}, workers={self.n_workers}, isolation={self.isolation!r}"
        return f"Sandbox({shown})"


def _over_memory(result: ExecutionResult, memory_mb: int) -> ExecutionResult:
    """The run's result, restated: the kernel killed some of its processes for going over the run's memory."""
    note = f"sandbox: the run's processes together went over memory_mb ({memory_mb} MiB); the kernel killed"
    stderr = (result.stderr + "\n" if result.stderr else "") + note + " some of them"
    return result.model_copy(update={"status": ExecutionStatus.memory_limit, "stderr": stderr})


def _kill_all(workers: set[WorkerHandle]) -> None:
    for worker in list(workers):
        with contextlib.suppress(Exception):
            worker.kill()


_SHARED: dict[tuple[Any, ...], Sandbox] = {}
_SHARED_LOCK = threading.Lock()
_LIVE: weakref.WeakSet[Sandbox] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    global _SHARED_LOCK
    _SHARED_LOCK = threading.Lock()
    for sandbox in list(_LIVE):
        sandbox._forget_parent()


os.register_at_fork(after_in_child=_after_fork_in_child)


@atexit.register
def _close_shared() -> None:
    for sandbox in list(_SHARED.values()):
        with contextlib.suppress(Exception):
            sandbox.close_sync()
