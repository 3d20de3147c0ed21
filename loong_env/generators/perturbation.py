"""The perturbation check: a stated number the code holds as a literal must move the printed answer.

The static grounding check asks only that each stated number appear as a live literal. Code can hold a
number and still ignore it (`if s < 15 or True`, a bound that no longer binds, `order = 4` and a loop that
never reads it), and a solve by the same model shares that reading. So each stated number of the question
(`checks.quantities`: every one, or with scope "conditions" only the bounds and filters) that maps to
literals of the code is perturbed, all its occurrences together (a bound written twice moves as one), and
the code runs again in the same sandbox, concurrently:

* stage 1, one run per number: its literals halved (a smaller input: cheap, rarely a timeout);
* stage 2, only for numbers whose answer did not move: the literals -1, +1 and doubled (a float: x0.9,
  x1.1, x2); a move that gives the same code as an earlier one (2 halved and 2 - 1) is not run twice.

Beyond single numbers, two kinds of stated data are moved as wholes (scope "quantities"): a **table**
(a list, tuple or set of 3 or more numbers, rows nested or not, at least three quarters of them stated in
the question: a matrix of scores, a sample) moves one cell per run, its largest doubled, then the largest
zeroed, the smallest and the middle one doubled (an optimum uses a few cells: the largest is the likeliest to
bind, and zeroing it reaches a minimum); a **text** (a string of 4 or more letters or digits, upper case or
with a digit, that the question states and the code spells once: ACGCGTTACG) runs doubled, reversed and
without its first character. Code that holds the question's table or sequence and prints the same answer
whatever it holds, ignores it.

A yes/no answer is not tested: a moved input keeps a two-valued answer as often as not (measured: on the
held-out Loong graph questions it made every one of 11 false rejections of its kind, and caught no wrong one).

A moved run *responds* when it prints another answer, raises, or prints nothing: an ignored number cannot
make code crash, so a crash is evidence that the number reaches the computation (measured: counting it so
rejects no fewer wrong programs and fewer right ones). A moved run that times out, runs out of memory or
is killed is no evidence either way (it depends on the machine's load and on how large the moved input
is): it is counted apart. A number is *insensitive* when all its moves ran, at least two gave an answer,
and every answer was the original one; the first insensitive number is named in the detail. A number whose
moves the run cap (`max_runs`) cut is undecided and passes.

Literals are found and changed on the AST (exactly the matched `ast.Constant` nodes, by position in the
tree, then `ast.unparse`): never a text replace, so `15` inside `150` or a string is never touched.
"""

from __future__ import annotations

import ast
import asyncio
import math
import re
import time
from collections import Counter
from fractions import Fraction
from typing import Literal

from pydantic import BaseModel, Field

from loong_env.generators import checks
from loong_env.generators.verdict import Runner
from loong_env.verifiers.code_output import OutputStatus, execution_problem, read_answer

Scope = Literal["conditions", "quantities"]
Kind = Literal["number", "table", "text"]
MOVES: dict[Kind, tuple[str, ...]] = {  # stage 1: the first; stage 2: the rest, for targets not moved
    "number": ("halved", "-1", "+1", "doubled"),
    "table": ("largest doubled", "largest zeroed", "smallest doubled", "middle doubled"),  # one cell each
    "text": ("doubled", "reversed", "first character dropped"),
}


class Move(BaseModel):
    """One perturbed run of the code: which stated number, how its literals moved, and what it printed."""

    value: str = Field(description="The stated number, as `checks.quantities` shows it.")
    phrase: str
    move: str
    literals: list[str] = Field(description="The literals changed, as 'old -> new (line N)'.")
    new: str = Field(description="The first changed literal's new value.")
    outcome: Literal["changed", "unchanged", "raised", "failed"] = "failed"
    answer: str | None = None
    detail: str = ""
    run_s: float = Field(0.0, description="The sandbox's own duration of the run.")


class Sensitivity(BaseModel):
    """The check's answer: passed, or the first insensitive stated number named; the runs it made."""

    passed: bool
    detail: str = ""
    undecided: bool = Field(False, description="Nothing was tested (no stated number maps to a literal).")
    moves: list[Move] = Field(default_factory=list)
    seconds: float = Field(0.0, description="Wall seconds of the perturbed runs (concurrent).")

    @property
    def runs(self) -> int:
        """Perturbed runs made."""
        return len(self.moves)

    @property
    def run_s(self) -> float:
        """Summed sandbox durations of the perturbed runs (what they cost, however concurrent)."""
        return round(sum(m.run_s for m in self.moves), 4)


class _Target(BaseModel):
    """A stated number, table or text and the positions (`ast.walk` order) of the literals that carry it."""

    value: str
    phrase: str
    condition: bool
    nodes: list[int]
    kind: Kind = "number"


def _fstring_ids(tree: ast.AST) -> set[int]:
    """ids of the nodes inside f-strings: their literals are formatting, never the question's data."""
    return {id(n) for j in ast.walk(tree) if isinstance(j, ast.JoinedStr) for n in ast.walk(j)}


def _literal_nodes(tree: ast.AST) -> list[tuple[int, ast.Constant]]:
    """(walk index, node) of each live numeric literal: not a bool, not inside an f-string, not dead."""
    dead = checks.dead_constant_ids(tree)
    inside_fstring = _fstring_ids(tree)
    out = []
    for index, node in enumerate(ast.walk(tree)):
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, int | float)
            and not isinstance(node.value, bool)
            and math.isfinite(node.value)
            and id(node) not in dead
            and id(node) not in inside_fstring
        ):
            out.append((index, node))
    return out


def _same(a: Fraction, b: Fraction) -> bool:
    """Equal, or equal to 6 significant digits (0.05 for 5 %, 6.626e-34 written in full)."""
    try:
        return a == b or math.isclose(float(a), float(b), rel_tol=1e-6)
    except OverflowError:  # an integer too large for a float: only exact equality counts
        return False


def _tabled_ids(tree: ast.AST) -> set[int]:
    """ids of the literals that are data in a table: an element of a list / tuple / set of 3 or more, or of
    a row nested in one (one arc's capacity in a network, one cell of a matrix: rarely binding alone)."""
    displays = (ast.List, ast.Tuple, ast.Set)

    def cells(display: ast.List | ast.Tuple | ast.Set) -> set[int]:
        bare = (e.operand if isinstance(e, ast.UnaryOp) else e for e in display.elts)
        return {id(e) for e in bare if isinstance(e, ast.Constant)}

    found: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, displays):
            if len(node.elts) >= 3:
                found |= cells(node)
            for row in node.elts:
                if isinstance(row, displays):
                    found |= cells(row)
    return found


def _bound_ids(tree: ast.AST) -> set[int]:
    """ids of the literals that are bounds: `range(...)` arguments and the operands of a comparison."""
    found: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "range":
            operands = list(node.args)
        elif isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
        else:
            continue
        for operand in operands:
            if isinstance(operand, ast.UnaryOp):
                operand = operand.operand
            if isinstance(operand, ast.Constant):
                found.add(id(operand))
    return found


def targets(question: str, code: str, scope: Scope = "quantities") -> list[_Target]:
    """The stated numbers (conditions, or every quantity) that map to literals of the code, in order.

    The literals equal to the number or to it rescaled (percent, units: a fraction or a literal >= 100) move
    together; only when there is none does a bound written +- 1 count (for a condition: an integer in
    `range(...)` or a comparison, `range(1, 41)` for "at most 40"), as the grounding check allows. A literal
    1 never stands for another number; a number also held as a datum of a table (a list of 3 or more, or a
    row of one) is not tested at all.
    """
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return []
    literals = _literal_nodes(tree)
    index_of = {id(node): index for index, node in literals}
    bounds = _bound_ids(tree)
    tabled = _tabled_ids(tree)
    found: list[_Target] = []
    taken: set[int] = set()
    for q in checks.quantities(question):
        if (scope == "conditions" and not q.condition) or q.value in ("0", "1"):
            continue
        value = Fraction(q.value)
        scaled = [value * s for s in checks.SCALES[1:]]
        tiers: tuple[list[ast.Constant], list[ast.Constant], list[ast.Constant]] = ([], [], [])
        for index, node in literals:
            lit = abs(Fraction(node.value))
            if index in taken or lit == 0:
                continue
            if _same(lit, value):
                tiers[0].append(node)
            elif lit == 1:  # a 1 is everywhere (range starts, 1 - p): never a re-spelled number
                continue
            elif (
                q.condition
                and isinstance(node.value, int)
                and id(node) in bounds
                and lit in (value - 1, value + 1)
            ):
                tiers[1].append(node)
            elif (lit.denominator != 1 or lit >= 100) and any(_same(lit, s) for s in scaled):
                tiers[2].append(node)  # 0.05 for 5 %, 300 for 5 minutes; never a small integer (180 / 60)
        chosen = tiers[0] + tiers[2] or tiers[1]  # "3 %" moves 0.03 and a 3.0 together: one is the rate
        nodes = [index_of[id(n)] for n in chosen if id(n) not in tabled]
        if nodes and len(nodes) == len(chosen):  # a number that is also a datum of a table is not tested
            taken.update(nodes)
            found.append(_Target(value=q.value, phrase=q.phrase, condition=q.condition, nodes=nodes))
    if scope == "quantities":
        stated = [Fraction(q.value) for q in checks.quantities(question)]
        found += _tables(tree, literals, stated) + _texts(question, tree)
    return found


def _tables(tree: ast.AST, literals: list[tuple[int, ast.Constant]], stated: list[Fraction]) -> list[_Target]:
    """The question's tables the code holds: a list / tuple / set (rows nested or not) of 3 or more live
    numbers, at least 3 and three quarters of them stated in the question (a matrix of scores, a sample)."""
    index_of = {id(node): index for index, node in literals}
    found: list[_Target] = []
    inside: set[int] = set()
    for node in ast.walk(tree):  # breadth first: a matrix is met before its rows
        if not isinstance(node, ast.List | ast.Tuple | ast.Set) or id(node) in inside:
            continue
        cells = [n for n in ast.walk(node) if isinstance(n, ast.Constant) and id(n) in index_of]
        stated_cells = [c for c in cells if any(_same(abs(Fraction(c.value)), v) for v in stated)]
        if len(stated_cells) < 3 or 4 * len(stated_cells) < 3 * len(cells):
            continue
        if len({c.value for c in cells}) < 2:  # (0, 0, 0, 0): a starting state, not the question's data
            continue
        inside |= {id(n) for n in ast.walk(node)}
        shown = ast.unparse(node)
        shown = shown if len(shown) <= 40 else shown[:37] + "..."
        found.append(
            _Target(
                value=f"table {shown} (line {node.lineno})",
                phrase=shown,
                condition=False,
                nodes=[index_of[id(c)] for c in cells],
                kind="table",
            )
        )
    return found


_DATA_TEXT = re.compile(r"[A-Za-z0-9]{4,}")


def _texts(question: str, tree: ast.AST) -> list[_Target]:
    """The question's data texts the code holds once: 4+ letters or digits, upper case or with a digit
    (ACGCGTTACG, 101101, HELLO), as a word of the question. A lower-case word may be a key or a name the
    code spells twice or passes on, and renaming it changes nothing; such strings are never tested."""
    strings = [n for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
    inside_fstring = _fstring_ids(tree)
    seen = Counter(n.value for n in strings)
    found: list[_Target] = []
    for index, node in enumerate(ast.walk(tree)):
        if not (isinstance(node, ast.Constant) and isinstance(node.value, str)) or id(node) in inside_fstring:
            continue
        text = node.value
        if (
            seen[text] == 1
            and _DATA_TEXT.fullmatch(text)
            and (text.isupper() or any(c.isdigit() for c in text))
            and re.search(rf"(?<![A-Za-z0-9]){re.escape(text)}(?![A-Za-z0-9])", question)
        ):
            shown = text if len(text) <= 24 else text[:21] + "..."
            found.append(
                _Target(value=f"text {shown!r}", phrase=shown, condition=False, nodes=[index], kind="text")
            )
    return found


def _moved(value: float, move: str) -> int | float:
    if move == "halved":
        return value // 2 if isinstance(value, int) else value / 2
    if move == "doubled":
        return value * 2
    step = 1 if move == "+1" else -1
    return value + step if isinstance(value, int) else value * (1 + 0.1 * step)


def _cell(nodes: list[tuple[int, ast.Constant]], move: str) -> int:
    """The walk index of the table cell a move changes: its largest (first met), smallest or middle value."""
    ranked = sorted(nodes, key=lambda item: (item[1].value, item[0]))
    if move in ("largest doubled", "largest zeroed"):
        top = ranked[-1][1].value
        return next(index for index, node in ranked if node.value == top)
    return ranked[0][0] if move == "smallest doubled" else ranked[len(ranked) // 2][0]


def _text_moved(text: str, move: str) -> str:
    if move == "doubled":
        return text + text
    return text[::-1] if move == "reversed" else text[1:]


def perturbed(code: str, target: _Target, move: str) -> tuple[str, list[str], str] | None:
    """The code with the target's literals moved (AST edit, then unparse), what changed; None if a no-op.

    A number's literals all move together; a table moves one cell (`_cell`); a text is rewritten whole."""
    tree = ast.parse(code)
    wanted = set(target.nodes)
    if target.kind != "number":
        walked = list(enumerate(ast.walk(tree)))
        nodes = [(i, n) for i, n in walked if i in wanted and isinstance(n, ast.Constant)]
        if not nodes:
            return None
        if target.kind == "table":
            index = _cell(nodes, move)
            node = dict(nodes)[index]
            new = 0 if move == "largest zeroed" else node.value * 2 if node.value else 1
        else:
            index, node = nodes[0]
            new = _text_moved(node.value, move)
        if new == node.value:
            return None
        old = node.value
        node.value = new
        shown = f"{new:g}" if target.kind == "table" else repr(new if len(new) <= 24 else new[:21] + "...")
        return ast.unparse(tree), [f"{old!r} -> {new!r} (line {node.lineno})"], shown
    changed: list[str] = []
    first = ""
    for index, node in enumerate(ast.walk(tree)):
        if index in wanted and isinstance(node, ast.Constant):
            new = _moved(node.value, move)
            if new != node.value:
                changed.append(f"{node.value!r} -> {new!r} (line {node.lineno})")
                first = first or f"{new:g}"
                node.value = new
    if not changed:
        return None
    return ast.unparse(tree), changed, first


_YES_NO = {"true", "false", "yes", "no"}

# A moved run that ran out of time or memory, or was killed, says nothing (it depends on the machine's load
# and on how big the moved input is); one that raised or printed nothing responded to the move.
_NO_EVIDENCE = (OutputStatus.timeout, OutputStatus.memory_limit, OutputStatus.killed)


async def _run(runner: Runner, code: str, original: str, base: Move) -> Move:
    result = await runner.run(code)
    took = {"run_s": round(result.duration_s, 4)}
    if (problem := execution_problem(result)) is not None:
        outcome = "failed" if problem.status in _NO_EVIDENCE else "raised"
        detail = f"{problem.status}: {problem.reason[:120]}"
        return base.model_copy(update={"outcome": outcome, "detail": detail, **took})
    read = read_answer(result.stdout)
    if read is None:
        return base.model_copy(update={"outcome": "raised", "detail": "printed nothing", **took})
    outcome = "unchanged" if read.answer == original else "changed"
    return base.model_copy(update={"outcome": outcome, "answer": read.answer[:80], **took})


async def sensitivity(
    question: str,
    code: str,
    answer: str,
    runner: Runner,
    *,
    max_runs: int = 8,
    scope: Scope = "quantities",
) -> Sensitivity:
    """Perturb each stated number the code holds (scope: conditions, or every quantity, table and text);
    name the first whose moves never moved the answer."""
    if answer.strip().lower() in _YES_NO:
        detail = (
            "a yes/no answer: a moved input keeps a two-valued answer as often as not, so it is not tested"
        )
        return Sensitivity(passed=True, undecided=True, detail=detail)
    found = targets(question, code, scope)
    if not found:
        detail = f"no stated number ({scope}) maps to a literal"
        return Sensitivity(passed=True, undecided=True, detail=detail)
    started = time.perf_counter()
    moves: list[Move] = []
    budget = max_runs

    tried: set[str] = set()

    async def stage(plan: list[tuple[_Target, str]]) -> list[Move]:
        jobs = []
        for target, move in plan:
            if (made := perturbed(code, target, move)) is None or made[0] in tried:
                continue  # a no-op, or the same code as an earlier move (2 halved and 2 - 1 are both 1)
            tried.add(made[0])
            base = Move(value=target.value, phrase=target.phrase, move=move, literals=made[1], new=made[2])
            jobs.append(_run(runner, made[0], answer, base))
        return list(await asyncio.gather(*jobs))

    first = [(t, MOVES[t.kind][0]) for t in found][:budget]
    moves += await stage(first)
    budget -= len(first)
    moved = {m.value for m in moves if m.outcome in ("changed", "raised")}
    cut: set[str] = {t.value for t in found[len(first) :]}
    second: list[tuple[_Target, str]] = []
    for target in found[: len(first)]:
        if target.value in moved:
            continue
        more = MOVES[target.kind][1:]
        if budget < len(more):
            cut.add(target.value)
            continue
        second += [(target, m) for m in more]
        budget -= len(more)
    moves += await stage(second)
    seconds = round(time.perf_counter() - started, 4)
    for target in found:
        if target.value in cut:
            continue
        mine = [m for m in moves if m.value == target.value]
        clean = [m for m in mine if m.outcome != "failed"]
        if len(clean) >= 2 and all(m.outcome == "unchanged" for m in clean):
            failed = len(mine) - len(clean)
            note = f"; {failed} moved run(s) timed out or hit a limit and were not counted" if failed else ""
            if target.kind == "number":
                kind = "condition" if target.condition else "quantity"
                held = clean[0].literals[0].split(" -> ")[0]
                where = clean[0].literals[0].rsplit("(", 1)[-1].rstrip(")")
                more = f" and {len(clean[0].literals) - 1} more" if len(clean[0].literals) > 1 else ""
                detail = (
                    f"the question's {kind} {target.value} ({target.phrase!r}) is the code's literal "
                    f"{held} ({where}{more}), but moved to {', '.join(m.new for m in clean)} the code still "
                    f"printed {answer[:60]!r}: it ignores the {kind}{note}"
                )
            else:
                changes = "; ".join(f"{m.move} ({m.literals[0].rsplit(' (', 1)[0]})" for m in clean)
                detail = (
                    f"the question's {target.value} is in the code, but moved ({changes}) the code still "
                    f"printed {answer[:60]!r}: it ignores the {target.kind}{note}"
                )
            return Sensitivity(passed=False, moves=moves, seconds=seconds, detail=detail)
    return Sensitivity(passed=True, moves=moves, seconds=seconds)
