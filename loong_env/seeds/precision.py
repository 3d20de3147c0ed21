"""Numeric precision: what a question asks for, what a tolerance implies, and a number rendered at it.

A question states its precision as significant figures ("to 4 significant figures"), decimals ("rounded to
2 decimal places", "to the nearest cent") or exactness ("give the exact value"). A tolerance implies one:
rel 1e-3 reads as 3 significant figures, abs 0.01 as 2 decimals. Numbers are handled as `Decimal` so a
reference's own digits are never changed by float round-off.
"""

from __future__ import annotations

import math
import re
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Literal

from pydantic import BaseModel

from loong_env.types import Tolerance

_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9}
_WORDS["ten"] = 10
_N = r"(\d+|one|two|three|four|five|six|seven|eight|nine|ten)"
_SIG = re.compile(
    _N + r"[\s-]+(?:significant|sig\.?)[\s-]*(?:figures?|digits?|figs?)|(\d+)\s*s\.?f\.?(?!\w)", re.IGNORECASE
)
_DEC = re.compile(
    _N + r"[\s-]+(?:decimal[\s-]*(?:places?|digits?)|decimals|d\.p\.|dp\b|places? after the)", re.IGNORECASE
)
_NEAREST = re.compile(
    r"(?:nearest|to the)\s+(whole number|integer|cent|penny|tenth|hundredth|thousandth|ten-thousandth"
    r"|0\.0*1)\b",
    re.IGNORECASE,
)
_NEAREST_DECIMALS = {
    "whole number": 0,
    "integer": 0,
    "cent": 2,
    "penny": 2,
    "tenth": 1,
    "hundredth": 2,
    "thousandth": 3,
    "ten-thousandth": 4,
}
_EXACT = re.compile(
    r"\bexact (?:value|answer|form|fraction|number|decimal)"
    r"|\b(?:give|state|write) (?:it|the answer) exactly\b"
    r"|\bin lowest terms\b|\bas an? (?:reduced |common |irreducible )?fraction\b",
    re.IGNORECASE,
)


class Precision(BaseModel):
    """A precision: `digits` significant figures (`sig`), `digits` decimals (`dec`), or `exact`."""

    kind: Literal["sig", "dec", "exact"]
    digits: int = 0
    phrase: str = ""

    def __str__(self) -> str:
        match self.kind:
            case "sig":
                return f"{self.digits} significant figures"
            case "dec":
                return f"{self.digits} decimal places"
            case _:
                return "exact"


def _count(text: str) -> int:
    return _WORDS.get(text.lower()) or int(text)


def stated_precision(question: str) -> Precision | None:
    """The precision the question asks for, or None when it states none."""
    if m := _SIG.search(question):
        return Precision(kind="sig", digits=_count(m.group(1) or m.group(2)), phrase=m.group(0))
    if m := _DEC.search(question):
        return Precision(kind="dec", digits=_count(m.group(1)), phrase=m.group(0))
    if m := _NEAREST.search(question):
        unit = m.group(1).lower()
        digits = _NEAREST_DECIMALS[unit] if unit in _NEAREST_DECIMALS else len(unit.split(".")[1])
        return Precision(kind="dec", digits=digits, phrase=m.group(0))
    if m := _EXACT.search(question):
        return Precision(kind="exact", phrase=m.group(0))
    return None


def implied_precision(tolerance: Tolerance | None) -> Precision | None:
    """The coarsest rounding a tolerance nominally allows: rel 1e-3 -> 3 significant figures, abs 0.01 -> 2
    decimals (the larger bound wins when both are set)."""
    if tolerance is None:
        return None
    if tolerance.rel:
        digits = max(1, math.floor(-math.log10(tolerance.rel) + 1e-9))
        return Precision(kind="sig", digits=digits, phrase="tolerance")
    if tolerance.abs:
        digits = max(0, math.floor(-math.log10(tolerance.abs) + 1e-9))
        return Precision(kind="dec", digits=digits, phrase="tolerance")
    return None


def to_decimal(text: str) -> Decimal | None:
    """A plain decimal number ('1,234.5', '-3e-4'), else None."""
    try:
        value = Decimal(text.replace(",", ""))
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def shown_unit(text: str) -> Decimal:
    """The place value of the last digit written: '1.433' -> 0.001, '300' -> 1, '2.5e3' -> 100."""
    value = to_decimal(text)
    if value is None:
        return Decimal(1)
    exponent = value.as_tuple().exponent
    return Decimal(1).scaleb(exponent if isinstance(exponent, int) else 0)


def unit_of(value: Decimal, precision: Precision) -> Decimal | None:
    """The place value of the last digit kept at `precision` (None for exact)."""
    if precision.kind == "dec":
        return Decimal(1).scaleb(-precision.digits)
    if precision.kind == "sig" and value != 0:
        return Decimal(1).scaleb(value.adjusted() - precision.digits + 1)
    return None


def render(value: Decimal, precision: Precision) -> str:
    """`value` rounded (half to even, as Python's round and format do) and written at `precision`."""
    unit = unit_of(value, precision)
    if unit is None:
        return format(value, "f")
    rounded = value.quantize(unit, rounding=ROUND_HALF_EVEN) if unit < 1 else _round_to(value, unit)
    return format(rounded, "f")


def _round_to(value: Decimal, unit: Decimal) -> Decimal:
    return (value / unit).quantize(Decimal(1), rounding=ROUND_HALF_EVEN) * unit


def nudged(value: Decimal, unit: Decimal, fraction: Decimal = Decimal("0.45")) -> tuple[str, str]:
    """Two values inside `value`'s rounding interval (value -/+ fraction * unit), written two digits finer:
    what a correct solver prints when it keeps more digits than the reference shows."""
    finer = unit.scaleb(-2)
    low, high = (value + sign * fraction * unit for sign in (-1, 1))
    if finer < 1:
        low, high = low.quantize(finer), high.quantize(finer)
    return format(low, "f"), format(high, "f")
