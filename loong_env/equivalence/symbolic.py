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

from loong_env.equivalence.pyexpr import parse_python_math

_LATEX_HINT = re.compile(r"\\|\^\{|_\{|\{")
_PY_HINT = re.compile(r"\*\*|\*|[A-Za-z]{2,}\(|\bI\b|\boo\b|(?<![\\A-Za-z])pi(?![A-Za-z])")
_BARE_PI = re.compile(r"(?<![\\A-Za-z])pi(?![A-Za-z])")  # `pi/4` means \pi/4, never p*i
_DECIMAL_RE = re.compile(r"(?<![\d.])(\d+\.\d+|\d+\.(?!\d)|\.\d+)(?![\d.])")
_NORM = NormalizationConfig(basic_latex=True, units=False, malformed_operators=False, nits=False, boxed="none",
                            equations=False)
_CONV = ConversionConfig(interpret_as_mixed_fractions=True, interpret_simple_eq_as_assignment=False,
                         interpret_contains_as_eq=True, lowercase_symbols=False)
_I, _J = sp.Symbol("i"), sp.Symbol("j")
NUMERIC_DIGITS = 60
ZERO_BELOW = sp.Rational(1, 10**50)


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


@lru_cache(maxsize=4096)
def parse(text: str) -> Any:
    """sympy value of an answer written in LaTeX or in Python syntax."""
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
            return _imaginary(_rationalize(parser(text)))
        except Exception as exc:  # noqa: BLE001 - both parsers raise many types; the last message is reported
            errors.append(f"{parser.__name__.strip('_')}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
    raise ValueError("could not parse " + repr(text[:80]) + " (" + "; ".join(errors) + ")")


_TRIG_RE = re.compile(r"\\(?:sin|cos|tan|cot|sec|csc)(?![A-Za-z])")
_DEGREES_RE = re.compile(r"\s*\^\s*(?:\\circ|\{\s*\\circ\s*\})")


def _tex(text: str) -> Any:
    if _TRIG_RE.search(text):  # \sin(30^\circ): degrees inside a trig function are pi/180 radians
        text = _DEGREES_RE.sub(r"\\cdot\\frac{\\pi}{180}", text)
    return latex2sympy(_latex_exact(_BARE_PI.sub(r"\\pi ", text)), normalization_config=_NORM, conversion_config=_CONV)


def _py(text: str) -> Any:
    return parse_python_math(text)


def _as_set(value: Any) -> sp.Set | None:
    """Intervals, unions and one-variable inequalities as sympy sets (None when the value is not one)."""
    if isinstance(value, sp.Set):
        return value
    if isinstance(value, sp.core.relational.Relational | sp.And | sp.Or) and not isinstance(value, sp.Eq):
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


def expr_equal(a: Any, b: Any, tolerance: tuple[float | None, float | None] | None = None) -> tuple[bool, str]:
    """Exact (or tolerant, when asked) equality of two sympy values of any supported kind."""
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
    if isinstance(a, sp.Eq) or isinstance(b, sp.Eq) or isinstance(a, sp.logic.boolalg.Boolean) or isinstance(
        b, sp.logic.boolalg.Boolean
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
    if a.free_symbols != b.free_symbols and sp.expand(diff) != 0:
        simplified = sp.simplify(diff)
        return simplified == 0, "symbolically equal" if simplified == 0 else "different variables"
    if sp.expand(diff) == 0:
        return True, "equal after expanding"
    simplified = sp.simplify(diff)
    if simplified == 0:
        return True, "symbolically equal"
    if not diff.free_symbols:
        value = sp.N(diff, NUMERIC_DIGITS)
        if value.is_number and sp.Abs(value) < ZERO_BELOW * max(1, sp.Abs(sp.N(b, NUMERIC_DIGITS))):
            return True, f"numerically equal to {NUMERIC_DIGITS} digits"
        return False, "different values"
    eq = diff.equals(0)
    return eq is True, "symbolically equal" if eq else "different expressions"


def compare_texts(a: str, b: str, tolerance: tuple[float | None, float | None] | None = None) -> tuple[bool, str]:
    """Parse both texts and compare them; raises ValueError when either cannot be parsed."""
    return expr_equal(parse(a), parse(b), tolerance)
