"""The spellings a correct solver may give for a seed's reference answer.

From the reference, the question and the tolerance: sympy's LaTeX and str forms of an expression; a number
at the precision the question states (else the one the tolerance implies) and with more digits than the
reference shows (anywhere in its rounding interval, also where the comparison reads the reference at its
significant figures: a quantity with a unit, or a number under `sig_figs`); with and without its unit; bare
and labelled (`x = 5`, `OUT = 102`); the other letter case of a multiple-choice letter. Each spelling says
who is to blame if a correct solver's spelling is judged wrong: the seed (its precision statement or
tolerance) or the comparison.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel

from loong_env.seeds.precision import (
    Precision,
    implied_precision,
    nudged,
    render,
    shown_unit,
    stated_precision,
    to_decimal,
    unit_of,
)
from loong_env.types import Tolerance

Blame = Literal["seed", "comparison"]

_NUMBER = re.compile(
    r"\s*(?P<cur>\\?\$)?\s*(?P<num>[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d*)?(?:[eE][-+]?\d+)?|[-+]?\.\d+)"
    r"\s*(?P<unit>.*?)\s*"
)
_PERCENT = re.compile(r"\\?%|percent")
_WORD = re.compile(r"[A-Za-z][A-Za-z'\- ]*")
_SYMPY_NAMES = {"E", "I", "pi", "oo", "e", "i"}
# Names parse_expr may see: it evaluates its input, so only plain math passes (never attribute access or calls
# of arbitrary names from a seed file).
_SAFE_FUNCTIONS = {
    "sqrt",
    "exp",
    "log",
    "sin",
    "cos",
    "tan",
    "asin",
    "acos",
    "atan",
    "sinh",
    "cosh",
    "tanh",
    "Abs",
    "pi",
    "oo",
    "E",
    "I",
    "Rational",
    "binomial",
    "factorial",
    "floor",
    "ceiling",
}
_SAFE_EXPRESSION = re.compile(r"[\w\s+\-*/().]*")
_UNIT_DEMANDED = re.compile(
    r"\bwith (?:its|the|a|their) units?\b|\binclud(?:e|ing) (?:the |its )?units?\b|\bunits? included\b",
    re.IGNORECASE,
)
_ASKED = [
    re.compile(r"\b(?i:what (?:number|value|word) is) \$?([A-Z][A-Za-z0-9_]*)\$?\s*\?"),
    re.compile(
        r"\b(?i:find|compute|determine|evaluate|what is)\s+(?i:the value of\s+)?"
        r"\$([A-Za-z](?:_\{?\w+\}?)?)\$\s*[?.]"
    ),
]
_OPTION = re.compile(r"(?:^|\s)\(?([A-Ea-e])[).]\s")  # `(A) ...`, `B. ...`: a lettered option
_PERCENT_ASKED = re.compile(r"\bpercent(?:age)?\b|\bin %", re.IGNORECASE)
_DOLLARS_ASKED = re.compile(r"\bin dollars\b|\bdollar amount\b|\bhow many dollars\b", re.IGNORECASE)


class Spelling(BaseModel):
    """One way a correct solver may write the reference, and who is at fault if it is judged wrong."""

    text: str
    kind: str
    blame: Blame
    note: str = ""


def _spelling(kind: str, text: str, note: str, *, blame: Blame = "comparison") -> Spelling:
    return Spelling(text=text, kind=kind, blame=blame, note=note)


class NumericReference(BaseModel):
    """A reference that is one number, maybe with a currency sign or a unit: `$1,234.50`, `1.433 J`."""

    currency: str = ""
    number: str
    unit: str = ""

    def value(self) -> Decimal:
        value = to_decimal(self.number)
        assert value is not None
        return value

    def spell(self, number: str, *, unit: bool = True) -> str:
        if not unit or not self.unit:
            return f"{self.currency}{number}"
        glue = "" if self.unit in ("%", "\\%") else " "
        return f"{self.currency}{number}{glue}{self.unit}"


def numeric_reference(reference: str) -> NumericReference | None:
    """The reference read as one number (with an optional currency sign and unit), else None."""
    m = _NUMBER.fullmatch(reference)
    if m is None or to_decimal(m.group("num")) is None:
        return None
    unit = m.group("unit")
    if unit and not _PERCENT.fullmatch(unit):
        from loong_env.equivalence.units import parse_quantity

        if parse_quantity(reference.strip().lstrip("\\$")) is None:
            return None  # `3*E`, `2B`, `5/6`, `3 apples`: not a number with a unit the engine reads
    return NumericReference(currency=m.group("cur") or "", number=m.group("num"), unit=unit)


def _is_collection(reference: str) -> bool:
    text = reference.strip()
    return text[:1] in "([{" or "," in text


def is_float_answer(reference: str) -> bool:
    """Whether the reference holds a decimal number (a rounded value, unless the question says exact)."""
    return bool(re.search(r"\d\.\d|\d[eE][-+]?\d", reference))


def _parse_plain(text: str) -> Any:
    """A sympy expression from plain-text math, refusing anything but arithmetic, known functions and
    one-letter symbols (parse_expr evaluates its input)."""
    names = re.findall(r"[A-Za-z_]\w*", text)
    if not _SAFE_EXPRESSION.fullmatch(text) or "__" in text:
        return None
    if any(len(n) > 1 and n not in _SAFE_FUNCTIONS for n in names):
        return None
    from sympy.parsing.sympy_parser import parse_expr

    return parse_expr(text)


def _parse_latex(text: str) -> Any:
    from latex2sympy2_extended import latex2sympy

    return latex2sympy(text)


def _sympy_forms(reference: str) -> list[Spelling]:
    """sympy's LaTeX and str printings of an expression reference (what a sympy-using solver writes)."""
    text = reference.strip()
    too_big = re.search(r"(?:\*\*|\^)\s*\{?\s*\(?\s*\d{3,}|!", text)  # never evaluate 2^{1000} or 100!
    words = _WORD.fullmatch(text) and text not in _SYMPY_NAMES
    if len(text) > 200 or _is_collection(text) or too_big or words:
        return []
    try:
        import sympy

        expr = _parse_latex(text) if "\\" in text else _parse_plain(text)
        if not isinstance(expr, sympy.Expr) or (expr.is_Number and expr.is_Integer):
            return []
        forms = {("sympy_latex", sympy.latex(expr)), ("sympy_str", str(expr))}
    except Exception:  # noqa: BLE001 - not a sympy expression: no sympy spellings
        return []
    squeezed = text.replace(" ", "")
    return [
        _spelling(kind, form, f"sympy's {kind[6:]} printing")
        for kind, form in sorted(forms)
        if form.replace(" ", "") != squeezed
    ]


def read_at_figures(reference: str, tolerance: Tolerance | None) -> bool:
    """Whether the comparison reads this reference at its significant figures (docs/equivalence.md): a
    measured quantity with a unit unless a tolerance is stated, or any number under `sig_figs`."""
    from loong_env.equivalence.rounding import half_unit
    from loong_env.equivalence.units import is_measured, parse_quantity

    if tolerance is not None and not tolerance.sig_figs:
        return False  # a stated tolerance, even an exact one, wins
    numeric = numeric_reference(reference)
    if numeric is None or numeric.currency or half_unit(numeric.number) is None:
        return False
    quantity = parse_quantity(reference.strip())
    if quantity is not None:
        return is_measured(quantity.unit)  # angles stay exact, opted in or not
    bare = not numeric.unit or _PERCENT.fullmatch(numeric.unit) is not None
    return tolerance is not None and bool(tolerance.sig_figs) and bare


def _numeric(
    ref: NumericReference, question: str, tolerance: Tolerance | None, figures: bool = False
) -> list[Spelling]:
    out: list[Spelling] = []
    value = ref.value()
    stated = stated_precision(question)
    precision: Precision | None = stated if stated is not None and stated.kind != "exact" else None
    how = f"{precision} as the question asks" if precision is not None else ""
    if precision is None and stated is None and (implied := implied_precision(tolerance)) is not None:
        precision, how = implied, f"{implied} as the tolerance implies (the question states no precision)"
    if precision is not None:
        out.append(_spelling("at_precision", ref.spell(render(value, precision)), how, blame="seed"))
    exact = stated is not None and stated.kind == "exact"
    if (tolerance is not None or precision is not None) and not exact:
        unit = unit_of(value, stated) if stated is not None else None
        unit = unit or shown_unit(ref.number)
        low, high = nudged(value, unit)
        note = f"more digits than the reference shows, within its rounding interval (+/- {unit / 2})"
        out += [_spelling("more_digits", ref.spell(v), note, blame="seed") for v in (low, high)]
    elif figures and not exact:
        from loong_env.equivalence.rounding import half_unit

        half = half_unit(ref.number)
        assert half is not None
        unit = Decimal(half.numerator) / Decimal(half.denominator) * 2
        low, high = nudged(value, unit)
        note = f"more digits than the reference shows, within its significant figures (+/- {unit / 2})"
        out += [_spelling("more_digits", ref.spell(v), note) for v in (low, high)]
    if ref.unit and not _UNIT_DEMANDED.search(question):
        note = "the bare number in the unit the question names"
        out.append(_spelling("without_unit", ref.spell(ref.number, unit=False), note))
    if not ref.unit and not ref.currency:
        if _PERCENT_ASKED.search(question):
            out.append(_spelling("with_unit", f"{ref.number}\\%", "with a % sign"))
        if _DOLLARS_ASKED.search(question):
            out.append(_spelling("with_unit", f"\\${ref.number}", "with a $ sign"))
    if ref.currency:
        out.append(_spelling("without_unit", ref.number, "without the $ sign"))
    return out


def asked_name(question: str) -> str | None:
    """The name the question asks for (`What number is OUT?` -> OUT, `Find $a_5$.` -> a_5), if it says."""
    for pattern in _ASKED:
        if m := pattern.search(question):
            return m.group(1)
    return None


def _labelled(reference: str, question: str) -> list[Spelling]:
    text = reference.strip()
    if _is_collection(text) or "=" in text or (_WORD.fullmatch(text) and text not in _SYMPY_NAMES):
        return []
    labels = ["x"]
    if (name := asked_name(question)) is not None and name != "x":
        labels.append(name)
    return [_spelling("labelled", f"{label} = {text}", f"labelled with {label!r}") for label in labels]


def _letter_case(reference: str, question: str) -> list[Spelling]:
    """`b` for `B` when the question offers lettered options: a choice label is not case-sensitive."""
    letter = reference.strip().strip("()")
    if len(letter) != 1 or not letter.isalpha():
        return []
    options = {m.lower() for m in _OPTION.findall(question)}
    if letter.lower() not in options or len(options) < 2:
        return []
    return [_spelling("letter_case", letter.swapcase(), "the option letter in the other case")]


def _effective(tolerance: Tolerance | None) -> Tolerance | None:
    """None for no tolerance and for an explicitly exact one (`{}`, which overrides a domain default)."""
    return tolerance if tolerance is not None and (tolerance.rel or tolerance.abs) else None


def spellings(reference: str, question: str, tolerance: Tolerance | None) -> list[Spelling]:
    """Every spelling a correct solver may use for `reference` (the reference itself first), deduplicated."""
    figures = read_at_figures(reference, tolerance)
    tolerance = _effective(tolerance)
    out = [_spelling("as_written", reference, "the reference itself")]
    numeric = numeric_reference(reference)
    if numeric is not None:
        out += _numeric(numeric, question, tolerance, figures)
    else:
        out += _sympy_forms(reference)
    out += _labelled(reference, question) + _letter_case(reference, question)
    seen: set[str] = set()
    unique = []
    for s in out:
        if s.text not in seen:
            seen.add(s.text)
            unique.append(s)
    return unique


def precision_warning(reference: str, question: str, tolerance: Tolerance | None) -> str | None:
    """Why the question should state a precision (a decimal answer, or one compared with a tolerance); also
    for a reference read at its significant figures, which a solver giving fewer figures still misses."""
    tolerance = _effective(tolerance)
    if stated_precision(question) is not None:
        return None
    if is_float_answer(reference):
        return "a decimal answer, but the question states no precision (significant figures or decimals)"
    if tolerance is not None and numeric_reference(reference) is not None:
        tol = tolerance.model_dump(exclude_none=True)
        return f"compared with a tolerance ({tol}) but the question states no precision"
    return None
