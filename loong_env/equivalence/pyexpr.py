"""Python/sympy-syntax math (`-1/4 + sqrt(13)/4`, `x**2`, `3*I`) to sympy without eval: an AST whitelist.

sympy's own `parse_expr` calls `eval`, which must never see a model's output.
"""

from __future__ import annotations

import ast
import re
from typing import Any

import sympy as sp

_DECIMAL_RE = re.compile(r"(?<![\w.])(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?(?![\w.])")
_FUNCS: dict[str, Any] = {
    "sqrt": sp.sqrt,
    "exp": sp.exp,
    "log": sp.log,
    "ln": sp.log,
    "sin": sp.sin,
    "cos": sp.cos,
    "tan": sp.tan,
    "asin": sp.asin,
    "acos": sp.acos,
    "atan": sp.atan,
    "sinh": sp.sinh,
    "cosh": sp.cosh,
    "tanh": sp.tanh,
    "Abs": sp.Abs,
    "abs": sp.Abs,
    "Rational": sp.Rational,
    "Integer": sp.Integer,
    "Float": None,
    "cbrt": sp.cbrt,
    "root": sp.root,
    "binomial": sp.binomial,
    "factorial": sp.factorial,
    "floor": sp.floor,
    "ceiling": sp.ceiling,
    "sec": sp.sec,
    "csc": sp.csc,
    "cot": sp.cot,
    "re": sp.re,
    "im": sp.im,
    "conjugate": sp.conjugate,
    "Interval": sp.Interval,
    "Union": sp.Union,
    "FiniteSet": sp.FiniteSet,
    "Matrix": sp.Matrix,
}
_INTERVAL_METHODS = {"open": sp.Interval.open, "Lopen": sp.Interval.Lopen, "Ropen": sp.Interval.Ropen}
_CONSTS: dict[str, Any] = {
    "pi": sp.pi,
    "E": sp.E,
    "e": sp.E,
    "I": sp.I,
    "oo": sp.oo,
    "inf": sp.oo,
    "zoo": sp.zoo,
    "nan": sp.nan,
    "EmptySet": sp.S.EmptySet,
    "True": sp.true,
    "False": sp.false,
}
_BINOPS = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
    ast.Pow: lambda a, b: a**b,
}
MAX_LEN = 5000


def _exact_literals(text: str) -> str:
    """Decimals become exact `Rational('0.1')` calls so no float ever rounds them."""

    def repl(m: re.Match[str]) -> str:
        if m.group(2) is None and "." not in m.group(1):
            return m.group(0)
        return f"Rational('{m.group(0)}')"

    return _DECIMAL_RE.sub(repl, text)


def _convert(node: ast.AST) -> Any:
    if isinstance(node, ast.Expression):
        return _convert(node.body)
    if isinstance(node, ast.Constant):
        v = node.value
        if isinstance(v, bool):
            return sp.true if v else sp.false
        if isinstance(v, int):
            return sp.Integer(v)
        if isinstance(v, complex):
            return sp.Rational(str(v.real)) + sp.Rational(str(v.imag)) * sp.I
        if isinstance(v, str):
            return v
        raise ValueError(f"unsupported constant {v!r}")
    if isinstance(node, ast.Name):
        if node.id in _CONSTS:
            return _CONSTS[node.id]
        return sp.Symbol(node.id)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        v = _convert(node.operand)
        return -v if isinstance(node.op, ast.USub) else v
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        return _BINOPS[type(node.op)](_convert(node.left), _convert(node.right))
    if isinstance(node, ast.Compare) and len(node.ops) == 1 and isinstance(node.ops[0], ast.Eq):
        return sp.Eq(_convert(node.left), _convert(node.comparators[0]), evaluate=False)
    if isinstance(node, ast.Call) and not node.keywords:
        args = [_convert(a) for a in node.args]
        f = node.func
        if isinstance(f, ast.Name) and _FUNCS.get(f.id) is not None:
            return _FUNCS[f.id](*args)
        if (
            isinstance(f, ast.Attribute)
            and isinstance(f.value, ast.Name)
            and f.value.id == "Interval"
            and f.attr in _INTERVAL_METHODS
        ):
            return _INTERVAL_METHODS[f.attr](*args)
        if isinstance(f, ast.Name) and f.id not in _FUNCS:
            return sp.Function(f.id)(*args)
    if isinstance(node, ast.List | ast.Tuple):
        return [_convert(e) for e in node.elts]
    raise ValueError(f"unsupported syntax {type(node).__name__}")


def parse_python_math(text: str) -> Any:
    """sympy value of a Python-syntax expression; ValueError when it is not one."""
    if len(text) > MAX_LEN:
        raise ValueError("expression too long")
    src = _exact_literals(text.replace("^", "**"))
    try:
        tree = ast.parse(src, mode="eval")
    except (SyntaxError, RecursionError, MemoryError) as exc:
        raise ValueError(f"not Python math: {exc}") from None
    return _convert(tree)
