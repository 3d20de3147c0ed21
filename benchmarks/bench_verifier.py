"""Boxed-answer verification on our labelled sets: loong_env vs math-verify, measured in the same run.

Run: .venv/bin/python benchmarks/bench_verifier.py [own|heldout|realshapes ...]   (default: all sets, separately)
Prints hardware, accuracy, false positives/negatives per category, checks/s in one process, p50/p100 latency.
The own set was written with the engine; the held-out set was written apart from it, so it estimates
generalisation better (still by us, so it is not the maintainers' hidden set). The realshapes set holds the
shapes real model outputs take (issues 17 and 19: clock times, labels, word lists, several boxes, ...),
one category per cause, written by us.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

from _hardware import hardware

from loong_env.equivalence import warm_up
from loong_env.types import Tolerance
from loong_env.verifiers import BoxedAnswerVerifier

DATA = Path(__file__).parents[1] / "tests/data"
SETS = {"own": DATA / "equivalence_cases.jsonl", "heldout": DATA / "equivalence_heldout.jsonl",
        "realshapes": DATA / "equivalence_realshapes.jsonl"}


def load(name: str) -> list[dict]:
    return [json.loads(line) for line in SETS[name].open()]



def response_of(case: dict) -> str:
    return case.get("response") or rf"The final answer is $\boxed{{{case['candidate']}}}$."


def loong_checker() -> Callable[[dict], bool]:
    v = BoxedAnswerVerifier()

    def check(case: dict) -> bool:
        return v.verify_sync(response_of(case), case["reference"], tolerance=Tolerance.coerce(case["tolerance"])).correct

    return check


def math_verify_checker() -> Callable[[dict], bool]:
    from math_verify import parse, verify

    def check(case: dict) -> bool:
        gold = parse("$" + case["reference"] + "$")
        pred = parse(response_of(case))
        tol = case["tolerance"] or {}
        kwargs = {"float_rounding": 6}
        if tol.get("rel") is not None:
            kwargs["numeric_precision"] = max(1, int(-__import__("math").log10(tol["rel"])))
        try:
            return bool(verify(gold, pred, **kwargs))
        except Exception:  # noqa: BLE001 - a crash is a "no" for the benchmark
            return False

    return check


def run(name: str, check: Callable[[dict], bool], cases: list[dict]) -> dict:
    check(cases[0])  # first-use costs (parsers, workers) are not part of throughput
    lat, per_cat = [], defaultdict(lambda: {"n": 0, "fp": 0, "fn": 0})
    t0 = time.perf_counter()
    for case in cases:
        s = time.perf_counter()
        got = check(case)
        lat.append(time.perf_counter() - s)
        c = per_cat[case["category"]]
        c["n"] += 1
        if got and not case["expected"]:
            c["fp"] += 1
        elif not got and case["expected"]:
            c["fn"] += 1
    total = time.perf_counter() - t0
    fp = sum(c["fp"] for c in per_cat.values())
    fn = sum(c["fn"] for c in per_cat.values())
    return {"name": name, "acc": 1 - (fp + fn) / len(cases), "fp": fp, "fn": fn, "cps": len(cases) / total,
            "p50": statistics.median(lat), "p100": max(lat), "cats": per_cat}


def report(set_name: str, cases: list[dict], ours_check: Callable[[dict], bool],
           base_check: Callable[[dict], bool]) -> None:
    print(f"\n=== {set_name} set: {len(cases)} rows ({sum(c['expected'] for c in cases)} positive) ===")
    results = [run("loong_env", ours_check, cases), run("math-verify 0.9.0", base_check, cases)]
    print(f"{'verifier':<20}{'accuracy':>10}{'FP':>5}{'FN':>5}{'checks/s':>10}{'p50 ms':>9}{'p100 ms':>9}")
    for r in results:
        print(f"{r['name']:<20}{r['acc']:>10.1%}{r['fp']:>5}{r['fn']:>5}{r['cps']:>10.1f}{r['p50'] * 1e3:>9.2f}"
              f"{r['p100'] * 1e3:>9.1f}")
    ours, base = results
    print(f"ratio loong_env/math-verify: checks/s x{ours['cps'] / base['cps']:.2f}, "
          f"accuracy {ours['acc'] - base['acc']:+.1%}")
    print(f"{'category':<18}{'rows':>5}  {'loong FP/FN':>12}  {'math-verify FP/FN':>18}")
    for cat in sorted(ours["cats"]):
        a, b = ours["cats"][cat], base["cats"][cat]
        print(f"{cat:<18}{a['n']:>5}  {a['fp']:>5}/{a['fn']:<6}  {b['fp']:>10}/{b['fn']:<6}")


def main() -> None:
    names = sys.argv[1:] or list(SETS)
    unknown = [n for n in names if n not in SETS]
    if unknown:
        raise SystemExit(f"unknown set(s) {unknown}; expected some of {list(SETS)}")
    print("hardware:", hardware())
    t = time.perf_counter()
    warm_up()
    print(f"loong_env worker warm-up: {time.perf_counter() - t:.1f} s (not counted below)")
    ours_check, base_check = loong_checker(), math_verify_checker()
    for name in names:
        report(name, load(name), ours_check, base_check)


if __name__ == "__main__":
    main()
