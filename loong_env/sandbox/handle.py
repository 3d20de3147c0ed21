"""The host's handle on one jailed worker process: its framed pipe, its process tree, and its end.

A worker answers one request at a time: an ACK byte as soon as it has the request (so the host can tell a
dead worker from a deadly snippet), then one length-prefixed JSON frame. See worker.py for the protocol.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import struct
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from loong_env.sandbox import bwrap, cgroups, seccomp
from loong_env.sandbox.errors import SandboxUnavailableError, WorkerGone

START_TIMEOUT_S = 300.0
ACK_TIMEOUT_S = 30.0


class WorkerHandle:
    """One jailed worker process and its framed pipe; used by one thread at a time."""

    def __init__(
        self, argv: list[str], env: dict[str, str], hello: dict[str, Any], cgroup: cgroups.WorkerCgroup | None
    ) -> None:
        self.cgroup = cgroup
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the worker
        # bubblewrap reads its seccomp program from a descriptor, to its end: a fresh one per worker.
        program = os.memfd_create("loong-seccomp", os.MFD_CLOEXEC) if bwrap.SECCOMP_FD in argv else None
        try:
            if program is not None:
                os.write(program, seccomp.jail_program())
                os.lseek(program, 0, os.SEEK_SET)
                argv = [str(program) if a == bwrap.SECCOMP_FD else a for a in argv]
            self.proc = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._stderr,
                env=env,
                bufsize=0,
                start_new_session=True,
                close_fds=True,
                pass_fds=() if program is None else (program,),
            )
        finally:
            if program is not None:
                os.close(program)
        self._send(hello)
        ready = self._recv(START_TIMEOUT_S)
        if not ready or not ready.get("ready"):
            detail = self.diagnostics()
            self.kill()
            raise SandboxUnavailableError(
                f"a sandbox worker failed to start (command: {' '.join(argv[:3])} ...); its output:\n{detail}"
            )
        self.info: dict[str, Any] = ready

    def diagnostics(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read()[-4000:].decode(errors="replace").strip() or "(nothing)"

    def alive(self) -> bool:
        return self.proc.poll() is None

    def _send(self, obj: dict[str, Any]) -> None:
        data = json.dumps(obj).encode()
        assert self.proc.stdin is not None
        self.proc.stdin.write(struct.pack(">I", len(data)) + data)

    def _read_exact(self, n: int, deadline: float) -> bytes | None:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        buf = bytearray()
        while len(buf) < n:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return None
            chunk = os.read(fd, n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return bytes(buf)

    def _recv(self, timeout_s: float) -> dict[str, Any] | None:
        deadline = time.monotonic() + timeout_s
        head = self._read_exact(4, deadline)
        if head is None:
            return None
        body = self._read_exact(struct.unpack(">I", head)[0], deadline)
        return None if body is None else json.loads(body)

    def call(self, request: dict[str, Any], timeout_s: float) -> dict[str, Any] | None:
        """The worker's answer; None if it died or hung during the run; raises WorkerGone if it was
        already dead before it took the request (the caller retries that on a fresh worker)."""
        deadline = time.monotonic() + timeout_s
        try:
            self._send(request)
        except OSError:
            raise WorkerGone from None
        if self._read_exact(1, min(deadline, time.monotonic() + ACK_TIMEOUT_S)) != b"\x06":
            raise WorkerGone
        return self._recv(max(0.0, deadline - time.monotonic()))

    def tree(self) -> list[int]:
        """Host pids of every process in this worker's tree (bubblewrap, the interpreter, any run)."""
        pids, stack = [], [self.proc.pid]
        while stack:
            pid = stack.pop()
            with contextlib.suppress(OSError, ValueError):
                children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
                pids.append(pid)
                stack += [int(p) for p in children]
        return pids

    def cpu_s(self) -> float:
        """CPU seconds used by the worker tree so far, runs it has reaped included."""
        ticks = 0
        for pid in self.tree():
            with contextlib.suppress(OSError, ValueError, IndexError):
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                ticks += sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
        return ticks / os.sysconf("SC_CLK_TCK")

    def rss_kb(self) -> int:
        """Resident memory of the worker tree (bubblewrap + the warm interpreter)."""
        total = 0
        for pid in self.tree():
            with contextlib.suppress(OSError, ValueError):
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        return total

    def disown(self) -> None:
        """Close this process's copies of the pipes without signalling the worker (a forked child's view)."""
        for stream in (self.proc.stdin, self.proc.stdout, self._stderr):
            with contextlib.suppress(Exception):
                stream.close()  # type: ignore[union-attr]
        self.proc.returncode = 0  # not our child: never wait for it or kill it from here

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # bubblewrap dies; --die-with-parent takes the rest
        with contextlib.suppress(Exception):
            self.proc.wait(timeout=10)
        for stream in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(Exception):
                stream.close()  # type: ignore[union-attr]
        self._stderr.close()
        if self.cgroup is not None:
            self.cgroup.remove()
