"""Sandbox throughput against its baselines, measured in the same run, isolation ON.

    .venv/bin/python benchmarks/bench_sandbox.py [--seeds 60] [--trivial 300]

(a) trivial snippets: the warm pool vs one `python snippet.py` subprocess per run, one at a time;
(b) real seed code (the Loong advanced_math sample, first N records needing only sympy/numpy) vs the same
    subprocess baseline (on the same first few records, both sides), and vs the "compute limit": the same
    code exec'd in already-warm, unisolated processes, one per worker;
(c) memory of the warm pool, and throughput with 1 vs 2 workers.
The pool is warmed with OUR sympy-only seeds (e.g. seeds/advanced_math), never with the benchmark's code; the
compute-limit processes get the same warm-up.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _hardware import hardware

from loong_env.sandbox import Sandbox, ensure_env
from loong_env.seeds.dataset import warmup_rationales

SAMPLE = (
    Path(__file__).resolve().parents[2] / "shared" / "loong_sample" / "advanced_math" / "seed_dataset.json"
)
SAMPLE = Path(os.environ.get("LOONG_SAMPLE", SAMPLE))
TRIVIAL = "print(sum(i * i for i in range(100)))"
SUBSET_REPEATS = 4  # the pool's side of the subprocess comparison is short: repeat it for a stable rate

# Runs inside the compute-limit baseline process: pre-import, warm up, then exec each snippet, timing only that.
WARM_DRIVER = r"""
import contextlib, importlib, io, json, sys, time
cfg = json.loads(sys.stdin.readline())
for m in cfg["modules"]:
    importlib.import_module(m)
for code in cfg["warmup"]:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(BaseException):
        exec(compile(code, "<warmup>", "exec"), {"__name__": "__warmup__"})
print("ready", flush=True)
codes = json.loads(sys.stdin.readline())
t0 = time.perf_counter(); ok = 0
for code in codes:
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            exec(compile(code, "<snippet>", "exec"), {"__name__": "__main__"})
        ok += 1
    except BaseException:
        pass
print(json.dumps({"elapsed": time.perf_counter() - t0, "ok": ok}), flush=True)
"""



def _children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def subprocess_baseline(python: Path, codes: list[str]) -> tuple[float, float]:
    """(wall, CPU) seconds per snippet, one `python snippet.py` at a time (the CAMEL-style design)."""
    with tempfile.TemporaryDirectory() as tmp:
        t0, c0 = time.perf_counter(), _children_cpu()
        for i, code in enumerate(codes):
            path = Path(tmp) / f"snippet_{i}.py"
            path.write_text(code)
            subprocess.run([str(python), str(path)], capture_output=True, timeout=60, cwd=tmp, check=False)
        return (time.perf_counter() - t0) / len(codes), (_children_cpu() - c0) / len(codes)


def compute_limit(
    python: Path, modules: list[str], warmup: list[str], codes: list[str], workers: int
) -> float:
    """Wall seconds to exec `codes` in `workers` already-warm, unisolated processes (static split)."""
    procs = [
        subprocess.Popen(
            [str(python), "-c", WARM_DRIVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        for _ in range(workers)
    ]
    for p in procs:
        p.stdin.write(json.dumps({"modules": modules, "warmup": warmup}) + "\n")
        p.stdin.flush()
    for p in procs:
        assert p.stdout.readline().strip() == "ready"
    t0 = time.perf_counter()
    for i, p in enumerate(procs):
        p.stdin.write(json.dumps(codes[i::workers]) + "\n")
        p.stdin.flush()
    for p in procs:
        json.loads(p.stdout.readline())
        p.stdin.close()
        p.wait()
    return time.perf_counter() - t0


def pool_time(sb: Sandbox, codes: list[str]) -> tuple[float, int]:
    elapsed, results = pool_run(sb, codes)
    return elapsed, sum(r.ok for r in results)


def pool_run(sb: Sandbox, codes: list[str]) -> tuple[float, list]:
    t0 = time.perf_counter()
    results = sb.run_many_sync(codes)
    return time.perf_counter() - t0, results


def load_sample(n: int) -> list[str] | None:
    if not SAMPLE.is_file():
        return None
    records = json.loads(SAMPLE.read_text())
    allowed = {"sympy", "numpy"}
    codes = []
    for rec in records:
        deps = {d.split("=")[0].split(">")[0].split("<")[0].strip().lower()
                for d in rec.get("metadata", {}).get("required_dependencies", [])}  # fmt: skip
        if deps <= allowed and rec.get("rationale"):
            codes.append(rec["rationale"])
        if len(codes) >= n:
            break
    return codes


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trivial", type=int, default=1000, help="trivial snippets through the pool, per round")
    ap.add_argument("--rounds", type=int, default=3, help="rounds of (a): pool, then both baselines")
    ap.add_argument("--trivial-baseline", type=int, default=40, help="trivial snippets through subprocesses")
    ap.add_argument("--seeds", type=int, default=60, help="Loong advanced_math rationales")
    ap.add_argument("--seed-baseline", type=int, default=15, help="of those, how many to run by subprocess")
    args = ap.parse_args()
    print(f"hardware: {hardware()}")
    workers = os.cpu_count() or 1

    # (a) trivial snippets, stdlib-only environment; pool and baseline interleaved, several rounds, because
    # other work on a shared machine moves both.
    py0 = ensure_env([])
    system_python = Path(getattr(sys, "_base_executable", sys.executable)).resolve()
    rounds: list[tuple[float, float, float]] = []  # (pool rate, system-python rate, venv-python rate)
    with Sandbox([], workers=workers) as sb:
        sb.start_sync()
        pool_time(sb, [TRIVIAL] * 20)  # first forks fault the warm pages in
        c0, n_pool, ok = sb.stats()["cpu_s"], 0, 0
        for _ in range(args.rounds):
            elapsed, good = pool_time(sb, [TRIVIAL] * args.trivial)
            n_pool, ok = n_pool + args.trivial, ok + good
            c1 = sb.stats()["cpu_s"]
            sys_base, _ = subprocess_baseline(system_python, [TRIVIAL] * args.trivial_baseline)
            base, base_cpu = subprocess_baseline(py0, [TRIVIAL] * args.trivial_baseline)
            c0 -= sb.stats()["cpu_s"] - c1  # the baselines do not count towards the pool's CPU
            rounds.append((args.trivial / elapsed, 1 / sys_base, 1 / base))
        pool_cpu = (sb.stats()["cpu_s"] - c0) / n_pool
    ratios = sorted(p / s_ for p, s_, _ in rounds)
    median = ratios[len(ratios) // 2]
    print(
        f"\n(a) trivial snippets, {workers} workers, {args.rounds} rounds of {args.trivial} ({ok}/{n_pool} ok)"
    )
    for i, (p, s_, b) in enumerate(rounds, 1):
        print(f"    round {i}: pool {p:.0f}/s; baseline 1, `python snippet.py` with the system interpreter "
              f"{s_:.1f}/s -> {p / s_:.1f}x (target >= 20x); baseline 2 (stricter), the sandbox's bare "
              f"stdlib-only venv interpreter {b:.1f}/s -> {p / b:.1f}x")  # fmt: skip
    print(
        f"    median ratio to baseline 1 ({system_python}): {median:.1f}x (range {ratios[0]:.1f}-{ratios[-1]:.1f}x)"
    )
    print(f"    CPU per run: pool {pool_cpu * 1000:.1f} ms (workers + forked runs), subprocess "
          f"{base_cpu * 1000:.1f} ms -> {base_cpu / pool_cpu:.1f}x less CPU per run")  # fmt: skip

    # (b) + (c) real seed code.
    codes = load_sample(args.seeds)
    if codes is None:
        print(f"\n(b) skipped: {SAMPLE} not found")
        return
    reqs = ["sympy==1.14.0"]  # the sample needs sympy only; our sympy-only seed domains warm the pool
    warmup = warmup_rationales(sorted(reqs), limit=24)
    py = ensure_env(reqs)
    results: dict[int, float] = {}
    subset = codes[: args.seed_baseline] * SUBSET_REPEATS  # the same code the subprocess baseline runs
    subset_rates: dict[int, float] = {}
    durations: list[float] = []
    for n in (workers, 1) if workers > 1 else (1,):
        with Sandbox(reqs, workers=n, timeout_s=60) as sb:
            t0 = time.perf_counter()
            sb.start_sync()
            start_s = time.perf_counter() - t0
            stats = sb.stats()
            pool_time(sb, codes[:4])  # let each worker take a first fork
            elapsed, runs = pool_run(sb, codes)
            ok = sum(r.ok for r in runs)
            results[n] = len(codes) / elapsed
            if n == 1:
                durations = [r.duration_s for r in runs]  # one at a time: each seed's own run time
            sub_elapsed, _ = pool_time(sb, subset)
            subset_rates[n] = len(subset) / sub_elapsed
            if n == workers:
                rss = stats["rss_kb"]
                print(f"\n(c) warm pool of {n}: start {start_s:.1f} s, RSS per worker tree "
                      f"{[round(r / 1024) for r in rss]} MiB (total {sum(rss) / 1024:.0f} MiB); preloaded "
                      f"{stats['preloaded']}; our warm-up seeds run: {stats['warmup_ok']}")  # fmt: skip
                pool_ok = ok
    modules = ["sympy", "mpmath"]
    limit_s = compute_limit(py, modules, warmup, codes, workers)
    limit_rate = len(codes) / limit_s
    sub, _ = subprocess_baseline(py, codes[: args.seed_baseline])
    sub_rate = 1 / sub
    pool_rate, subset_rate = results[workers], subset_rates[workers]
    print(f"\n(b) {len(codes)} Loong advanced_math rationales, {workers} workers: pool {pool_rate:.1f}/s "
          f"({pool_ok}/{len(codes)} ok)")  # fmt: skip
    print(f"    subprocess baseline on the first {args.seed_baseline}: {sub_rate:.2f}/s ({sub * 1000:.0f} ms each); "
          f"the pool on the same {args.seed_baseline} (x{SUBSET_REPEATS}): {subset_rate:.1f}/s "
          f"-> {subset_rate / sub_rate:.1f}x (target >= 10x)")  # fmt: skip
    print(f"    compute limit (warm unisolated exec, {workers} procs): {limit_rate:.1f}/s -> pool at "
          f"{100 * pool_rate / limit_rate:.0f}% (target >= 70%)")  # fmt: skip
    subset_limit = len(subset) / compute_limit(py, modules, warmup, subset, workers)
    print(f"    the same on the first {args.seed_baseline} (x{SUBSET_REPEATS}), where no one seed dominates: "
          f"compute limit {subset_limit:.1f}/s, pool {subset_rate:.1f}/s -> {100 * subset_rate / subset_limit:.0f}%")  # fmt: skip
    if durations and workers > 1:
        total, longest = sum(durations), max(durations)
        bound = total / max(longest, total / workers)
        print(f"\n(c) scaling: 1 worker {results[1]:.1f}/s, {workers} workers {results[workers]:.1f}/s "
              f"-> {results[workers] / results[1]:.2f}x; the longest seed takes {longest:.1f} s of the "
              f"{total:.1f} s all {len(durations)} take, so {workers} workers can reach at most {bound:.2f}x "
              f"on this set")  # fmt: skip
        print(f"    on the first {args.seed_baseline} (x{SUBSET_REPEATS}), no seed dominating: 1 worker "
              f"{subset_rates[1]:.1f}/s, {workers} workers {subset_rate:.1f}/s "
              f"-> {subset_rate / subset_rates[1]:.2f}x")  # fmt: skip
    print(f"\nload avg now {os.getloadavg()[0]:.2f} (other work on this machine skews wall-clock ratios)")


if __name__ == "__main__":
    main()
