"""Exact reading of plain numbers, in-process and cheap: the fast path that never needs sympy.

Every form is read to a `Fraction`, so 0.1234567 and 0.1234568 stay different and 0.5 equals 1/2.
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import NamedTuple

MAX_DIGITS = 2000  # beyond this a "number" is pathological; sympy's worker (with its time bound) decides
MAX_EXPONENT = 400

_DEC = r"(?:\d+(?:\.\d*)?|\.\d+)"
# Thousands groups never start with a lone 0: `0,111` is a decimal comma or a list, not 111.
_GROUPED = r"(?:(?!0[, ])\d{1,3}(?:(?:,\d{3})+|(?: \d{3})+)(?:\.\d+)?)"
_MANTISSA = rf"(?P<m>{_GROUPED}|{_DEC})"
_SCI_E = re.compile(rf"{_MANTISSA}(?:[eE](?P<e>[+-]?\d+))?")
# `10^{-3}`, `10^(-3)`, `10**3`, `10^3`: the exponent lands in group e, e2 or e3
_TEN_TO = r"10\s*(?:\^|\*\*)\s*(?:\{\s*(?P<e>[+-]?\d+)\s*\}|\(\s*(?P<e2>[+-]?\d+)\s*\)|(?P<e3>[+-]?\d))"
_SCI_TIMES = re.compile(rf"{_MANTISSA}\s*(?:\\times|\\cdot|\*|x|×)\s*{_TEN_TO}")
_POW10 = re.compile(_TEN_TO)
_REPEATING = re.compile(r"(?P<i>\d*)\.(?P<f>\d*)\s*\\(?:overline|bar|dot)\s*\{\s*(?P<r>\d+)\s*\}")
_REPEATING_SHORT = re.compile(r"(?P<i>\d*)\.(?P<f>\d*)\\(?:overline|bar|dot)\s*(?P<r>\d)")
_FRAC = re.compile(
    r"\\frac\s*(?:\{\s*(?P<n>[^{}]+?)\s*\}|(?P<n1>\d))\s*(?:\{\s*(?P<d>[^{}]+?)\s*\}|(?P<d1>\d))"
)
_MIXED = re.compile(
    r"(?P<w>\d+)\s*\\frac\s*(?:\{\s*(?P<n>\d+)\s*\}|(?P<n1>\d))\s*(?:\{\s*(?P<d>\d+)\s*\}|(?P<d1>\d))"
)
_SLASH = re.compile(r"(?P<n>[^/]+)/(?P<d>[^/]+)")


class Number(NamedTuple):
    """An exactly-read number and whether it was written as a percentage."""

    value: Fraction
    percent: bool = False


def _decimal(text: str) -> Fraction:
    text = text.replace(",", "").replace(" ", "")
    if len(text) > MAX_DIGITS:
        raise ValueError("too many digits")
    return Fraction(text)


def _exponent(m: re.Match[str]) -> int:
    e = int(
        next(g for g in (m.group("e"), m.groupdict().get("e2"), m.groupdict().get("e3")) if g is not None)
    )
    if abs(e) > MAX_EXPONENT:
        raise ValueError("exponent too large")
    return e


def _unsigned(text: str) -> Fraction | None:
    """A non-negative number in one of the written forms, or None if `text` is not one."""
    text = text.strip()
    if text.startswith("{") and text.endswith("}") and text.count("{") == 1:
        text = text[1:-1].strip()
    if (m := _SCI_E.fullmatch(text)) is not None:
        value = _decimal(m.group("m"))
        if m.group("e") is not None:
            e = int(m.group("e"))
            if abs(e) > MAX_EXPONENT:
                raise ValueError("exponent too large")
            value *= Fraction(10) ** e
        return value
    if (m := _SCI_TIMES.fullmatch(text)) is not None:
        return _decimal(m.group("m")) * Fraction(10) ** _exponent(m)
    if (m := _POW10.fullmatch(text)) is not None:
        return Fraction(10) ** _exponent(m)
    if (m := _REPEATING.fullmatch(text)) or (m := _REPEATING_SHORT.fullmatch(text)):
        whole, fixed, rep = m.group("i") or "0", m.group("f"), m.group("r")
        base = Fraction(int(whole + fixed), 10 ** len(fixed))
        return base + Fraction(int(rep), (10 ** len(rep) - 1) * 10 ** len(fixed))
    if (m := _MIXED.fullmatch(text)) is not None:
        den = Fraction(m.group("d") or m.group("d1"))
        return int(m.group("w")) + Fraction(m.group("n") or m.group("n1")) / den if den else None
    if (m := _FRAC.fullmatch(text)) is not None:
        return _ratio(m.group("n") or m.group("n1"), m.group("d") or m.group("d1"))
    if (m := _SLASH.fullmatch(text)) is not None:
        return _ratio(m.group("n"), m.group("d"))
    return None


def _ratio(num: str, den: str) -> Fraction | None:
    n, d = parse_number(num), parse_number(den)
    if n is None or d is None or d.percent or n.percent or d.value == 0:
        return None
    return n.value / d.value


def parse_number(text: str) -> Number | None:
    """Read `text` as one exact real number (thousands separators, 3e8, 1.6 \\times 10^{-19}, 50%,
    0.\\overline{3}, 2\\frac{1}{2}, \\frac{3}{4}, 3/4), or None when it is anything else."""
    text = text.strip()
    if not text or len(text) > MAX_DIGITS:
        return None
    percent = text.endswith("%")
    if percent:
        text = text[:-1].rstrip()
    sign = 1
    while text[:1] in ("-", "+"):
        sign = -sign if text[0] == "-" else sign
        text = text[1:].lstrip()
    if text.startswith("(") and text.endswith(")") and text.count("(") == 1:
        inner = parse_number(text[1:-1])
        return None if inner is None or inner.percent else Number(sign * inner.value, percent)
    try:
        value = _unsigned(text)
    except (ValueError, ZeroDivisionError, OverflowError):
        return None
    return None if value is None else Number(sign * value, percent)
