"""Answers that may have no value (`1/0`, `\\tan(\\pi/2)`, `\\infty - \\infty`): unequal even to themselves.

Only sympy can tell for sure, so these cheap in-process signs decide which texts must reach the worker instead
of being called equal because they are spelled the same.
"""

from __future__ import annotations

import re

# Printed undefined values and a literal zero denominator: undefined for certain.
_UNDEFINED_RE = re.compile(
    r"(?<![A-Za-z])(?:zoo|nan|NaN)(?![A-Za-z])"
    r"|(?:/|\\div)\s*\(?\s*[-+]?0+(?:\.0*)?\s*\)?(?![\d.])"
    r"|\\frac\s*\{[^{}]*\}\s*\{\s*[-+]?0+(?:\.0*)?\s*\}"
)
_NONZERO = r"[1-9]\d*(?:\.\d+)?"
# Anything that could be undefined: a denominator that is not a plain non-zero number, a function with poles,
# or infinity in a sum, difference, product or quotient.
_MAYBE_RE = re.compile(
    rf"/\s*(?!{_NONZERO}(?![\d.]))|\\div(?![A-Za-z])"
    r"|\\(?:tan|cot|sec|csc|log|ln|lg)(?![A-Za-z])"
    r"|(?:\\infty|\boo\b)\s*(?:[-+*/]|\\cdot|\\times)"
    r"|(?<=[\w})])\s*(?:[-+*/]|\\cdot|\\times)\s*(?:\\infty|\boo\b)"
)
_PLAIN_DENOMINATOR_RE = re.compile(rf"\s*{_NONZERO}\s*")


def looks_undefined(text: str) -> bool:
    """A printed undefined value (`zoo`, `nan`) or a division by a literal zero (`1/0`, `\\frac{1}{0}`)."""
    return _UNDEFINED_RE.search(text) is not None


def _denominators(text: str) -> list[str]:
    """The second argument of every `\\frac{..}{..}` (nested braces respected)."""
    out: list[str] = []
    for m in re.finditer(r"\\frac\s*(?=\{)", text):
        i, groups = m.end(), []
        while len(groups) < 2 and i < len(text) and text[i] == "{":
            depth, j = 0, i
            for j in range(i, len(text)):
                depth += {"{": 1, "}": -1}.get(text[j], 0)
                if depth == 0:
                    break
            groups.append(text[i + 1 : j])
            i = j + 1
            while i < len(text) and text[i] == " ":
                i += 1
        if len(groups) == 2:
            out.append(groups[1])
    return out


def may_be_undefined(text: str) -> bool:
    """Whether sympy must look before two identical spellings of `text` are called equal."""
    if looks_undefined(text) or _MAYBE_RE.search(text):
        return True
    return any(not _PLAIN_DENOMINATOR_RE.fullmatch(d) for d in _denominators(text))
