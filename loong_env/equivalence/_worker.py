"""Worker processes for the sympy checks: one JSON request per line in, one JSON line out; killed on timeout.

Two ways to start one (see pool.py): `python -m loong_env.equivalence._worker` serves on stdin/stdout, and
`... _worker --zygote FD` imports sympy once, then forks a ready worker for every socket the parent sends
over FD, so a replacement after a kill costs a fork (milliseconds) instead of a fresh sympy import (seconds).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import threading
import time
from typing import IO

MEMORY_LIMIT = 4 * 1024**3


def _watch_parent(parent: int) -> None:
    """Exit if the parent dies while we are deep in a long sympy call (EOF is only seen between calls)."""
    while True:
        time.sleep(1.0)
        if os.getppid() != parent:
            os._exit(0)


def _prepare() -> None:
    """Limits, imports and the lazy first-use costs (ANTLR parser, sympy caches), paid before saying ready."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C belongs to the parent, which kills us
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    except (ImportError, ValueError, OSError):
        pass
    sys.set_int_max_str_digits(100_000)
    from loong_env.equivalence.symbolic import compare_texts

    for a, b in (
        (r"\frac{x^2-1}{x-1}", "x+1"),
        (r"x \le 2", r"(-\infty, 2]"),
        ("sqrt(8)", r"2\sqrt{2}"),
        (r"\sin^2 x", r"\cos(x)"),
        (r"\begin{pmatrix}1&2\\3&4\end{pmatrix}", "Matrix([[1,2],[3,4]])"),
        ("3+4j", "3+4i"),
        (r"\{1, 2\}", r"\emptyset"),
    ):
        try:
            compare_texts(a, b)
        except Exception:  # noqa: BLE001, S110 - warm-up only
            pass


def _serve(inp: IO[bytes], out: IO[bytes]) -> None:
    """Answer requests until the parent closes the channel."""
    from loong_env.equivalence.symbolic import compare_texts

    for line in inp:
        try:
            req = json.loads(line)
            tol = tuple(req["tol"]) if req.get("tol") else None
            equal, reason = compare_texts(req["a"], req["b"], tol)
            resp = {"equal": bool(equal), "reason": reason, "error": None}
        except RecursionError:
            resp = {"equal": False, "reason": "too deeply nested for sympy", "error": "nesting too deep"}
        except MemoryError:
            resp = {"equal": False, "reason": "sympy ran out of memory", "error": "memory limit"}
        except Exception as exc:  # noqa: BLE001 - any failure is a verdict for this item, never a crash
            msg = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
            resp = {"equal": False, "reason": "could not compare symbolically", "error": msg}
        out.write(json.dumps(resp).encode() + b"\n")
        out.flush()


def _child(conn: socket.socket, zygote: int) -> None:
    """In a freshly forked worker: serve on `conn` until the parent closes it, then exit without cleanup."""
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        threading.Thread(target=_watch_parent, args=(zygote,), daemon=True).start()
        with conn.makefile("rb") as inp, conn.makefile("wb") as out:
            _serve(inp, out)
    finally:
        os._exit(0)


def zygote(control_fd: int) -> None:
    """Import and warm up once, then fork one worker per socket received on the control channel."""
    _prepare()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # forked workers are reaped automatically
    ctrl = socket.socket(fileno=control_fd)
    ctrl.sendall(b"ready\n")
    while True:
        try:
            _, fds, _, _ = socket.recv_fds(ctrl, 16, 1)
        except OSError:
            return
        if not fds:
            return  # the parent closed the channel (or died): no more workers
        conn = socket.socket(fileno=fds[0])
        pid = os.fork()
        if pid == 0:
            ctrl.close()
            _child(conn, os.getppid())
        conn.close()
        ctrl.sendall(f"{pid}\n".encode())


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--zygote":
        zygote(int(sys.argv[2]))
        return
    threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True).start()
    _prepare()
    sys.stdout.write('{"ready": true}\n')
    sys.stdout.flush()
    _serve(sys.stdin.buffer, sys.stdout.buffer)


if __name__ == "__main__":
    main()
