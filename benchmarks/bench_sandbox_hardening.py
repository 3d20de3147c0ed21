"""What the jail's uid change and seccomp filters cost: the same pool with and without them, interleaved.

    flock /tmp/loong-heavy.lock .venv/bin/python benchmarks/bench_sandbox_hardening.py [--rounds 5]

Two sandboxes live side by side, identical but for the hardening of docs/sandbox.md ("uid and seccomp"):
A is the Sandbox as shipped; B is the same Sandbox with the hardening taken out after it is prepared
(no `--seccomp` for bubblewrap, no per-run filter, runs keep the worker's uid): what it was before.
Each round runs (a) trivial snippets and (b) real seed code (the Loong advanced_math sample, sympy) on A,
then on B, then on B, then on A (ABBA), so drift on a shared machine falls on both; the ratio A/B of each
workload is reported per round and as the median. The target is A within 5 % of B.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _hardware import hardware
from bench_sandbox import TRIVIAL, load_sample

from loong_env.sandbox import Sandbox
from loong_env.seeds import warmup_rationales


def unhardened(sb: Sandbox) -> Sandbox:
    """The same Sandbox without the hardening: prepared as usual, then the hardening removed by hand."""
    sb._prepare()
    argv = sb._argv
    assert argv is not None
    i = argv.index("--seccomp")
    del argv[i : i + 2]
    sb._hello["seccomp"] = ""
    sb._hello["uid"] = None
    return sb


def rate(sb: Sandbox, codes: list[str]) -> float:
    t0 = time.perf_counter()
    results = sb.run_many_sync(codes)
    elapsed = time.perf_counter() - t0
    bad = [r for r in results if not r.ok]
    if len(bad) > len(codes) // 10:
        raise SystemExit(f"{len(bad)} of {len(codes)} runs failed, e.g. {bad[0]}")
    return len(codes) / elapsed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--trivial", type=int, default=600, help="trivial snippets per pool per half-round")
    ap.add_argument("--seeds", type=int, default=40, help="Loong advanced_math rationales per half-round")
    args = ap.parse_args()
    print(f"hardware: {hardware()}")
    workers = os.cpu_count() or 1
    codes = load_sample(args.seeds)
    if codes is None:
        raise SystemExit("the Loong advanced_math sample is missing (LOONG_SAMPLE)")
    reqs = ["sympy==1.14.0"]
    warmup = warmup_rationales(sorted(reqs), limit=24)
    pools = {
        "trivial": (Sandbox([], workers=workers), unhardened(Sandbox([], workers=workers))),
        "seeds": (
            Sandbox(reqs, workers=workers, timeout_s=60, warmup=warmup),
            unhardened(Sandbox(reqs, workers=workers, timeout_s=60, warmup=warmup)),
        ),
    }
    work = {"trivial": [TRIVIAL] * args.trivial, "seeds": codes}
    try:
        for a, b in pools.values():
            for sb in (a, b):
                sb.start_sync()
        probe = "import os; print(os.getuid(), open('/proc/self/status').read().count('Seccomp_filters:\\t2'))"
        for name, sb in zip("AB", pools["trivial"], strict=True):
            print(f"  {name}: uid and seccomp filters in a run: {sb.run_sync(probe).stdout.split()}")
        for kind, (a, b) in pools.items():  # a first pass faults in the warm pages of every worker
            rate(a, work[kind][:8])
            rate(b, work[kind][:8])
        ratios: dict[str, list[float]] = {k: [] for k in pools}
        for r in range(1, args.rounds + 1):
            line = []
            for kind, (a, b) in pools.items():
                ra1, rb1 = rate(a, work[kind]), rate(b, work[kind])
                rb2, ra2 = rate(b, work[kind]), rate(a, work[kind])
                ra, rb = (ra1 + ra2) / 2, (rb1 + rb2) / 2
                ratios[kind].append(ra / rb)
                line.append(f"{kind}: A {ra:.1f}/s, B {rb:.1f}/s, A/B {ra / rb:.3f}")
            print(f"round {r}: " + "; ".join(line), flush=True)
        for kind, values in ratios.items():
            med = statistics.median(values)
            print(f"{kind}: median A/B {med:.3f} ({100 * (med - 1):+.1f} %), range {min(values):.3f}-"
                  f"{max(values):.3f} over {len(values)} rounds; target >= 0.95")  # fmt: skip
    finally:
        for a, b in pools.values():
            a.close_sync()
            b.close_sync()
    print(f"load avg now {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
