"""Worker process: reads one JSON request per line, answers one JSON line; killed by the parent on timeout."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time

MEMORY_LIMIT = 4 * 1024**3


def _watch_parent(parent: int) -> None:
    """Exit if the parent dies while we are deep in a long sympy call (stdin EOF is only seen between calls)."""
    while True:
        time.sleep(1.0)
        if os.getppid() != parent:
            os._exit(0)


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C belongs to the parent, which kills us
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    except (ImportError, ValueError, OSError):
        pass
    threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True).start()
    sys.set_int_max_str_digits(100_000)
    from loong_env.equivalence.symbolic import compare_texts

    # Pay the lazy first-use costs (ANTLR parser, sympy caches) before saying ready, not inside a time bound.
    for a, b in ((r"\frac{x^2-1}{x-1}", "x+1"), (r"x \le 2", r"(-\infty, 2]"), ("sqrt(8)", r"2\sqrt{2}"),
                 (r"\sin^2 x", r"\cos(x)"), (r"\begin{pmatrix}1&2\\3&4\end{pmatrix}", "Matrix([[1,2],[3,4]])")):
        try:
            compare_texts(a, b)
        except Exception:  # noqa: BLE001 - warm-up only
            pass
    out = sys.stdout
    out.write('{"ready": true}\n')
    out.flush()
    for line in sys.stdin:
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
        out.write(json.dumps(resp) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
