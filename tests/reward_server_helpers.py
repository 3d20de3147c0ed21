"""A real reward server on loopback for tests and benchmarks: uvicorn in a daemon thread, stopped on exit."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from typing import Any

from loong_env.types import Tolerance, VerificationResult, VerificationStatus
from loong_env.verifiers.base import Verifier


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RunningServer:
    """uvicorn serving `app` on 127.0.0.1:<free port> in a thread; `.url`, `.stop()`."""

    def __init__(self, app: Any, *, limit_concurrency: int | None = None) -> None:
        import uvicorn

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                limit_concurrency=limit_concurrency)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name=f"reward-server-{self.port}", daemon=True)

    def start(self, timeout_s: float = 120.0) -> RunningServer:
        self.thread.start()
        deadline = time.monotonic() + timeout_s
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"reward server on port {self.port} did not start within {timeout_s} s")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


class SlowVerifier(Verifier):
    """A real verifier that takes `delay_s` per answer and judges exact string equality (for load tests)."""

    name = "slow"

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s

    async def verify(self, response: str, reference: str, *, tolerance: Tolerance | None = None) -> VerificationResult:
        await asyncio.sleep(self.delay_s)
        ok = response.strip() == reference.strip()
        return VerificationResult(status=VerificationStatus.correct if ok else VerificationStatus.incorrect,
                                  reward=float(ok), extracted=response.strip(), reference=reference)


class ServerProcess:
    """`loong serve-reward` in its own process and session on 127.0.0.1:<free port>; `.url`, `.proc`."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        import os
        import subprocess
        import sys

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [sys.executable, "-m", "loong_env", "serve-reward", "--port", str(self.port), *args]
        self.proc = subprocess.Popen(cmd, env={**os.environ, **(env or {})}, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, start_new_session=True)

    def wait_healthy(self, timeout_s: float = 120.0) -> ServerProcess:
        import httpx

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited: {self.proc.stderr.read().decode()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError(f"the server did not answer /health within {timeout_s} s")

    def descendants(self) -> set[tuple[int, str]]:
        """(pid, start time) of every live process below the server (uvicorn workers, sandbox workers, ...)."""
        return descendants(self.proc.pid)

    def kill(self) -> None:
        import os
        import signal

        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait(timeout=30)


def _stat(pid: int | str) -> list[str] | None:
    """/proc/<pid>/stat fields after the command name: state, ppid, pgrp, session, ..., starttime at 19."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None


def descendants(root: int) -> set[tuple[int, str]]:
    """(pid, start time) of each live, non-zombie process below `root` (found by walking parent links)."""
    import os

    children: dict[int, list[tuple[int, str]]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := _stat(entry)) is not None and fields[0] != "Z":
            children.setdefault(int(fields[1]), []).append((int(entry), fields[19]))
    found: set[tuple[int, str]] = set()
    todo = [root]
    while todo:
        for pid, started in children.get(todo.pop(), []):
            found.add((pid, started))
            todo.append(pid)
    return found


def still_alive(processes: set[tuple[int, str]]) -> set[tuple[int, str]]:
    """Those of `processes` that still run (same pid and start time, not a zombie)."""
    alive = set()
    for pid, started in processes:
        fields = _stat(pid)
        if fields is not None and fields[19] == started and fields[0] != "Z":
            alive.add((pid, started))
    return alive
