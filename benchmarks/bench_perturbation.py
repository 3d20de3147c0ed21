"""The perturbation check, measured without a model: wrong answers it rejects, right programs it rejects.

    nice -n 19 .venv/bin/python benchmarks/bench_perturbation.py [--set benchmarks/data/keep_set.jsonl]
        [--runs benchmarks/data/keep_set_runs.jsonl] [--out perturbation.jsonl] [--scopes conditions,quantities]
        [--max-runs 8] [--limit N]

Over the stored keep set (wrong code answers with one condition or quantity dropped or misread, and right
ones) and over every seed's own program against its own question (right by construction), each scope of
the check (`conditions`: the bounds and filters the question states; `quantities`: every stated number the
code holds) decides pass / `insensitive`. Reported per scope: wrong answers rejected (and those the static
checks, grounding and well-posedness, had not already rejected), right answers falsely rejected on the set
and on the seeds (each with the 95 % Wilson upper bound), and the extra sandbox runs and seconds per
candidate (median / p95: wall seconds of the concurrent runs, and the sandbox's own summed durations).

Every perturbed run's result goes to `--runs` (the `RunCache` the keep-set replay of
bench_keep_precision.py reads), every decision to `--out`: re-running resumes; a finished run re-tabulates.
Seconds are only measured on runs made now (cached runs cost nothing); run on a cold cache to time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

from _hardware import hardware
from _loong import REQS
from _loong import held_out as drawn

from loong_env.equivalence import compare
from loong_env.generators import checks, perturbation
from loong_env.generators.keep_set import RunCache, load_set, wilson_upper
from loong_env.sandbox import Sandbox
from loong_env.seeds.dataset import default_root, load_seeds, warmup_rationales
from loong_env.verifiers.code_output import execution_problem, read_answer


def _append(path: Path, row: dict) -> None:
    with path.open("a") as f:
        f.write(json.dumps(row) + "\n")


def _pct(k: int, n: int) -> str:
    upper = wilson_upper(k, n)
    return (
        f"{k}/{n} ({100 * k / n:.1f} %, 95 % upper {100 * upper:.1f} %)" if n and upper is not None else "0/0"
    )


def _q(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", default="benchmarks/data/keep_set.jsonl")
    parser.add_argument("--runs", default="benchmarks/data/keep_set_runs.jsonl", help="the run cache")
    parser.add_argument("--out", default="perturbation.jsonl", help="one decision per line (resumable)")
    parser.add_argument("--scopes", default="conditions,quantities")
    parser.add_argument("--max-runs", type=int, default=8)
    parser.add_argument("--in-flight", type=int, default=2, help="candidates checked at once")
    parser.add_argument("--limit", type=int, default=None, help="first N set records and N seeds only")
    parser.add_argument(
        "--loong", action="append", help="held-out right programs: a Loong-format folder (repeatable)"
    )
    parser.add_argument(
        "--loong-limit", type=int, default=300, help="records drawn per Loong folder (seeded)"
    )
    args = parser.parse_args()
    print(f"hardware: {hardware()}")
    print(f"command: {' '.join(sys.argv)}")
    print(f"load average at start: {os.getloadavg()}")

    seeds = {dp.id: dp for dp in load_seeds(default_root(), on_error="skip")}
    records = load_set(args.set)[: args.limit]
    items = [
        {
            "key": r.key,
            "set": "keep_set",
            "id": r.id,
            "kind": r.kind,
            "correct": r.correct,
            "code": r.code,
            "answer": r.answer,
        }
        for r in records
    ]
    items += [
        {
            "key": f"{dp.id}:own",
            "set": "seeds",
            "id": dp.id,
            "kind": "seed_own",
            "correct": True,
            "code": dp.rationale,
        }
        for dp in list(seeds.values())[: args.limit]
    ]
    for r in items:
        r["question"] = seeds[r["id"]].question
        r["reqs"] = tuple(seeds[r["id"]].required_dependencies)
        r["known"] = seeds[r["id"]].final_answer
    held_out = []
    for folder in args.loong or []:  # held out: a right program is one that prints its record's answer
        held_out += [
            {"key": f"loong:{Path(folder).name}:{dp.id}", "set": "loong", "id": dp.id, "kind": "loong_own",
             "correct": True, "code": dp.rationale, "question": dp.question, "reqs": REQS,
             "known": dp.final_answer}
            for _, dp in drawn(folder, args.loong_limit)
        ]  # fmt: skip
    items += list({r["key"]: r for r in held_out}.values())  # upstream holds a few records twice
    cache = RunCache(args.runs)
    out = Path(args.out)
    done: dict[tuple[str, str], dict] = {}
    if out.exists():
        for line in out.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            done[(row["key"], row["scope"])] = row
    boxes: dict[tuple[str, ...], Sandbox] = {}

    def sandbox(reqs: tuple[str, ...]) -> Sandbox:
        if reqs not in boxes:
            boxes[reqs] = Sandbox.shared(list(reqs), timeout_s=10.0, warmup=warmup_rationales(list(reqs)))
        return boxes[reqs]

    gate = asyncio.Semaphore(args.in_flight)
    t0 = time.perf_counter()
    finished = [0]

    async def one(item: dict, scope: str) -> None:
        if (item["key"], scope) in done:
            return
        question, reqs = item["question"], item["reqs"]
        async with gate:
            runner = cache.runner(reqs, sandbox(reqs))
            answer = item.get("answer")
            if answer is None:  # a seed's own program: the answer it prints, as the keep rule reads it
                result = await runner.run(item["code"])
                read = None if execution_problem(result) else read_answer(result.stdout)
                answer = read.answer if read else None
                if item["set"] == "loong" and answer is not None:
                    same = await asyncio.to_thread(compare, answer, item["known"])
                    answer = answer if same.equal else None  # a program that misses its answer is not right
            static = None
            if not checks.well_posedness(question).passed:
                static = "ill_posed"
            elif not checks.grounding(question, item["code"]).passed:
                static = "ungrounded"
            row = {k: item[k] for k in ("key", "set", "id", "kind", "correct")} | {
                "scope": scope,
                "static": static,
                "targets": [t.value for t in perturbation.targets(question, item["code"], scope)],
            }
            if answer is None:
                row |= {"passed": None, "detail": "the original code printed no answer (or not its own)"}
            else:
                ran_before = cache.ran
                found = await perturbation.sensitivity(
                    question, item["code"], answer, runner, max_runs=args.max_runs, scope=scope
                )
                row |= {
                    "passed": found.passed,
                    "undecided": found.undecided,
                    "detail": found.detail,
                    "runs": found.runs,
                    "failed": sum(m.outcome == "failed" for m in found.moves),
                    "wall_s": found.seconds if cache.ran - ran_before == found.runs else None,
                    "run_s": found.run_s,
                    "moves": [m.model_dump(exclude={"phrase"}) for m in found.moves],
                }
        done[(item["key"], scope)] = row
        _append(out, row)
        finished[0] += 1
        if finished[0] % 50 == 0:
            print(f"  {finished[0]} decided in {time.perf_counter() - t0:.0f}s", flush=True)

    for scope in args.scopes.split(","):
        await asyncio.gather(*(one(item, scope) for item in items))

    print(f"\n{cache.ran} sandbox runs made now in {time.perf_counter() - t0:.0f}s")
    print(f"load average at end: {os.getloadavg()}")
    for scope in args.scopes.split(","):
        rows = [done[(i["key"], scope)] for i in items if (i["key"], scope) in done]
        wrong = [r for r in rows if r["set"] == "keep_set" and not r["correct"]]
        right = [r for r in rows if r["set"] == "keep_set" and r["correct"]]
        own = [r for r in rows if r["set"] == "seeds" and r.get("passed") is not None]
        caught = [r for r in wrong if r.get("passed") is False]
        new = [r for r in caught if r["static"] is None]
        print(f"\nscope {scope!r} (max {args.max_runs} extra runs per candidate):")
        print(
            f"  wrong answers rejected: {_pct(len(caught), len(wrong))}; not already rejected by the static"
        )
        print(f"    checks: {len(new)} (static checks alone: {sum(r['static'] is not None for r in wrong)})")
        print(
            f"    by kind: {dict(Counter(r['kind'] for r in caught))} of {dict(Counter(r['kind'] for r in wrong))}"
        )
        print(f"    testable (a stated number maps to a literal): {sum(bool(r['targets']) for r in wrong)}")
        fr = [r for r in right if r.get("passed") is False]
        fo = [r for r in own if r["passed"] is False]
        print(f"  right answers of the set falsely rejected: {_pct(len(fr), len(right))}")
        print(f"  seeds' own programs falsely rejected: {_pct(len(fo), len(own))}")
        both = [r for r in right + own if r.get("passed") is not None]
        print(f"  right programs (set + seeds) falsely rejected: {_pct(len(fr) + len(fo), len(both))}")
        loong = [r for r in rows if r["set"] == "loong" and r.get("passed") is not None]
        fl = [r for r in loong if r["passed"] is False]
        if loong or held_out:
            print(
                f"  held-out Loong programs that print their answer, falsely rejected: {_pct(len(fl), len(loong))}"
                f" ({sum(r['set'] == 'loong' for r in rows) - len(loong)} of those drawn missed their answer)"
            )
        for r in fr + fo + fl:
            print(f"    FALSE {r['key']}: {r['detail'][:300]}")
        decided = [r for r in rows if r.get("passed") is not None]
        runs = [r["runs"] for r in decided]
        # seconds per candidate: 0 when no stated number maps to a literal (no run); wall seconds only where
        # every run of the candidate was made now (a cached run costs nothing)
        walls = [
            0.0 if not r["runs"] else r["wall_s"]
            for r in decided
            if not r["runs"] or r.get("wall_s") is not None
        ]
        tested_walls = [r["wall_s"] for r in decided if r["runs"] and r.get("wall_s") is not None]
        run_s = [r["run_s"] for r in decided]
        print(
            f"  extra runs per candidate: median {_q(runs, 0.5):.0f}, p95 {_q(runs, 0.95):.0f}, max "
            f"{max(runs, default=0)}; {sum(bool(n) for n in runs)} of {len(runs)} candidates tested; "
            f"{sum(r.get('failed', 0) for r in rows)} moved runs timed out or hit a limit"
        )
        print(
            f"  added wall seconds per candidate: median {_q(walls, 0.5):.2f}, p95 {_q(walls, 0.95):.2f} (of "
            f"{len(walls)}); per tested candidate: median {_q(tested_walls, 0.5):.2f}, p95 "
            f"{_q(tested_walls, 0.95):.2f} (of {len(tested_walls)} timed now)"
        )
        print(
            f"  summed sandbox durations per candidate: median {_q(run_s, 0.5):.2f}, p95 {_q(run_s, 0.95):.2f}"
        )


if __name__ == "__main__":
    asyncio.run(main())
