"""The engine: cheap exact checks in-process, sympy in a killable worker, one deadline for the whole check."""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass
from fractions import Fraction

from pydantic import BaseModel

from loong_env.equivalence.choices import choice_letter, read_choice
from loong_env.equivalence.labels import drop_labels, ratio_values, split_equation, strip_label
from loong_env.equivalence.lists import MATH_WORDS, RELATION_RE, expand_alternatives, is_words
from loong_env.equivalence.normalize import normalize
from loong_env.equivalence.numbers import parse_number
from loong_env.equivalence.pool import WorkerCrash, WorkerTimeout, get_pool
from loong_env.equivalence.rounding import answer_place, half_unit, rounds_to
from loong_env.equivalence.structure import Atom, Node, Shape, ShapeError, parse_shape
from loong_env.equivalence.times import parse_clock, same_clock
from loong_env.equivalence.undefined import looks_undefined, may_be_undefined
from loong_env.equivalence.units import is_measured, numbers_equal, parse_quantity, same_quantity
from loong_env.errors import LoongError
from loong_env.types import Tolerance

DEFAULT_TIMEOUT_S = 1.5
MAX_ANSWER_CHARS = 10_000

Tol = tuple[float | None, float | None] | None


class Comparison(BaseModel):
    """The verdict on two answers; `error` is set when the check could not decide (parse failure, timeout)."""

    equal: bool
    reason: str
    error: str | None = None


class Undecided(LoongError):
    """A part of the check could not be decided; carries the reason for `Comparison.error`."""


@dataclass
class _Ctx:
    tol: Tol
    deadline: float
    units_rounded: bool = False  # a reference quantity with a unit is read at its significant figures
    numbers_rounded: bool = False  # so is a bare reference number (the domain opted in: sig_figs)


_COUNTED_RE = re.compile(r"(?P<num>.*?\d\}?)\s+(?P<noun>[A-Za-z]{3,}(?: [A-Za-z]{3,})?)")
# Words after a number that change its value or meaning: `3 hundred`, `5 factorial`, `2 squared`, `6 or more`.
_NOT_NOUNS = {
    "more",
    "less",
    "than",
    "least",
    "most",
    "and",
    "times",
    "plus",
    "minus",
    "over",
    "per",
    "choose",
    "mod",
    "modulo",
    "percent",
    "divided",
    "squared",
    "cubed",
    "root",
    "not",
    "only",
    "each",
    "factorial",
    "hundred",
    "hundreds",
    "thousand",
    "thousands",
    "million",
    "millions",
    "billion",
    "billions",
    "trillion",
    "trillions",
    "dozen",
    "dozens",
    "half",
    "halves",
    "quarter",
    "quarters",
    "third",
    "thirds",
    "power",
    "powers",
    "fold",
    "score",
    "gross",
    "lakh",
    "crore",
    "digits",
    "decimal",
    "decimals",
    "base",
}


def _counted(text: str) -> tuple[str, str] | None:
    """`15 students`, `12.50 dollars`: a number then a plain noun that is not a unit -> (number, noun)."""
    m = _COUNTED_RE.fullmatch(text)
    if m is None or parse_number(m.group("num")) is None:
        return None
    noun = m.group("noun").casefold()
    if any(w in _NOT_NOUNS or w in MATH_WORDS or w.endswith(("th", "ths")) for w in noun.split()):
        return None  # `3 tenths` is not 3 of something
    if parse_quantity(text) is not None or _any_unit(m.group("noun")):
        return None
    return m.group("num"), noun.rstrip("s")


def _any_unit(word: str) -> bool:
    """Whether pint reads `word` as a unit at all (also dimensionless ones such as `dozen` or `ppm`)."""
    from loong_env.equivalence.units import registry

    try:
        registry().parse_units(word.replace(" ", "*"))
    except Exception:  # noqa: BLE001 - pint raises many kinds; not a unit is the only meaning here
        return False
    return True


def _worker(a: str, b: str, ctx: _Ctx) -> tuple[bool, str]:
    remaining = ctx.deadline - time.monotonic()
    if remaining <= 0:
        raise Undecided("time bound reached before the symbolic check")
    try:
        resp = get_pool().call({"a": a, "b": b, "tol": list(ctx.tol) if ctx.tol else None}, remaining)
    except WorkerTimeout:
        raise Undecided(f"symbolic check timed out (bound {DEFAULT_TIMEOUT_S} s)") from None
    except WorkerCrash as exc:
        raise Undecided(f"symbolic worker failed: {exc}") from None
    if resp.get("error"):
        raise Undecided(resp["error"])
    return bool(resp["equal"]), str(resp["reason"])


def _rounds(value: Fraction, text: str, reference: Fraction, reference_text: str) -> bool:
    """Whether `value` (written as `text`) rounds to a reference written as `reference_text`."""
    half = half_unit(reference_text.strip().removesuffix("%"))
    if half is None:
        return False
    return rounds_to(value, answer_place(text.strip().removesuffix("%")), reference, half)


def _numbers(a: str, b: str, ctx: _Ctx) -> tuple[bool, str] | None:
    na, nb = parse_number(a), parse_number(b)
    if na is None or nb is None:
        return None
    if na.percent == nb.percent:
        if numbers_equal(na.value, nb.value, ctx.tol):
            return True, "numbers"
        if ctx.numbers_rounded and _rounds(na.value, a, nb.value, b):
            return True, f"numbers: rounds to the reference's {b.strip()}"
        return False, "numbers"
    # One side wrote "%": 50% may be answered as 50 or as 0.5.
    pct, other = (na, nb) if na.percent else (nb, na)
    ok = numbers_equal(pct.value, other.value, ctx.tol) or numbers_equal(
        pct.value / 100, other.value, ctx.tol
    )
    return ok, "percentages"


def _identical(text: str, ctx: _Ctx) -> tuple[bool, str]:
    """Two identical spellings are equal, unless sympy finds the value undefined (`\\frac{1}{x-x}`)."""
    if not may_be_undefined(text):
        return True, "identical"
    try:
        return _worker(text, text, ctx)
    except Undecided:
        if looks_undefined(text):
            raise
        return True, "identical (sympy could not evaluate it)"


def _clocks(a: str, b: str) -> tuple[bool, str] | None:
    """A time of day equals only the same time (`2:30` is never the ratio `1:15`); None if neither is one."""
    ca, cb = parse_clock(a), parse_clock(b)
    if ca is None and cb is None:
        return None
    if ca is None or cb is None:
        return False, "a clock time against something that is not one"
    return same_clock(ca, cb)


def _atoms(a: Atom, b: Atom, ctx: _Ctx) -> tuple[bool, str]:
    if a.string is not None or b.string is not None:
        if a.string is not None and b.string is not None:
            return a.string == b.string, "strings"
        s, other = (a.string, b.text) if a.string is not None else (b.string, a.text)
        if parse_number(other) is not None or not is_words(other):
            return False, "a string against a non-string"
        return s.casefold() == other.casefold(), "string against text"
    x, y = a.text, b.text
    if x == y:
        return _identical(x, ctx)
    if looks_undefined(x) or looks_undefined(y):
        return _worker(x, y, ctx)  # `1/0` is never equal to anything: sympy says why
    ea, eb = split_equation(x), split_equation(y)
    if ea is not None and eb is not None and ea[0].replace(" ", "") == eb[0].replace(" ", ""):
        x, y = ea[1], eb[1]
    elif ea is not None and eb is not None:
        return _worker(x, y, ctx)
    else:
        x, y = strip_label(x), strip_label(y)
    if x == y:
        return True, "identical after dropping the label"
    if (r := _clocks(x, y)) is not None:
        return r
    if (r := _numbers(x, y, ctx)) is not None:
        return r
    ca, cb = _counted(x), _counted(y)
    if ca is not None or cb is not None:
        if ca is not None and cb is not None and ca[1] != cb[1]:
            return False, f"counts of different things ({ca[1]!r} and {cb[1]!r})"
        na, nb = ca[0] if ca else x, cb[0] if cb else y
        if (r := _numbers(na, nb, ctx)) is not None:
            return r[0], "counts: " + r[1]
    if is_words(x) or is_words(y):
        return " ".join(x.split()).casefold() == " ".join(y.split()).casefold(), "text"
    qa, qb = parse_quantity(x), parse_quantity(y)
    if qa is not None or qb is not None:
        if qa is not None and qb is not None:
            return same_quantity(qa, qb, ctx.tol, rounded=ctx.units_rounded)
        q, other = (qa, y) if qa is not None else (qb, x)
        n = parse_number(other)
        if n is None or n.percent:
            return False, "a quantity with a unit against a non-number"
        why = "bare number against the quantity's magnitude"
        if numbers_equal(q.magnitude, n.value, ctx.tol):
            return True, why
        if qb is not None:  # the reference has the unit: a measured value, unless it is an angle
            ok = ctx.units_rounded and is_measured(qb.unit) and _rounds(n.value, x, qb.magnitude, qb.number)
        else:  # the reference is the bare number
            ok = ctx.numbers_rounded and _rounds(qa.magnitude, qa.number, n.value, y)  # type: ignore[union-attr]
        return ok, why + (": rounds to the reference" if ok else "")
    return _worker(x, y, ctx)


def _match_unordered(xs: list[Shape], ys: list[Shape], ctx: _Ctx) -> tuple[bool, str]:
    """Perfect matching between two collections (augmenting paths; collections are small)."""
    if len(xs) != len(ys):
        return False, f"{len(xs)} elements against {len(ys)}"
    undecided: list[str] = []
    adj: list[list[int]] = []
    for x in xs:
        row = []
        for j, y in enumerate(ys):
            try:
                if _shapes(x, y, ctx)[0]:
                    row.append(j)
            except Undecided as exc:
                undecided.append(str(exc))
        adj.append(row)
    owner: dict[int, int] = {}

    def augment(i: int, seen: set[int]) -> bool:
        for j in adj[i]:
            if j not in seen:
                seen.add(j)
                if j not in owner or augment(owner[j], seen):
                    owner[j] = i
                    return True
        return False

    if all(augment(i, set()) for i in range(len(xs))):
        return True, "same elements in any order"
    if undecided:
        raise Undecided(undecided[0])
    return False, "different elements"


def _match_ordered(xs: list[Shape], ys: list[Shape], ctx: _Ctx) -> tuple[bool, str]:
    if len(xs) != len(ys):
        return False, f"{len(xs)} elements against {len(ys)}"
    undecided: list[str] = []
    for x, y in zip(xs, ys, strict=True):
        try:
            if not _shapes(x, y, ctx)[0]:
                return False, "different elements in order"
        except Undecided as exc:
            undecided.append(str(exc))
    if undecided:
        raise Undecided(undecided[0])
    return True, "same elements in the same order"


def _text(s: Shape) -> str:
    return s.text


def _is_setlike(s: Shape) -> bool:
    return (isinstance(s, Node) and s.kind == "interval") or (
        isinstance(s, Atom) and bool(RELATION_RE.search(s.text))
    )


def _shapes(a: Shape, b: Shape, ctx: _Ctx) -> tuple[bool, str]:
    if _is_setlike(a) or _is_setlike(b):
        return _worker(_text(a), _text(b), ctx)
    if isinstance(a, Atom) and isinstance(b, Atom):
        return _atoms(a, b, ctx)
    if isinstance(a, Node) and isinstance(b, Node):
        kinds = {a.kind, b.kind}
        if kinds == {"dict"}:
            if len(a.items) != len(b.items):
                return False, "dicts with different sizes"
            pa = [Node("tuple", a.items[i : i + 2]) for i in range(0, len(a.items), 2)]
            pb = [Node("tuple", b.items[i : i + 2]) for i in range(0, len(b.items), 2)]
            ok, _ = _match_unordered(pa, pb, ctx)
            return ok, "same keys and values" if ok else "different keys or values"
        if "dict" in kinds:
            return False, "a dict against a non-dict"
        if "matrix" in kinds:
            rows = [n for n in (a, b)]
            if all(r.kind in ("matrix", "list") and all(isinstance(i, Node) for i in r.items) for r in rows):
                ra = [Node("list", list(r.items)) for r in a.items]  # type: ignore[union-attr]
                rb = [Node("list", list(r.items)) for r in b.items]  # type: ignore[union-attr]
                return _match_ordered(ra, rb, ctx)
            return False, "a matrix against a non-matrix"
        if "set" in kinds and kinds <= {"set", "bare"}:
            return _match_unordered(a.items, b.items, ctx)
        if kinds == {"bare"}:
            return _match_unordered(a.items, b.items, ctx)
        if a.kind == b.kind or "bare" in kinds:
            return _match_ordered(a.items, b.items, ctx)
        return False, f"a {a.kind} against a {b.kind}"
    node, atom = (a, b) if isinstance(a, Node) else (b, a)
    assert isinstance(node, Node) and isinstance(atom, Atom)
    if node.kind == "set" and len(node.items) == 1:
        return _shapes(node.items[0], atom, ctx)
    if node.kind == "matrix" or (node.kind in ("tuple", "list") and atom.text.startswith("Matrix")):
        return _worker(node.text, atom.text, ctx)
    stripped = strip_label(atom.text)
    if stripped != atom.text:
        return _shapes(node, parse_shape(stripped), ctx)
    if node.kind in ("tuple", "list") and len(node.items) == 2 and atom.text.startswith(_SYMPY_SETS):
        return _worker(
            node.text, atom.text, ctx
        )  # sympy printed an interval; the other side wrote (a, b] style
    return False, f"a {node.kind} against a single value"


_SYMPY_SETS = ("Interval", "Union(")


_FACTORIAL_RE = re.compile(r"(\d+)\s*!")
_TOWER_RE = re.compile(r"(\d+)\s*(?:\^|\*\*)\s*\{?\s*\(?\s*(\d+)\s*(?:\^|\*\*)\s*\{?\s*\(?\s*(\d+)")
_POWER_RE = re.compile(r"(\d+(?:\.\d+)?)\s*(?:\^|\*\*)\s*\{?\s*(\d+)\s*\}?")
MAX_RESULT_DIGITS = 100_000


def _too_big(text: str) -> str | None:
    """Spot answers whose exact value has absurdly many digits before anything tries to compute them."""
    for m in _FACTORIAL_RE.finditer(text):
        if len(m.group(1)) > 5 or int(m.group(1)) > 20_000:
            return f"factorial {m.group(1)}! is too large to evaluate"
    for m in _TOWER_RE.finditer(text):
        base, mid, top = (int(g[:12]) for g in m.groups())
        if base > 1 and mid > 1 and top * math.log10(mid) + math.log10(math.log10(base) + 1e-9) > 5.5:
            return f"power tower {m.group(0)!r}.. is too large to evaluate"
    for m in _POWER_RE.finditer(text):
        base, exp = float(m.group(1)), m.group(2)
        if base > 1 and len(exp) < 12 and int(exp) * len(str(int(base))) > MAX_RESULT_DIGITS:
            return f"power {m.group(0)!r} is too large to evaluate"
    return None


def warm_up() -> None:
    """Start the sympy workers and build the unit registry now, so no later check pays for it."""
    from loong_env.equivalence.units import registry

    registry()
    get_pool().warm_up()


def _tol(tolerance: Tolerance | None) -> Tol:
    if tolerance is None or (tolerance.rel is None and tolerance.abs is None):
        return None
    return (tolerance.rel, tolerance.abs)


def compare(
    candidate: str,
    reference: str,
    *,
    tolerance: Tolerance | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> Comparison:
    """Decide whether `candidate` means the same answer as `reference`: exact unless `tolerance` is given,
    except that a reference quantity with a unit (and, with `Tolerance(sig_figs=True)`, a bare reference
    number) accepts an answer that rounds to it at its significant figures; bounded by `timeout_s` of compute
    (an undecidable or too-slow check is `equal=False` with `error` set)."""
    for name, text in (("candidate", candidate), ("reference", reference)):
        if len(text) > MAX_ANSWER_CHARS:
            return Comparison(
                equal=False,
                reason=f"{name} is too long to compare",
                error=f"{name} has {len(text)} characters; the limit is {MAX_ANSWER_CHARS}",
            )
    sig_figs = bool(tolerance is not None and tolerance.sig_figs)
    ctx = _Ctx(
        _tol(tolerance),
        time.monotonic() + timeout_s,
        units_rounded=tolerance is None or sig_figs,  # a stated tolerance (even an exact one) wins
        numbers_rounded=sig_figs,
    )
    try:
        a, b = normalize(candidate), normalize(reference)
        if not a or not b:
            return Comparison(equal=False, reason="empty answer" if not a else "empty reference")
        if a == b and not may_be_undefined(a):
            return Comparison(equal=True, reason="identical after normalising")
        for name, text in (("candidate", a), ("reference", b)):
            if (why := _too_big(text)) is not None:
                return Comparison(equal=False, reason=f"{name} is too large to compare", error=why)
        a = read_choice(a, b)
        if (la := choice_letter(a)) is not None and (lb := choice_letter(b)) is not None:
            return Comparison(equal=la == lb, reason="option letters (any case)")
        a, b = ratio_values(a, b)
        if split_equation(a) is None or split_equation(b) is None:  # two equations compare as equations
            a, b = drop_labels(a), drop_labels(b)
        a, b = expand_alternatives(a), expand_alternatives(b)
        if split_equation(a) is None or split_equation(b) is None:
            a, b = strip_label(a), strip_label(b)
        equal, reason = _shapes(parse_shape(a), parse_shape(b), ctx)
    except ShapeError as exc:
        return Comparison(equal=False, reason="answer is nested too deeply", error=str(exc))
    except RecursionError:
        return Comparison(equal=False, reason="answer is nested too deeply", error="recursion limit")
    except Undecided as exc:
        return Comparison(equal=False, reason="could not decide", error=str(exc))
    return Comparison(equal=equal, reason=reason)
