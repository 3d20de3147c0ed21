"""Rounded references: the last place a written number states, and whether a value rounds to it.

`51` states units (2 significant figures), `50.7` tenths, `1.3e+02` tens, `0.0245` ten-thousandths. Trailing
zeros of an integer written without a decimal point or an exponent are not significant (`130` states tens,
`100` hundreds); `130.`, `1.30e2` and `1.30 \\times 10^2` state them. Fractions, repeating decimals, powers
and zero state no rounding: they are exact. An answer's own precision is read by the same rule, and an answer
stated more coarsely than the reference is not accepted by rounding.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

_EXPONENT = (
    r"(?:\s*[eE](?P<e>[-+]?\d+)"
    r"|\s*(?:\\times|\\cdot|\*|×)\s*10\s*(?:\^|\*\*)\s*(?:\{\s*(?P<e2>[-+]?\d+)\s*\}|\((?P<e3>[-+]?\d+)\)|(?P<e4>\d)))"
)
_WRITTEN_RE = re.compile(
    rf"[-+]?\s*(?P<int>\d{{1,3}}(?:[, ]\d{{3}})+|\d+)?(?:\.(?P<frac>\d*))?{_EXPONENT}?",
)
MAX_EXPONENT = 400  # as for numbers: beyond this the text is not a measured value


def _read(text: str) -> tuple[Fraction, bool] | None:
    """(place value of the last significant digit, whether any digit is non-zero), None for other text."""
    m = _WRITTEN_RE.fullmatch(text.strip())
    if m is None or (m.group("int") is None and not m.group("frac")):
        return None
    digits = (m.group("int") or "").replace(",", "").replace(" ", "")
    exp_text = next((g for g in (m.group("e"), m.group("e2"), m.group("e3"), m.group("e4")) if g), None)
    exponent = int(exp_text) if exp_text is not None else 0
    if abs(exponent) > MAX_EXPONENT:
        return None
    nonzero = bool((digits + (m.group("frac") or "")).strip("0"))
    if m.group("frac") is not None:  # a decimal point: every digit after it is stated, zeros too
        exponent -= len(m.group("frac"))
    elif exp_text is None:  # a bare integer: its trailing zeros are not significant
        exponent += len(digits) - len(digits.rstrip("0"))
    return Fraction(10) ** exponent, nonzero


def half_unit(text: str) -> Fraction | None:
    """Half a unit in the last place a rounded reference states (`51` -> 1/2, `1.3e+02` -> 5); None when the
    text is exact (a fraction, a power, zero, anything but a plain decimal)."""
    read = _read(text)
    if read is None or not read[1]:
        return None  # zero has no significant figures: it is compared exactly
    return read[0] / 2


def answer_place(text: str) -> Fraction | float:
    """The last place an answer states, read by the same rule: 0 for an exact form (a fraction, a power,
    an expression), infinity for a bare `0`, which states no figures at all."""
    read = _read(text)
    if read is None:
        return Fraction(0)
    place, nonzero = read
    return place if nonzero or "." in text or place < 1 else math.inf


def rounds_to(value: Fraction, value_place: Fraction | float, reference: Fraction, half: Fraction) -> bool:
    """Whether `value` rounds to `reference` at the reference's last place (within half a unit, ends
    included), written at least as finely as the reference (`51` does not round to `50.7`, nor `1 atm` to
    `101.3 kPa`, nor `0 °C` to `273 K`). `value_place` is the answer's own (`answer_place`)."""
    return abs(value - reference) <= half and value_place <= 2 * half
