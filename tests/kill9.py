"""kill -9 a CLI run mid-way, then run it again: what crash-safe output tests do to the real command line."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path


def complete_lines(path: Path) -> bytes:
    """The file's bytes up to its last newline (what a kill mid-write cannot have damaged)."""
    data = path.read_bytes() if path.exists() else b""
    return data[: data.rfind(b"\n") + 1]


def kill_9_when(
    cmd: Sequence[str], *, cwd: Path, ready: Callable[[], bool], what: str, deadline_s: float = 90.0
) -> None:
    """Run `cmd` until `ready()` holds, then SIGKILL it; fails saying `what` never happened in time."""
    proc = subprocess.Popen(list(cmd), cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + deadline_s
        while not ready():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, f"the first run never {what}"
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def kill_9_then_resume(
    cmd: Sequence[str], *, cwd: Path, log: Path, min_lines: int = 3, deadline_s: float = 90.0
) -> tuple[bytes, subprocess.CompletedProcess[str]]:
    """Run `cmd` until `log` has `min_lines` complete lines, SIGKILL it, then run it again, displayed live.

    Returns the complete lines written before the kill and the second run (stderr holds its display).
    """
    kill_9_when(
        cmd,
        cwd=cwd,
        ready=lambda: complete_lines(log).count(b"\n") >= min_lines,
        what=f"wrote {min_lines} lines to {log.name}",
        deadline_s=deadline_s,
    )
    before = complete_lines(log)
    live = [c for c in cmd if c != "--quiet"]  # the resumed run also exercises the live display
    rerun = subprocess.run(live, check=False, cwd=cwd, capture_output=True, text=True, timeout=120)
    return before, rerun
