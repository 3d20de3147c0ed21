"""llama.cpp's OpenAI-compatible server, run inside this process by xllamacpp, on 127.0.0.1.

    >>> with LocalServer("smollm2-135m") as server:
    ...     print(server.base_url, server.model)      # http://127.0.0.1:PORT/v1 smollm2-135m

``LOONG_LOCAL_THREADS`` sets the CPU threads for generation (default: half the CPUs).

Fork safety: a forked child inherits the parent's running servers as addresses only. It may send them
requests (they are HTTP servers in the parent), but it never stops them: their threads live in the parent.
"""

from __future__ import annotations

import asyncio
import atexit
import ctypes
import os
import threading
import time
import weakref
from pathlib import Path
from typing import Any, Self

import httpx

from loong_env.errors import ConfigError
from loong_env.local.models import (
    _INSTALL_LOCAL,
    DEFAULT_MODEL,
    LocalModelError,
    ModelNotInstalledError,
    model_id,
    resolve_model_path,
)


def _default_threads() -> int:
    """`$LOONG_LOCAL_THREADS`, else half the CPUs (about the physical cores, llama.cpp's own choice).

    Measured here: on a busy 2-core box, 2 threads fell to ~1 tok/s (threads wait on each other at every
    step when one is descheduled) while 1 thread kept ~20 tok/s; leaving cores free also keeps room for
    the sandbox and verifiers that run alongside generation.
    """
    env = os.environ.get("LOONG_LOCAL_THREADS")
    if env:
        try:
            return max(1, int(env))
        except ValueError:
            raise LocalModelError(f"LOONG_LOCAL_THREADS must be a whole number, got {env!r}") from None
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(8, cpus // 2))


class LocalServer:
    """llama.cpp's OpenAI-compatible server running inside this process on 127.0.0.1.

    Use as a context manager (sync or async); `.base_url` ends in `/v1` and `.model` is the id the API
    reports. `n_ctx` is split evenly across the `n_parallel` slots, so the default gives 2048 per slot.
    """

    def __init__(
        self,
        model: str | os.PathLike[str] = DEFAULT_MODEL,
        *,
        n_parallel: int = 4,
        n_ctx: int | None = None,
        threads: int | None = None,
        port: int = 0,
        alias: str | None = None,
        startup_timeout_s: float = 120.0,
        verbose: bool = False,
    ) -> None:
        if n_parallel < 1:
            raise ConfigError(f"n_parallel must be >= 1, got {n_parallel}")
        self.model_name = str(model)
        self.n_parallel = n_parallel
        self.n_ctx = n_ctx if n_ctx is not None else 2048 * n_parallel
        self.threads = threads if threads is not None else _default_threads()
        self.port = port
        self.model = alias or model_id(model)
        self.startup_timeout_s = startup_timeout_s
        self.verbose = verbose
        self.model_path: Path | None = None
        self._server: Any = None
        self._url: str | None = None
        self._lock = threading.Lock()
        self._inherited = False  # a forked child's copy of a parent's server: usable, never stopped here
        _LIVE.add(self)

    # -- lifecycle -------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def url(self) -> str:
        """Root URL of the server (health at `/health`)."""
        if self._url is None:
            raise LocalModelError(f"Local server for {self.model_name!r} is not running: call start() first.")
        return self._url

    @property
    def base_url(self) -> str:
        """OpenAI-compatible base URL, e.g. `http://127.0.0.1:41234/v1`."""
        return self.url + "/v1"

    async def start(self) -> LocalServer:
        """Load the model and serve it; returns once `/health` reports ok."""
        return await asyncio.to_thread(self.start_sync)

    def start_sync(self) -> LocalServer:
        """Blocking twin of `start`."""
        with self._lock:
            if self._server is not None:
                return self
            try:
                import xllamacpp
            except ImportError as exc:
                raise ModelNotInstalledError(
                    f"The local model server needs the `xllamacpp` package ({exc}).\nInstall it with:\n"
                    f"  {_INSTALL_LOCAL}"
                ) from exc
            self.model_path = resolve_model_path(self.model_name)
            params = xllamacpp.CommonParams()
            params.model.path = str(self.model_path)
            params.model_alias = {self.model}
            params.n_ctx = self.n_ctx
            params.n_parallel = self.n_parallel
            params.port = self.port
            params.hostnames = ["127.0.0.1"]
            params.cpuparams.n_threads = self.threads
            params.cpuparams_batch.n_threads = self.threads
            params.verbosity = 3 if self.verbose else 0
            try:
                server = xllamacpp.Server(params)
            except Exception as exc:  # the binding raises plain RuntimeErrors with llama.cpp's message
                raise LocalModelError(f"llama.cpp could not serve {self.model_path}: {exc}") from exc
            self._server = server
            self._url = str(server.listening_address).rstrip("/")
            if not self._url.startswith("http"):
                self._url = "http://" + self._url
        try:
            self._wait_healthy()
        except BaseException:
            self.stop_sync()
            raise
        return self

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.startup_timeout_s
        last: str = "no answer yet"
        while time.monotonic() < deadline:
            try:
                response = httpx.get(self.url + "/health", timeout=5.0)
                if response.status_code == 200:
                    return
                last = f"HTTP {response.status_code}: {response.text[:200]}"
            except httpx.HTTPError as exc:
                last = repr(exc)
            time.sleep(0.05)
        raise LocalModelError(
            f"Local server for {self.model_name!r} at {self.url} was not healthy after "
            f"{self.startup_timeout_s:.0f}s (last: {last})."
        )

    async def stop(self, wait_s: float = 5.0) -> None:
        """Close the listener and free the model; returns once the port refuses connections (or wait_s)."""
        await asyncio.to_thread(self.stop_sync, wait_s)

    def stop_sync(self, wait_s: float = 5.0) -> None:
        """Blocking twin of `stop`."""
        with self._lock:
            server, self._server = self._server, None
            url, self._url = self._url, None
        if server is None or self._inherited:
            return  # an inherited server belongs to the parent process, which stops it
        del server  # the binding shuts llama.cpp's server down when its object is freed
        deadline = time.monotonic() + wait_s
        while url is not None and time.monotonic() < deadline:
            try:
                httpx.get(url + "/health", timeout=0.5)
            except httpx.HTTPError:
                return
            time.sleep(0.02)

    def __enter__(self) -> Self:
        return self.start_sync()

    def __exit__(self, *exc: object) -> None:
        self.stop_sync()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def __repr__(self) -> str:
        state = self._url or "stopped"
        return f"LocalServer(model={self.model!r}, n_parallel={self.n_parallel}, n_ctx={self.n_ctx}, {state})"


_shared: dict[tuple[Any, ...], LocalServer] = {}
_shared_lock = threading.Lock()
_LIVE: weakref.WeakSet[LocalServer] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    """Keep the parent's servers as addresses; make sure this process never tears down their native state.

    Freeing an inherited xllamacpp server, or running llama.cpp's static destructors at exit, waits on
    threads that exist only in the parent: a forked child would hang forever when it exits. So the child
    pins the objects and, at the C level, leaves with `_exit(status)` before those destructors run (glibc's
    `on_exit` passes the exit status; handlers run in reverse order, so this one runs first).
    """
    global _shared_lock
    _shared_lock = threading.Lock()
    inherited = False
    for server in list(_LIVE):
        server._lock = threading.Lock()
        if server._server is not None:
            ctypes.pythonapi.Py_IncRef(ctypes.py_object(server._server))
            server._inherited = inherited = True
    if inherited:
        libc = ctypes.CDLL(None)
        if hasattr(libc, "on_exit"):
            libc.on_exit(ctypes.cast(libc._exit, ctypes.c_void_p), None)


os.register_at_fork(after_in_child=_after_fork_in_child)


def shared_server(
    model: str | os.PathLike[str] = DEFAULT_MODEL,
    *,
    n_parallel: int = 4,
    n_ctx: int | None = None,
    threads: int | None = None,
) -> LocalServer:
    """One running server per (model, settings) per process, started on first use, stopped at exit.

    LLMClient's default endpoint and the test fixtures use this, so a process never loads a model twice.
    """
    n_ctx = n_ctx if n_ctx is not None else 2048 * n_parallel
    threads = threads if threads is not None else _default_threads()
    key = (model_id(model), str(model), n_parallel, n_ctx, threads)
    with _shared_lock:
        server = _shared.get(key)
        if server is None:
            server = _shared[key] = LocalServer(model, n_parallel=n_parallel, n_ctx=n_ctx, threads=threads)
    try:
        return server.start_sync()
    except BaseException:
        with _shared_lock:
            _shared.pop(key, None)
        raise


@atexit.register
def stop_shared_servers() -> None:
    """Stop every server `shared_server` started (also runs at interpreter exit)."""
    with _shared_lock:
        servers = list(_shared.values())
        _shared.clear()
    for server in servers:
        server.stop_sync()
