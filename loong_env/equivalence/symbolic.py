"""The sympy half of the engine: parse LaTeX or Python math and decide exact equality.

Runs only inside the killable worker processes (see pool.py), because sympy can take unbounded time.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import sympy as sp
from latex2sympy2_extended import latex2sympy
from latex2sympy2_extended.latex2sympy2 import ConversionConfig
from latex2sympy2_extended.math_normalization import NormalizationConfig
from sympy.core.evalf import PrecisionExhausted
from sympy.core.function import AppliedUndef

from loong_env.equivalence.pyexpr import parse_python_math

_LATEX_HINT = re.compile(r"\\|\^\{|_\{|\{")
_PY_HINT = re.compile(r"\*\*|\*|[A-Za-z]{2,}\(|\bI\b|\boo\b|\bzoo\b|\bnan\b|(?<![\\A-Za-z])pi(?![A-Za-z])")
_BARE_PI = re.compile(r"(?<![\\A-Za-z])pi(?![A-Za-z])")  # `pi/4` means \pi/4, never p*i
_DECIMAL_RE = re.compile(r"(?<![\d.])(\d+\.\d+|\d+\.(?!\d)|\.\d+)(?![\d.])")
_NORM = NormalizationConfig(
    basic_latex=True, units=False, malformed_operators=False, nits=False, boxed="none", equations=False
)
_CONV = ConversionConfig(
    interpret_as_mixed_fractions=True,
    interpret_simple_eq_as_assignment=False,
    interpret_contains_as_eq=True,
    lowercase_symbols=False,
)
_I, _J = sp.Symbol("i"), sp.Symbol("j")
NUMERIC_DIGITS = 60
# A constant difference sympy cannot prove 0 is taken for 0 only when no digit of it shows at this many
# significant digits of working precision beyond the values' magnitude (never an absolute floor).
ZERO_DIGITS = 2 * NUMERIC_DIGITS
MAX_WORK_DIGITS = 100_000  # as many digits as the largest value the engine agrees to evaluate


def _latex_exact(text: str) -> str:
    """Decimals as exact fractions so the LaTeX parser cannot turn them into 15-digit floats."""

    def repl(m: re.Match[str]) -> str:
        s = m.group(1).rstrip(".")
        whole, _, frac = s.partition(".")
        return rf"\frac{{{int(whole or '0') * 10 ** len(frac) + int(frac or '0')}}}{{{10 ** len(frac)}}}"

    return _DECIMAL_RE.sub(repl, text)


def _rationalize(expr: Any) -> Any:
    if isinstance(expr, sp.Basic) and expr.has(sp.Float):
        return expr.xreplace({f: sp.Rational(str(f)) for f in expr.atoms(sp.Float)})
    return expr


def _imaginary(expr: Any) -> Any:
    """`i` is the imaginary unit in a math answer (LaTeX parsers leave it a plain symbol)."""
    if isinstance(expr, sp.Basic) and _I in expr.free_symbols:
        return expr.xreplace({_I: sp.I})
    return expr


_OR_RE = re.compile(r"\s+(?:or|\\lor|\\vee)\s+|\s*(?:\\lor|\\vee)\s*")
_COMPLEX_J_RE = re.compile(r"[-+]?[\d.]+\s*[-+]\s*[\d.]*\s*j")


# A constant standing alone is the constant, never a free symbol (sympy prints Euler's number as a bare `E`).
_CONSTANTS = {
    "E": sp.E,
    "e": sp.E,
    "pi": sp.pi,
    r"\pi": sp.pi,
    "I": sp.I,
    "i": sp.I,
    "oo": sp.oo,
    r"\infty": sp.oo,
    "inf": sp.oo,
    "infty": sp.oo,
}
_CONSTANT_RE = re.compile(r"(?P<sign>[-+]?)\s*(?P<name>" + "|".join(map(re.escape, _CONSTANTS)) + r")")
# Left unevaluated when parsed (they can be slow), and never judged by their rough numeric values.
_UNEVALUATED = (sp.Integral, sp.Sum, sp.Product, sp.Limit, sp.Derivative)
FINITE_TERMS = 10_000  # a finite sum or product with more terms than this is left to sympy's own rules


def _finite(expr: Any) -> bool:
    """A sum or product over integer bounds with at most FINITE_TERMS terms (cheap to add up exactly)."""
    return all(lo.is_Integer and hi.is_Integer and hi - lo < FINITE_TERMS for _, lo, hi in expr.limits)


def _evaluated(value: Any) -> Any:
    """Evaluate parser output cheaply (1/(1-1) is zoo, 2M explicit, finite sums added), never integrals."""
    if isinstance(value, sp.MatrixExpr) and not isinstance(value, sp.MatrixSymbol):
        return value.doit()
    if not isinstance(value, sp.Expr):
        return value
    if value.has(*_UNEVALUATED):
        return value.replace(lambda e: isinstance(e, sp.Sum | sp.Product) and _finite(e), lambda e: e.doit())
    return value.doit()


@lru_cache(maxsize=4096)
def parse(text: str) -> Any:
    """sympy value of an answer written in LaTeX or in Python syntax."""
    if (m := _CONSTANT_RE.fullmatch(text.strip())) is not None:
        return -_CONSTANTS[m.group("name")] if m.group("sign") == "-" else _CONSTANTS[m.group("name")]
    if _OR_RE.search(text):
        parts = [parse(p) for p in _OR_RE.split(text) if p.strip()]
        if all(isinstance(p, sp.Set) for p in parts):
            return sp.Union(*parts)
        return sp.Or(*parts)
    if _COMPLEX_J_RE.fullmatch(text.strip()):
        return parse_python_math(text)
    errors: list[str] = []
    order = (_py, _tex) if _PY_HINT.search(text) and not _LATEX_HINT.search(text) else (_tex, _py)
    for parser in order:
        try:
            return _evaluated(_imaginary(_rationalize(parser(text))))
        except Exception as exc:  # noqa: BLE001 - both parsers raise many types; the last message is reported
            errors.append(
                f"{parser.__name__.strip('_')}: "
                f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
            )
    raise ValueError("could not parse " + repr(text[:80]) + " (" + "; ".join(errors) + ")")


_TRIG_RE = re.compile(r"\\(?:sin|cos|tan|cot|sec|csc)(?![A-Za-z])")
_DEGREES_RE = re.compile(r"\s*\^\s*(?:\\circ|\{\s*\\circ\s*\})")


def _tex(text: str) -> Any:
    if _TRIG_RE.search(text):  # \sin(30^\circ): degrees inside a trig function are pi/180 radians
        text = _DEGREES_RE.sub(r"\\cdot\\frac{\\pi}{180}", text)
    return latex2sympy(
        _latex_exact(_BARE_PI.sub(r"\\pi ", text)), normalization_config=_NORM, conversion_config=_CONV
    )


def _py(text: str) -> Any:
    return parse_python_math(text)


def _one_subject(value: Any) -> Any:
    """`0 < f(x) < 1` constrains f(x): stand a real variable in for the one applied function it is about."""
    applied = value.atoms(AppliedUndef)
    if len(applied) != 1:
        return value
    (f,) = applied
    y = sp.Dummy("y", real=True)
    swapped = value.xreplace({f: y})
    return swapped if swapped.free_symbols == {y} else value


def _as_set(value: Any) -> sp.Set | None:
    """Intervals, unions and one-variable inequalities as sympy sets (None when the value is not one)."""
    if isinstance(value, sp.Set):
        return value
    if isinstance(value, sp.core.relational.Relational | sp.And | sp.Or) and not isinstance(value, sp.Eq):
        value = _one_subject(value)
        syms = value.free_symbols
        if len(syms) == 1:
            (x,) = syms
            return value.as_set() if x.is_real is not False else sp.solveset(value, x, sp.S.Reals)
    return None


def _bound(tolerance: tuple[float | None, float | None] | None, ref: Any) -> Any | None:
    if tolerance is None or (tolerance[0] is None and tolerance[1] is None):
        return None
    rel, abs_ = tolerance
    return max(sp.Rational(abs_ or 0), sp.Rational(rel or 0) * sp.Abs(ref))


_COMMUTATIVE = (sp.Add, sp.Mul, sp.And, sp.Or, sp.Min, sp.Max, sp.FiniteSet, sp.Union, sp.Intersection)


def canonical(value: Any) -> Any:
    """A key equal for expressions that differ only in the order of commutative arguments (`a+b`, `b+a`)."""
    if not isinstance(value, sp.Basic) or not value.args:
        return value
    args = [canonical(arg) for arg in value.args]
    if isinstance(value, _COMMUTATIVE) and value.is_commutative is not False:
        args.sort(key=repr)
    return (type(value).__name__, tuple(args))


def _undefined(value: Any) -> str | None:
    """Why a value is undefined (complex infinity from division by zero, or nan), None when it is defined."""
    if isinstance(value, list):
        return next((why for v in value if (why := _undefined(v)) is not None), None)
    if isinstance(value, sp.Basic) and value.has(sp.zoo, sp.nan):
        return (
            "nan (an indeterminate form)"
            if value.has(sp.nan)
            else "complex infinity (a division by zero or a pole)"
        )
    return None


def _work_digits(*values: Any) -> int:
    """Working precision (digits) for a difference of these values: ZERO_DIGITS beyond their magnitude, so
    `x` and `x + 1` differ for a 200-digit `x` as they do for a 2-digit one."""
    magnitude = 0
    for value in values:
        try:
            size = sp.Abs(sp.N(value, 5))
            if size.is_Number and size > 1:
                magnitude = max(magnitude, int(sp.log(size, 10).evalf(5)) + 1)
        except (TypeError, ValueError, ArithmeticError):
            continue
    return min(ZERO_DIGITS + magnitude, MAX_WORK_DIGITS)


def _nonzero_digits(value: Any) -> bool:
    """Whether a numeric value (a Float, or re + im*I of Floats) has a component known to be non-zero: sympy
    marks a component it could not pin down with a precision of a bit or so."""
    for part in value.as_real_imag():
        if part.is_Float and part != 0 and part._prec > 4:
            return True
        if part.is_Rational and part != 0:
            return True
    return False


def _differ(diff: Any, a: Any, b: Any) -> bool | None:
    """Whether a constant difference is non-zero: decided exactly for rationals, else by evaluating it to a
    precision relative to the values (sympy raises the working precision as terms cancel). True: certainly
    non-zero; False: zero to that precision; None: it has no numeric value (an unevaluated integral)."""
    if diff.is_Rational:
        return diff != 0
    digits = _work_digits(a, b)
    try:
        value = diff.evalf(15, strict=True, maxn=digits)
    except PrecisionExhausted:
        value = diff.evalf(15, maxn=digits)  # one component may still be certain: `1 + i * 0`
        return _nonzero_digits(value) if value.is_number else None
    if not value.is_number or value.has(sp.nan, sp.zoo):
        return None
    return value != 0


def _exact_number(value: Any) -> bool:
    return isinstance(value, sp.Expr) and value.is_Rational is True


def _relatively_equal(a: Any, b: Any) -> bool:
    """For values sympy can only approximate (an integral by quadrature): the same to 50 of NUMERIC_DIGITS
    significant digits of the larger one; a non-zero value never equals 0."""
    va, vb = sp.N(a, NUMERIC_DIGITS), sp.N(b, NUMERIC_DIGITS)
    if not (va.is_number and vb.is_number):
        return False
    size = max(sp.Abs(va), sp.Abs(vb))
    return bool(size == 0 or sp.Abs(va - vb) <= size * sp.Rational(1, 10**50))


def expr_equal(
    a: Any, b: Any, tolerance: tuple[float | None, float | None] | None = None
) -> tuple[bool, str]:
    """Exact (or tolerant, when asked) equality of two sympy values of any supported kind."""
    for name, value in (("candidate", a), ("reference", b)):
        if (why := _undefined(value)) is not None:
            return False, f"the {name} is undefined: {why}, which equals nothing, itself included"
    if isinstance(a, sp.Basic) and isinstance(b, sp.Basic) and canonical(a) == canonical(b):
        return True, "same expression (up to the order of terms)"
    if isinstance(a, list) or isinstance(b, list):
        if not (isinstance(a, list) and isinstance(b, list)) or len(a) != len(b):
            return False, "different shapes"
        for x, y in zip(a, b, strict=True):
            ok, why = expr_equal(x, y, tolerance)
            if not ok:
                return False, why
        return True, "equal element by element"
    if isinstance(a, str) or isinstance(b, str):
        return a == b, "strings"
    sa, sb = _as_set(a), _as_set(b)
    if sa is not None or sb is not None:
        if sa is None or sb is None:
            return False, "a set of values against a single value"
        return bool(sp.Complement(sa, sb) == sp.S.EmptySet and sp.Complement(sb, sa) == sp.S.EmptySet), "sets"
    if isinstance(a, sp.MatrixBase) or isinstance(b, sp.MatrixBase):
        if not (isinstance(a, sp.MatrixBase) and isinstance(b, sp.MatrixBase)) or a.shape != b.shape:
            return False, "matrices of different shapes"
        return expr_equal(list(a), list(b), tolerance)
    if isinstance(a, sp.Eq) and isinstance(b, sp.Eq):
        da, db = a.lhs - a.rhs, b.lhs - b.rhs
        if db == 0 or da == 0:
            return da == db, "equations"
        ratio = sp.simplify(da / db)
        return bool(ratio.is_number and ratio != 0), "equations (same solution set up to a factor)"
    if (
        isinstance(a, sp.Eq)
        or isinstance(b, sp.Eq)
        or isinstance(a, sp.logic.boolalg.Boolean)
        or isinstance(b, sp.logic.boolalg.Boolean)
    ):
        return bool(a == b), "relations"
    if not isinstance(a, sp.Expr) or not isinstance(b, sp.Expr):
        return bool(a == b), "structural"
    if a == b:
        return True, "same expression"
    if a.has(sp.oo, -sp.oo, sp.zoo) or b.has(sp.oo, -sp.oo, sp.zoo):  # oo - oo is nan: compare as written
        return False, "different infinite values"
    bound = _bound(tolerance, b)
    if bound is not None and not a.free_symbols and not b.free_symbols:
        va, vb = sp.N(a, NUMERIC_DIGITS), sp.N(b, NUMERIC_DIGITS)
        ok = bool(sp.Abs(va - vb) <= sp.N(bound, NUMERIC_DIGITS))
        return ok, "within tolerance" if ok else "outside tolerance"
    diff = a - b
    if diff == 0:
        return True, "same expression"
    if _exact_number(diff):
        return False, "different exact values"
    constant = not diff.free_symbols
    approximate = diff.has(*_UNEVALUATED)  # integrals and limits: evaluated only if simplifying fails
    differs = _differ(diff, a, b) if constant and not approximate else None
    if differs:
        return False, "different values"  # a digit of the difference shows before any slow simplification
    if a.free_symbols != b.free_symbols and sp.expand(diff) != 0:
        simplified = sp.simplify(diff)
        return simplified == 0, "symbolically equal" if simplified == 0 else "different variables"
    if sp.expand(diff) == 0:
        return True, "equal after expanding"
    simplified = sp.simplify(diff)
    if simplified == 0:
        return True, "symbolically equal"
    if constant and approximate:
        if _relatively_equal(a, b):
            return True, f"numerically equal to {NUMERIC_DIGITS - 10} significant digits"
        return False, "different values"
    if constant:
        if differs is False:
            return True, f"numerically equal (no difference within {ZERO_DIGITS} digits beyond their size)"
        return False, "different values"
    eq = diff.equals(0)
    return eq is True, "symbolically equal" if eq else "different expressions"


_BARE_LOG = re.compile(r"\\log(?![A-Za-z_])")


def _readings(text: str) -> list[str]:
    """A bare `\\log` is base 10 in school maths and the natural log in sympy's and higher maths' LaTeX:
    both readings of such a text, the base-10 one first."""
    if not _BARE_LOG.search(text):
        return [text]
    return [text, _BARE_LOG.sub(r"\\ln", text)]


def compare_texts(
    a: str, b: str, tolerance: tuple[float | None, float | None] | None = None
) -> tuple[bool, str]:
    """Parse both texts and compare them (equal under either reading of a bare `\\log`); raises ValueError
    when either cannot be parsed."""
    first: tuple[bool, str] | None = None
    for ra in _readings(a):
        for rb in _readings(b):
            equal, reason = expr_equal(parse(ra), parse(rb), tolerance)
            if equal:
                natural = ra is not a or rb is not b
                return True, reason + (" (reading \\log as the natural log)" if natural else "")
            first = first or (equal, reason)
    assert first is not None
    return first
