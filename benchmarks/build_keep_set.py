"""Build the keep-precision set (benchmarks/data/keep_set.jsonl) from our seeds; a step of its own, resumable.

    .venv/bin/python benchmarks/build_keep_set.py [--written benchmarks/data/written.jsonl] [--right 60]

Three kinds of code answers to questions whose answer is known (our seeds; a record names its seed by id,
the question is read from the seeds at replay):

* `dropped_condition`: the shared-misreading kind. A seed's own (correct) program with one stated
  condition or quantity dropped or misread: an `if` filter made always true, one clause of an `and`
  removed, a comprehension's filter deleted, a comparison with a number made always true, a bound's
  strictness flipped (at most read as less than), or a literal operand dropped (12 + 7 -> 12). Per seed
  program, the first mutant that still runs and prints an answer other than the known one is kept.
* `model_written`: code the local writer wrote for the seed's question (collect_keep_set.py, one pass at
  temperature 0 and one at 0.8), right or wrong as it came. A seed's answer already in the set (equivalent
  to one an earlier pass printed) is not added again: the same question with the same answer is the same
  test of the keep rule.
  Held-out questions (collect_keep_set.py --held-out: a folder of ../shared/loong_sample, records whose
  own rationale prints their answer) add the writer's code on questions no one here wrote; such a record
  names its question by `source` and `index` only, and is left out where the sample is absent.
* `seed_code`: the seed's own program: a right code answer (recall).

An existing set keeps its dropped-condition and seed records (they depend only on the seeds); the written
passes are read again, so a new pass adds its records without touching the ones already measured (the
solve caches are keyed by record). `--rebuild` redoes the mutants and the seed picks too.
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import json
import random
from pathlib import Path

import _loong

from loong_env.equivalence import compare
from loong_env.sandbox import Sandbox
from loong_env.seeds.dataset import default_root, load_seeds
from loong_env.types import Tolerance
from loong_env.verifiers.code_output import execution_problem, read_answer


class _Dropper(ast.NodeTransformer):
    """Drops the `target`-th condition it meets (counted in walk order); `done` says what it dropped."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.seen = -1
        self.done = ""

    def _hit(self) -> bool:
        self.seen += 1
        return self.seen == self.target

    def visit_If(self, node: ast.If) -> ast.AST:
        self.generic_visit(node)
        if not node.orelse and self._hit():
            self.done = f"if {ast.unparse(node.test)} -> always"
            node.test = ast.Constant(True)
        return node

    def visit_BoolOp(self, node: ast.BoolOp) -> ast.AST:
        self.generic_visit(node)
        if isinstance(node.op, ast.And) and self._hit():
            dropped = node.values[-1]
            self.done = f"dropped clause {ast.unparse(dropped)}"
            rest = node.values[:-1]
            return rest[0] if len(rest) == 1 else ast.BoolOp(op=ast.And(), values=rest)
        return node

    def visit_comprehension(self, node: ast.comprehension) -> ast.AST:
        self.generic_visit(node)
        if node.ifs and self._hit():
            self.done = f"dropped filter {ast.unparse(node.ifs[-1])}"
            node.ifs = node.ifs[:-1]
        return node

    def visit_Compare(self, node: ast.Compare) -> ast.AST:
        self.generic_visit(node)
        bounded = any(
            isinstance(c, ast.Constant) and isinstance(c.value, int | float) for c in node.comparators
        )
        if bounded and isinstance(node.ops[0], ast.Lt | ast.LtE | ast.Gt | ast.GtE) and self._hit():
            self.done = f"dropped bound {ast.unparse(node)}"
            return ast.Constant(True)
        flip = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt}
        if len(node.ops) == 1 and type(node.ops[0]) in flip and self._hit():
            before = ast.unparse(node)
            node.ops = [flip[type(node.ops[0])]()]
            self.done = f"misread the bound {before} as {ast.unparse(node)}"
        return node

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        self.generic_visit(node)
        if not isinstance(node.op, ast.Add | ast.Sub | ast.Mult | ast.Div):
            return node
        for kept, dropped in ((node.left, node.right), (node.right, node.left)):
            if isinstance(dropped, ast.Constant) and isinstance(dropped.value, int | float) and self._hit():
                self.done = f"dropped the quantity {ast.unparse(dropped)} from {ast.unparse(node)}"
                return kept
        return node


def mutants(code: str, limit: int = 8) -> list[tuple[str, str]]:
    """(mutated code, what was dropped) for the first `limit` conditions of the program."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return []
    out = []
    for target in range(limit):
        dropper = _Dropper(target)
        new = dropper.visit(ast.parse(code))
        if not dropper.done:
            break
        out.append((ast.unparse(ast.fix_missing_locations(new)), dropper.done))
    del tree
    return out


def _same(a: str, b: str, tolerance: Tolerance | None) -> bool:
    """Equivalent answers, as the env's judge sees them."""
    return compare(a, b, tolerance=tolerance).equal


async def _dropped(seeds: list) -> list[dict]:
    """One dropped-condition mutant per seed program: the first that runs and prints another answer."""
    records: list[dict] = []
    boxes: dict[tuple[str, ...], Sandbox] = {}
    for dp in seeds:
        reqs = tuple(dp.required_dependencies)
        if reqs not in boxes:
            boxes[reqs] = Sandbox.shared(list(reqs), timeout_s=10.0, workers=1)
        found = 0
        for code, what in mutants(dp.rationale):
            result = await boxes[reqs].run(code)
            if execution_problem(result) is not None or (read := read_answer(result.stdout)) is None:
                continue
            if len(read.answer) > 200:
                continue
            same = (
                await asyncio.to_thread(compare, read.answer, dp.final_answer, tolerance=dp.answer_tolerance)
            ).equal
            if not same:
                records.append(
                    {
                        "key": f"{dp.id}:dropped:{found}",
                        "id": dp.id,
                        "domain": dp.domain,
                        "kind": "dropped_condition",
                        "code": code,
                        "answer": read.answer,
                        "correct": False,
                        "mutation": what,
                    }
                )
                print(
                    f"{dp.domain}: {what} -> {read.answer[:40]!r} (known {dp.final_answer[:40]!r})",
                    flush=True,
                )
                break

    return records


def _picked(seeds: list, right: int, difficulty: int, seed: int) -> list[dict]:
    """Seed programs as right code answers, drawn across domains."""
    records: list[dict] = []
    rng = random.Random(seed)
    # right answers from questions a 0.5B solver can reach (the demo's env serves levels 1-2 too): recall on
    # questions no solve can answer would measure the solver, not the keep rule
    pool = [dp for dp in seeds if len(dp.final_answer) <= 200 and (dp.difficulty or 1) <= difficulty]
    rng.shuffle(pool)
    by_domain: dict[str, list] = {}
    for dp in pool:
        by_domain.setdefault(dp.domain, []).append(dp)
    picked: list = []
    while len(picked) < right and any(by_domain.values()):
        for domain in sorted(by_domain):
            if by_domain[domain] and len(picked) < right:
                picked.append(by_domain[domain].pop())
    for dp in picked:
        records.append(
            {
                "key": f"{dp.id}:seed",
                "id": dp.id,
                "domain": dp.domain,
                "kind": "seed_code",
                "code": dp.rationale,
                "answer": dp.final_answer,
                "correct": True,
            }
        )
    return records


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--written",
        nargs="+",
        default=[
            "benchmarks/data/written.jsonl",
            "benchmarks/data/written_t08.jsonl",
            "benchmarks/data/written_loong.jsonl",
        ],
        help="collect_keep_set.py outputs, in order; an answer a seed already has in the set is not added again",
    )
    parser.add_argument("--rebuild", action="store_true", help="redo the mutants and seed picks too")
    parser.add_argument("--out", default="benchmarks/data/keep_set.jsonl")
    parser.add_argument("--right", type=int, default=52, help="seed programs kept as right code answers")
    parser.add_argument(
        "--right-difficulty", type=int, default=2, help="hardest seed level drawn for right code answers"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    seeds = list(load_seeds(default_root(), on_error="skip"))
    by_id = {dp.id: dp for dp in seeds}
    out = Path(args.out)
    kept_from = [json.loads(line) for line in out.read_text().splitlines() if line] if out.exists() else []
    if kept_from and not args.rebuild:  # the mutants and the seed picks are fixed: only add what was written
        records = [r for r in kept_from if r["kind"] != "model_written"]
        print(f"{len(records)} dropped-condition and seed records kept from {out} (--rebuild to redo them)")
    else:
        records = await _dropped(seeds) + _picked(seeds, args.right, args.right_difficulty, args.seed)
    rows = [
        json.loads(line)
        for written in map(Path, args.written)
        for line in (written.read_text().splitlines() if written.exists() else [])
    ]
    held = _loong.by_id({row["source"] for row in rows if row.get("source")})
    printed: dict[str, list[str]] = {}  # per seed, the answers already in the set: a repeat adds nothing
    for row in rows:
        if row.get("answer") is None:
            continue
        if row.get("source"):
            if row["id"] not in held:  # the sample is absent here: its records cannot be checked
                continue
            seed = held[row["id"]][1]
        elif row["id"] in by_id:
            seed = by_id[row["id"]]
        else:
            continue
        seen = printed.setdefault(seed.id, [])
        if any(_same(row["answer"], a, seed.answer_tolerance) for a in seen):
            continue
        seen.append(row["answer"])
        records.append(
            {
                "key": f"{row['id']}:written:{row.get('temperature', 0)}",  # held-out ids are others
                "id": row["id"],
                "domain": row["domain"],
                "kind": "model_written",
                "code": row["code"],
                "answer": row["answer"],
                "correct": bool(row["correct"]),
            }
            | ({"source": row["source"], "index": row["index"]} if row.get("source") else {})
        )

    random.Random(args.seed).shuffle(records)  # a replay stopped early has measured an unbiased part
    Path(args.out).write_text("".join(json.dumps(r) + "\n" for r in records))
    kinds: dict[str, list[int]] = {}
    for r in records:
        kinds.setdefault(r["kind"], [0, 0])[r["correct"]] += 1
    print(
        f"{len(records)} records -> {args.out}: "
        + ", ".join(f"{k}: {w} wrong / {c} right" for k, (w, c) in kinds.items())
    )


if __name__ == "__main__":
    asyncio.run(main())
