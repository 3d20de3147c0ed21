"""Physical quantities: "500 cm" equals "5 m", "5 m" is not "5 cm" (pint, exact Fraction arithmetic).

A reference quantity is a measured value stated to its significant figures: `51 atm` accepts `50.7 atm` and
`5137 kPa` (they round to it), never `52 atm` nor the coarser `5e1 atm` (see rounding.py). Angles in degrees
are geometry's exact values and are compared exactly, as is everything when a tolerance is stated.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction
from functools import lru_cache
from typing import Any, NamedTuple

from loong_env.equivalence.numbers import parse_number
from loong_env.equivalence.rounding import answer_place, half_unit, rounds_to

# Letters that are math (a variable, e, i, pi) far more often than a unit when they follow a number.
_SINGLE_LETTER_UNITS = set("msgKAVNJWLTCh")
_NOT_UNITS = {
    "pi",
    "e",
    "i",
    "j",
    "x",
    "y",
    "z",
    "n",
    "k",
    "t",
    "a",
    "b",
    "c",
    "d",
    "r",
    "u",
    "v",
    "w",
    "p",
    "q",
    "I",
    "E",
    "inf",
    "oo",
    "infty",
    "or",
    "and",
    "sqrt",
    "ln",
    "log",
    "sin",
    "cos",
    "tan",
    "exp",
    "dx",
}
_QTY_RE = re.compile(
    r"^(?P<num>[-+]?\s*(?:\d*\s*\\frac\{\d+\}\{\d+\}|\d+/\d+(?=\s)|"
    r"\d[\d,.\s]*(?:[eE][-+]?\d+)?(?:\s*(?:\\times|\\cdot)\s*10\^\{?[-+]?\d+\}?)?))\s*"
    r"(?P<unit>(?:\^\\circ|\\circ|1\s*/\s*(?=[A-Za-z\\])|[A-Za-z\\Ωμµ°%])[A-Za-z0-9\\Ωμµ°/*^{}()\s.\-]*)$"
)


class Quantity(NamedTuple):
    """A magnitude read exactly, its unit text, and the number as written (its stated precision)."""

    magnitude: Fraction
    unit: str
    number: str = ""


def _unit_text(unit: str) -> str:
    unit = unit.strip()
    unit = re.sub(r"\^\s*\\circ\s*(?=[CF]\b)", "deg", unit)  # 25^\circ C -> degC
    unit = re.sub(r"^\^?\s*\\circ$", "degree", unit)
    unit = unit.replace(r"\cdot", "*").replace(r"\Omega", "ohm").replace("Ω", "ohm").replace(r"\mu ", "u")
    unit = unit.replace(r"\mu", "u").replace("μ", "u").replace("µ", "u").replace("{", "(").replace("}", ")")
    unit = re.sub(r"\s+", " ", unit).strip()
    return unit


@lru_cache(maxsize=1)
def registry() -> Any:
    """The unit registry, built once (it takes ~0.2 s) with exact Fraction arithmetic."""
    import pint

    return pint.UnitRegistry(non_int_type=Fraction, autoconvert_offset_to_baseunit=True)


@lru_cache(maxsize=2048)
def _units(text: str) -> Any | None:
    if text in _NOT_UNITS or (len(text) == 1 and text not in _SINGLE_LETTER_UNITS):
        return None
    try:
        unit = registry().parse_units(text)
    except Exception:  # noqa: BLE001 - pint raises many kinds; not a unit is the only meaning here
        if text.endswith("s") and len(text) > 3 and text[:-1].isalpha():
            return _units(text[:-1])  # "degrees", "radians": pint knows only some plurals
        return None
    return unit if not unit.dimensionless or str(unit) in ("degree", "radian") else None


def parse_quantity(text: str) -> Quantity | None:
    """`14.7 m/s`, `9.81 m/s**2`, `5\\,\\text{kg}`, `30^\\circ` as a quantity; None without a real unit."""
    m = _QTY_RE.match(text.strip())
    if m is None:
        return None
    num = parse_number(m.group("num").strip())
    if re.search(r"\\(?!cdot|mu|Omega|circ)", m.group("unit")):
        return None  # \sqrt, \pi and friends are math, not units
    unit = _unit_text(m.group("unit"))
    if num is None or num.percent or not unit or _units(unit) is None:
        return None
    return Quantity(num.value, unit, m.group("num").strip())


def same_quantity(
    a: Quantity, b: Quantity, tolerance: tuple[float | None, float | None] | None, *, rounded: bool = False
) -> tuple[bool, str]:
    """Equal when the dimensions agree and the magnitudes agree in the reference's unit: exactly, within
    `tolerance`, or (`rounded`) when `a` rounds to the reference `b` at b's significant figures."""
    ua, ub = _units(a.unit), _units(b.unit)
    if ua is None or ub is None or ua.dimensionality != ub.dimensionality:
        return False, f"units {a.unit!r} and {b.unit!r} measure different things"
    reg = registry()
    try:
        converted = _fraction(reg.Quantity(a.magnitude, ua).to(ub).magnitude)
        place = answer_place(a.number) if a.number else Fraction(0)
        if (
            place and place != math.inf
        ):  # the answer's own last place in the reference's unit (offsets cancel)
            place = abs(_fraction(reg.Quantity(a.magnitude + place, ua).to(ub).magnitude) - converted)
    except Exception as exc:  # noqa: BLE001
        return False, f"cannot convert {a.unit!r} to {b.unit!r}: {exc}"
    where = f"quantities compared in {b.unit!r}"
    if numbers_equal(converted, b.magnitude, tolerance):
        return True, where
    half = half_unit(b.number) if rounded and tolerance is None and is_measured(b.unit) else None
    if half is not None and rounds_to(converted, place, b.magnitude, half):
        return True, f"{where}: rounds to the reference's {b.number} (within {half})"
    return False, where


def is_measured(unit: str) -> bool:
    """Whether a unit marks a measured value (not an angle in degrees or radians: geometry states those
    exactly)."""
    parsed = _units(unit)
    return parsed is not None and not parsed.dimensionless


def _fraction(value: Any) -> Fraction:
    return value if isinstance(value, Fraction) else Fraction(value)


def numbers_equal(a: Fraction, b: Fraction, tolerance: tuple[float | None, float | None] | None) -> bool:
    """Exact unless a tolerance is given: |a - b| <= max(abs, rel * |b|)."""
    if tolerance is None or (tolerance[0] is None and tolerance[1] is None):
        return a == b
    rel, abs_ = tolerance
    bound = max(Fraction(abs_ or 0), Fraction(rel or 0) * abs(b))
    return abs(a - b) <= bound
