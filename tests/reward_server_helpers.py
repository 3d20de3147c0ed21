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
