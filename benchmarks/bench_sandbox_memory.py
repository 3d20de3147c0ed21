"""Host memory of one hostile run: N children, each allocating and touching most of `memory_mb`.

    .venv/bin/python benchmarks/bench_sandbox_memory.py [--children 6] [--mb 900]

The snippet runs with the Sandbox's default limits. Host memory in use (MemTotal - MemAvailable) is sampled
every 10 ms before, during and after the run; the peak rise is what the run cost the host. Without a
run-wide bound each child gets its own per-process budget, so the rise is about children x mb.
Other work on a shared machine moves the baseline by a few tens of MiB.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _hardware import hardware

from loong_env.sandbox import Sandbox

SNIPPET = """
import os, time
pids = []
for _ in range({children}):
    pid = os.fork()
    if pid == 0:
        block = b"x" * ({mb} << 20)   # allocated and written: every page is resident
        time.sleep(1.5)
        os._exit(0)
    pids.append(pid)
ok = sum(os.waitstatus_to_exitcode(os.waitpid(p, 0)[1]) == 0 for p in pids)
print(ok, "of", len(pids), "children held", {mb}, "MiB each")
"""


def used_mib() -> float:
    info = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
    return (int(info["MemTotal"].split()[0]) - int(info["MemAvailable"].split()[0])) / 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--children", type=int, default=6)
    ap.add_argument("--mb", type=int, default=900)
    args = ap.parse_args()
    print(f"hardware: {hardware()}")
    with Sandbox([], workers=1) as sb:
        sb.start_sync()
        sb.run_sync("print(1)")
        baseline = statistics.median(used_mib() for _ in range(20))
        samples: list[float] = []
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                samples.append(used_mib())
                time.sleep(0.01)

        sampler = threading.Thread(target=sample)
        sampler.start()
        res = sb.run_sync(SNIPPET.format(children=args.children, mb=args.mb))
        time.sleep(0.5)
        done.set()
        sampler.join()
        after = statistics.median(used_mib() for _ in range(20))
        stats = sb.stats()
        diagnostics = stats.get("diagnostics", "")
        cgroup_peak = [round(b / 2**20) for b in stats.get("memory_peak_bytes", []) if b]
    print(f"limits: {sb.limits.model_dump()}")
    if diagnostics:
        print(f"sandbox: {diagnostics}")
    print(f"run: status={res.status.value} stdout={res.stdout.strip()!r} stderr tail={res.stderr[-200:]!r}")
    if cgroup_peak:
        print(f"the worker's memory cgroup: peak {cgroup_peak} MiB (warm worker + run, the kernel's count)")
    print(f"host memory in use: baseline {baseline:.0f} MiB, peak {max(samples):.0f} MiB "
          f"(+{max(samples) - baseline:.0f} MiB), after {after:.0f} MiB ({after - baseline:+.0f} MiB)")


if __name__ == "__main__":
    main()
