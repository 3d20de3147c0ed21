"""The keep rule's checks that do not ask the model: is every stated quantity used, is the question posed?

Two routes through one small model share its misreadings (a condition dropped by the code is dropped by
the solve too), so agreement alone is weak evidence. These checks read the question and the code as text:

* grounding: every quantity the question states (numbers, number words) reaches the computation - it is
  a live literal of the code (not one assigned to a name nobody reads), allowing the usual re-spellings
  (n - 1 / n + 1 for range bounds, x100 / x1000 / x60 / x3600 and their inverses for units and percents);
  and every named condition (parity, primality, divisibility) leaves a trace in the code.
* well-posedness: the question is self-contained (no "the following list", "the code", "the figure"),
  asks for one answer (no "give an example"), and names the values it sums or multiplies.

Each finding is a sentence a person can act on; `conditions` lists what a solve prompt can spell out.
"""

from __future__ import annotations

import ast
import re
from fractions import Fraction

from pydantic import BaseModel, Field

_NUMBER_WORDS = {
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "twenty": 20,
    "hundred": 100,
    "dozen": 12,
}
# A number in prose or LaTeX: not part of a name (x1, a_2, H2O, 3D), thousands separators allowed.
_NUMBER = re.compile(r"(?<![A-Za-z_\d.])(\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?)(?:\s*%)?(?![A-Za-z_\d])")
_SCIENTIFIC = re.compile(
    r"(\d+(?:\.\d+)?)\s*(?:\\times|\\cdot|×|\*|x)\s*10\s*\^\s*\{?\s*(-?\d+)\s*\}?|(\d+(?:\.\d+)?)[eE](-?\d+)"
)
# Words that make the number after them a condition (a bound or a filter), not a description.
_CONDITION_CUE = re.compile(
    r"\b(?:(?:less|fewer|more|greater|larger|smaller|higher|lower)\s+than|at\s+(?:most|least)"
    r"|no\s+(?:more|less|fewer)|exceed(?:s|ing)?|below|above|under|over|up\s+to|between|within|exactly"
    r"|divisible\s+by|multiples?\s+of|not\s+(?:exceed|more)|maximum\s+of|minimum\s+of|limit\s+of"
    r"|sum\s+(?:is|of\s+\w+\s+is)|equals?|is\s+equal\s+to|budget\s+of|capacity\s+of|per)\b"
    # words whole ("per" is not "permutation"); "->" is an arc, not a bound
    r"|<|(?<!-)>|\\le|\\ge|\\leq|\\geq|\\lt|\\gt|≤|≥|=",
    re.IGNORECASE,
)
_CUE_WINDOW = 24  # characters before a number in which a cue makes it a condition
# A run of three or more numbers (a list, a set, a matrix row, "0, 1, ..., 18") is data, not a bound.
_LISTED = re.compile(r"-?\d+(?:\.\d+)?(?:\s*(?:,|&|\\\\)\s*(?:\\ldots|\\dots|\.\.\.|-?\d+(?:\.\d+)?)){2,}")

_WORD = re.compile(r"\b(" + "|".join(_NUMBER_WORDS) + r")\b", re.IGNORECASE)
SCALES = (  # how a stated number may be re-spelled in code: as is, percent, units
    Fraction(1),
    Fraction(100),
    Fraction(1, 100),
    Fraction(1000),
    Fraction(1, 1000),
    Fraction(60),
    Fraction(1, 60),
    Fraction(3600),
    Fraction(1, 3600),
)

# Named conditions: (name, pattern in the question, pattern of evidence in the code).
_CONDITIONS: tuple[tuple[str, re.Pattern[str], re.Pattern[str]], ...] = (
    (
        "parity",
        re.compile(r"\b(even|odd)\s+(?:numbers?|integers?|digits?|divisors?|positions?|sums?|length)\b"),
        re.compile(
            r"%\s*2\b|&\s*1\b|\beven\b|\bodd\b|range\([^)]*,\s*2\s*\)|\[\s*[^\]]*::\s*2\s*\]", re.IGNORECASE
        ),
    ),
    (
        "primality",
        re.compile(r"\bprimes?\b(?!\s+factori[sz]ation)", re.IGNORECASE),
        re.compile(r"prime|factorint|totient|%", re.IGNORECASE),
    ),
    (
        "divisibility",
        re.compile(r"\b(?:divisible by|multiples? of|evenly divides|is a divisor of)\b", re.IGNORECASE),
        re.compile(r"%|divisors?|gcd|lcm|//|mod\b|factor", re.IGNORECASE),
    ),
)

_EXTERNAL = re.compile(
    r"\b(?:the|this) (?:following|given|above|below|attached|provided) "
    r"(?:list|table|data|dataset|array|graph|figure|diagram|set|matrix|sequence|numbers|code|program|"
    r"function|image|values|text)\b"
    r"|\b(?:shown|listed|given|defined) (?:above|below)\b|\bin the (?:figure|diagram|table|picture|image)\b"
    r"|\b(?:the|this|your|my) (?:code|program|script)\b|\bwhat does the (?:code|program) (?:print|output)\b",
    re.IGNORECASE,
)
_NOT_ONE_ANSWER = re.compile(
    r"\b(?:give|find|provide|write|name|construct) (?:an|one) (?:example|instance)\b|\bany (?:one )?example\b"
    r"|\bone possible\b|\bfor example,? find\b",
    re.IGNORECASE,
)
# Sums / products / averages "of the selected elements" need the elements' values in the question.
_AGGREGATE = re.compile(
    r"\b(?:sum|product|average|mean|total)\s+of\s+(?:the\s+|their\s+|its\s+)?(?:selected\s+|chosen\s+|)"
    r"(?:elements|items|objects|numbers|values|entries|members)\b",
    re.IGNORECASE,
)
_VALUES_GIVEN = re.compile(
    r"\{[^{}]*\d[^{}]*\}|\[[^\[\]]*\d[^\[\]]*\]|\b\d+\s*(?:,\s*-?\d+\s*){2,}|\bfrom\s+-?\d+\s+(?:to|through)\s+-?\d+"
    r"|\bbetween\s+-?\d+\s+and\s+-?\d+|\b(?:integers|numbers|digits)\s+(?:-?\d+|one)\b"
    r"|\bfirst\s+\d+\s+(?:positive\s+|natural\s+|odd\s+|even\s+|prime\s+)?(?:integers|numbers|primes)"
    r"|\b(?:positive|natural|whole)\s+(?:integers|numbers)|\bdigits\b|\bprimes?\b|\bintegers\b",
    re.IGNORECASE,
)


class Finding(BaseModel):
    """One check's result: passed, or failed with a sentence a person can act on (`undecided`: can't tell)."""

    check: str
    passed: bool
    detail: str = ""
    undecided: bool = Field(False, description="The static check could not decide (a judge call may).")


class Quantity(BaseModel):
    """A number the question states, with the phrase around it (what a solve prompt can list)."""

    value: str
    phrase: str
    condition: bool = Field(
        False, description="It bounds or filters (less than 15, at most 2, divisible by 3)."
    )


def _context(text: str, start: int, end: int, width: int = 40) -> str:
    """The words around a match, trimmed to whole words."""
    left = text[max(0, start - width) : start].split(" ", 1)[-1] if start > width else text[:start]
    right = text[end : end + width].rsplit(" ", 1)[0] if len(text) > end + width else text[end:]
    return " ".join((left + text[start:end] + right).split())


def _to_fraction(text: str) -> Fraction | None:
    try:
        return Fraction(text.replace(",", ""))
    except (ValueError, ZeroDivisionError):
        return None


def quantities(question: str) -> list[Quantity]:
    """Every quantity the question states, once each, in order (scientific notation read as one number)."""
    found: list[tuple[int, Fraction, str]] = []
    cues = [m.end() for m in _CONDITION_CUE.finditer(question)]
    listed = [m.span() for m in _LISTED.finditer(question)]
    taken: list[tuple[int, int]] = []
    for m in _SCIENTIFIC.finditer(question):
        mantissa, exponent = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
        base = _to_fraction(mantissa)
        if base is not None:
            found.append((m.start(), base * Fraction(10) ** int(exponent), _context(question, *m.span())))
            taken.append(m.span())
    for m in _NUMBER.finditer(question):
        if any(a <= m.start() < b for a, b in taken):
            continue
        value = _to_fraction(m.group(1))
        if value is not None:
            found.append((m.start(), value, _context(question, *m.span())))
    for m in _WORD.finditer(question):
        if (
            not any(0 <= m.start() - end <= 2 for end in cues)
            or "between" in question[max(0, m.start() - 9) : m.start()]
        ):
            continue  # "two variables", "a six-month put": words are counted only as bounds ("at most two")
        found.append((m.start(), Fraction(_NUMBER_WORDS[m.group(1).lower()]), _context(question, *m.span())))
    seen: dict[Fraction, Quantity] = {}
    for start, value, phrase in sorted(found, key=lambda t: t[0]):
        condition = any(0 <= start - end <= _CUE_WINDOW for end in cues) and not any(
            a <= start < b for a, b in listed
        )
        if value not in seen:
            seen[value] = Quantity(value=_show(value), phrase=phrase, condition=condition)
        elif condition and not seen[value].condition:
            seen[value] = Quantity(value=_show(value), phrase=phrase, condition=True)
    return list(seen.values())


def _show(value: Fraction) -> str:
    return str(value.numerator) if value.denominator == 1 else f"{float(value):g}"


def dead_constant_ids(tree: ast.AST) -> set[int]:
    """ids of the literals assigned only to names nobody reads (`limit = 15` and then no `limit`)."""
    loaded = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    loaded |= {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    dead: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = [t.id for t in targets if isinstance(t, ast.Name)]
            if names and len(names) == len(targets) and not any(n in loaded for n in names):
                dead |= {id(c) for c in ast.walk(node.value) if isinstance(c, ast.Constant)}
    return dead


def _live_constants(code: str) -> set[Fraction] | None:
    """Numeric literals of the code that can reach its output (None when the code does not parse).

    A literal assigned only to names that are never read is dead (`limit = 15` and then no `limit`);
    numbers inside string literals count (the code may parse them), as do literals anywhere else.
    """
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return None
    dead = dead_constant_ids(tree)
    values: set[Fraction] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Constant) or id(node) in dead:
            continue
        if isinstance(node.value, bool):
            continue
        if isinstance(node.value, int | float):
            try:
                values.add(Fraction(node.value))
            except (ValueError, OverflowError):
                continue
        elif isinstance(node.value, str):
            for m in re.finditer(r"\d+(?:\.\d+)?", node.value):
                values.add(Fraction(m.group(0)))
    # A power written out (10**9, 2**k) also states its base and exponent; unary minus keeps the magnitude.
    for node in ast.walk(tree):
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
            for side in (node.left, node.right):
                if isinstance(side, ast.Constant) and isinstance(side.value, int) and id(side) not in dead:
                    values.add(Fraction(side.value))
            if isinstance(node.left, ast.Constant) and isinstance(node.right, ast.Constant):
                try:
                    values.add(Fraction(node.left.value) ** int(node.right.value))
                except (TypeError, ValueError, OverflowError, ZeroDivisionError):
                    pass
    return {abs(v) for v in values}


def _reaches(value: Fraction, live: set[Fraction]) -> bool:
    """The quantity is a live literal, directly, as a range bound (+-1), or rescaled (percent, units)."""
    for scale in SCALES:
        scaled = value * scale
        if scaled in live or (scaled.denominator == 1 and (scaled - 1 in live or scaled + 1 in live)):
            return True
    # floats written with fewer digits (0.05 for 5 %, 3.14 vs 3.14159) compare to 6 significant digits
    approx = {round(float(v), 6) for v in live}
    return any(round(float(value * s), 6) in approx for s in SCALES)


def grounding(question: str, code: str) -> Finding:
    """Every stated condition reaches the code; the detail names the first that does not."""
    live = _live_constants(code)
    if live is None:
        return Finding(check="grounding", passed=False, undecided=True, detail="the code does not parse")
    missing = [
        q for q in quantities(question) if q.value not in ("0", "1") and not _reaches(Fraction(q.value), live)
    ]
    bounds = [q for q in missing if q.condition]
    if bounds:
        q = bounds[0]
        more = f" (and {len(bounds) - 1} more: {[m.value for m in bounds[1:4]]})" if len(bounds) > 1 else ""
        return Finding(
            check="grounding",
            passed=False,
            detail=f"the question's condition {q.value} ({q.phrase!r}) never reaches the code{more}",
        )
    lowered = question.lower()
    for name, stated, evidence in _CONDITIONS:
        if (m := stated.search(lowered)) and not evidence.search(code):
            phrase = _context(question, *m.span())
            return Finding(
                check="grounding",
                passed=False,
                detail=f"the question requires {name} ({phrase!r}) but nothing in the code checks it",
            )
    if missing:  # a described quantity (a 52-card deck, 8 vertices) may be implied by the code's library call
        q = missing[0]
        return Finding(
            check="grounding",
            passed=True,
            undecided=True,
            detail=f"the question states {q.value} ({q.phrase!r}); the code has no such literal",
        )
    return Finding(check="grounding", passed=True)


def well_posedness(question: str) -> Finding:
    """The question stands alone, asks for one answer, and gives the values it aggregates."""
    if m := _EXTERNAL.search(question):
        return Finding(
            check="well_posedness",
            passed=False,
            detail=f"the question refers to material it does not contain: {m.group(0)!r}",
        )
    if m := _NOT_ONE_ANSWER.search(question):
        return Finding(
            check="well_posedness",
            passed=False,
            detail=f"the question asks for one of many answers: {m.group(0)!r}",
        )
    if (m := _AGGREGATE.search(question)) and not _VALUES_GIVEN.search(question):
        return Finding(
            check="well_posedness",
            passed=False,
            detail=f"the question asks for the {m.group(0)!r} but never says what their values are",
        )
    return Finding(check="well_posedness", passed=True)


def conditions(question: str) -> list[str]:
    """The question's quantities and named conditions as short lines a solve prompt can list explicitly."""
    lines = [f"{q.value}: {q.phrase}" for q in quantities(question)]
    lowered = question.lower()
    for name, stated, _ in _CONDITIONS:
        if m := stated.search(lowered):
            lines.append(f"{name}: {_context(question, *m.span())}")
    return lines
