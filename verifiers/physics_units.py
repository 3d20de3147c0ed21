"""Plug-in `physics_units`: physics answers with units, judged after unit conversion.

Reference "14.7 m/s" and answer \\boxed{52.92 km/h} are the same speed; "14.7 m" is a length (dimension
mismatch); a bare "14.7" says nothing about units ("missing unit"). Numbers are compared after converting
the answer into the reference's unit, with the datapoint's tolerance when it states one; else a reference is
a measured value stated to its significant figures, and an answer that rounds to it is correct ("51 atm"
accepts "50.7 atm", never "52 atm" nor the coarser "5e1 atm"; the rule of loong_env.equivalence.rounding).
Angles and other dimensionless references are exact, up to a 1e-9 relative slack that only absorbs the float
round-off of the conversion itself.
"""

from __future__ import annotations

import re
import threading
import time
from functools import cache

import pint

from loong_env.equivalence.rounding import answer_place, half_unit
from loong_env.types import Tolerance, VerificationResult, VerificationStatus
from loong_env.verifiers.base import SyncVerifier, Verifier

MAX_ANSWER_CHARS = 500  # a physical quantity is short; anything longer is not one
ROUND_OFF = Tolerance(rel=1e-9)

_NUMBER = re.compile(r"^\s*([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)\s*(.*)$", re.DOTALL)
_LATEX_WRAPPERS = re.compile(r"\\(?:text|mathrm|mathit|operatorname|rm|textrm|unit|si)\s*\{([^{}]*)\}")
_TIMES_TEN = re.compile(r"\s*(?:\\times|\\cdot|×|\*|x)\s*10\s*\^\s*\{?\s*([-+−]?\d+)\s*\}?")
_BRACED_POWER = re.compile(r"\^\s*\{([^{}]*)\}")
_LATEX_FRAC = re.compile(r"\\[dt]?frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}")
_LABEL = re.compile(r"^\s*[A-Za-z][A-Za-z0-9]*(?:_\{?\w+\}?)?\s*=\s*(?=[-+.\d])")  # `v = 24 m/s`: drop `v =`
_lock = threading.Lock()


@cache
def _registry() -> pint.UnitRegistry:
    """One unit registry per process: building it costs ~0.3 s."""
    return pint.UnitRegistry()


def _normalize(text: str) -> str:
    """Turn LaTeX-flavoured quantities ("9.81\\,\\mathrm{m/s^{2}}") into what pint parses ("9.81 m/s**2")."""
    s = text.strip().strip("$").strip()
    s = _TIMES_TEN.sub(r"e\1 ", s).replace("−", "-")
    s = _BRACED_POWER.sub(r"**(\1)", s).replace("^", "**")
    for _ in range(3):  # nested \text{\mathrm{..}} and \frac{}{} unwrap in a few rounds
        s = _LATEX_WRAPPERS.sub(r" \1 ", s)
        s = _LATEX_FRAC.sub(r"(\1)/(\2)", s)
    for latex, plain in (
        (r"\cdot", "*"),
        (r"\times", "*"),
        ("·", "*"),
        (r"\mu", "µ"),
        (r"\pi", " pi "),
        (r"\Omega", "Ω"),
        (r"\%", "percent"),
        ("%", "percent"),
        (r"\,", " "),
        (r"\;", " "),
        (r"\:", " "),
        (r"\!", ""),
        (r"\ ", " "),
        ("~", " "),
        ("{", " "),
        ("}", " "),
        ("\u2009", " "),
        ("\u202f", " "),
    ):
        s = s.replace(latex, plain)
    s = re.sub(r"(?<=\d),(?=\d{3}\b)", "", s)  # thousands separators
    return " ".join(s.split())


def parse_quantity(text: str) -> pint.Quantity:
    """A pint Quantity from a written answer; raises ValueError saying what could not be read."""
    s = _normalize(text)
    if not s:
        raise ValueError("empty answer")
    ureg = _registry()
    with _lock:  # pint's parser caches are not documented as thread-safe
        match = _NUMBER.match(s)
        if match:
            magnitude, unit_text = float(match.group(1)), match.group(2).strip()
            if unit_text.startswith("*"):
                unit_text = unit_text.lstrip("*").strip()
            try:
                units = ureg.parse_units(unit_text) if unit_text else ureg.dimensionless
            except Exception as exc:
                raise ValueError(f"unknown unit {unit_text!r} ({type(exc).__name__})") from exc
            return ureg.Quantity(magnitude, units)
        try:
            value = ureg.parse_expression(s)
        except Exception as exc:
            raise ValueError(f"cannot read a quantity from {text!r} ({type(exc).__name__})") from exc
    if not isinstance(value, ureg.Quantity):
        value = ureg.Quantity(float(value), ureg.dimensionless)
    return value


def _close(a: float, b: float, tol: Tolerance) -> bool:
    """|a - b| <= max(abs, rel * |b|), the project's tolerance rule."""
    bound = max(tol.abs or 0.0, (tol.rel or 0.0) * abs(b))
    return abs(a - b) <= bound


def _written(text: str) -> str:
    """The number of a quantity as written (`1.3e+02` of "1.3e+02 K"), "" when it does not start with one."""
    match = _NUMBER.match(_normalize(text))
    return match.group(1) if match else ""


def _rounds(got: pint.Quantity, converted: float, answer: str, ref: pint.Quantity, reference: str) -> bool:
    """Whether the answer rounds to the reference at the reference's significant figures, and is written at
    least as finely (its own last place, converted into the reference's unit)."""
    half = half_unit(_written(reference))
    if half is None or ref.dimensionless:
        return False
    place = answer_place(_written(answer))
    if place == float("inf"):
        return False
    if place:
        finer = _registry().Quantity(float(got.magnitude) + float(place), got.units)  # offsets cancel
        place = abs(float(finer.to(ref.units).magnitude) - converted)
    slack = ROUND_OFF.rel * abs(float(ref.magnitude))  # type: ignore[operator]
    return abs(converted - float(ref.magnitude)) <= float(half) + slack and place <= 2 * float(half) + slack


class PhysicsUnitsVerifier(SyncVerifier):
    """Compares the last \\boxed{} quantity with the reference after converting to the reference's unit."""

    name = "physics_units"

    def verify_sync(
        self, response: str, reference: str, *, tolerance: Tolerance | None = None
    ) -> VerificationResult:
        """Verdict on one response; never raises for a bad answer (pint is fast: a plain call)."""
        from loong_env.verifiers.boxed import extract_boxed

        start = time.perf_counter()

        def result(
            status: VerificationStatus, reason: str, extracted: str | None = None
        ) -> VerificationResult:
            return VerificationResult(
                status=status,
                reward=1.0 if status is VerificationStatus.correct else 0.0,
                extracted=extracted,
                reference=reference,
                reason=reason,
                duration_s=time.perf_counter() - start,
            )

        answer = extract_boxed(response)
        if answer is None:
            return result(VerificationStatus.no_answer, "no \\boxed{} answer found")
        answer = _LABEL.sub("", answer)
        if len(answer) > MAX_ANSWER_CHARS:
            return result(
                VerificationStatus.incorrect, f"answer longer than {MAX_ANSWER_CHARS} characters", answer
            )
        try:
            ref = parse_quantity(reference)
        except ValueError as exc:
            return result(
                VerificationStatus.error, f"reference {reference!r} is not a quantity: {exc}", answer
            )
        try:
            got = parse_quantity(answer)
        except ValueError as exc:
            return result(VerificationStatus.incorrect, f"unreadable quantity: {exc}", answer)
        if got.unitless and not ref.unitless:  # "30" for "30 degree" or "12 %" is still missing its unit
            return result(
                VerificationStatus.incorrect, f"missing unit (expected units of {ref.units:~})", answer
            )
        if got.dimensionality != ref.dimensionality:
            return result(
                VerificationStatus.incorrect,
                f"dimension mismatch: answer is {got.dimensionality}, reference is {ref.dimensionality}",
                answer,
            )
        try:
            converted = got.to(ref.units).magnitude
        except Exception as exc:  # noqa: BLE001  (offset units in odd combinations)
            return result(VerificationStatus.incorrect, f"cannot convert {got} to {ref.units}: {exc}", answer)
        stated = tolerance is not None and tolerance.bounded
        tol = tolerance if stated and tolerance is not None else ROUND_OFF
        if _close(float(converted), float(ref.magnitude), tol):
            return result(
                VerificationStatus.correct, f"{answer} = {converted:g} {ref.units:~} matches", answer
            )
        rounding = tolerance is None or bool(tolerance.sig_figs)  # an explicit exact tolerance wins too
        if rounding and _rounds(got, float(converted), answer, ref, reference):
            why = f"{answer} = {converted:g} {ref.units:~} matches {reference} at its significant figures"
            return result(VerificationStatus.correct, why, answer)
        return result(
            VerificationStatus.incorrect,
            f"{answer} = {converted:g} {ref.units:~}, expected {reference}",
            answer,
        )


def make_verifier() -> Verifier:
    """Plug-in entry point (see verifiers/README.md)."""
    return PhysicsUnitsVerifier()
