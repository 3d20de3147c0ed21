"""Labelled answers: `AB = 4`, `|PQ| = 1`, `f(2) = 7`, `m\\angle A = 30^\\circ`, `OUT = 102` answer the value.

A label is a name, never a computation: letters (not a two-letter lowercase product such as `xy`), Greek
letters, indices, primes, `f(args)` without operators, `|PQ|`, angle markers, `[ABC]`, or a tuple `(x, y)`.
`x + y = 1` is an equation and stays one. A ratio of such names (`V_1:V_2 = 11:21`, `S_{MBCN}:S = 7:32`)
labels a ratio: its value `11:21` is the number 11/21, never a clock time.
"""

from __future__ import annotations

import re

from loong_env.equivalence.structure import split_top, split_top_at
from loong_env.equivalence.vocabulary import FUNCTIONS

EQUALS_RE = re.compile(r"(?<![<>!=\\:])=(?!=)")
_GREEK = (
    r"(?:alpha|beta|gamma|delta|epsilon|varepsilon|zeta|eta|theta|vartheta|iota|kappa|lambda|mu|nu|xi|"
    r"rho|sigma|tau|upsilon|phi|varphi|chi|psi|omega|Gamma|Delta|Theta|Lambda|Xi|Pi|Sigma|Phi|Psi|Omega|ell)"
)
_INDEX = r"(?:_\{[^{}=]*\}|_[A-Za-z0-9])"
_DECORATED = r"\\(?:overline|vec|overrightarrow|hat|widehat|bar|tilde|mathbf)\s*\{\s*[A-Za-z]+\s*\}"
_NAME = rf"(?P<name>[A-Za-z]+|\\{_GREEK}(?![A-Za-z])|{_DECORATED})"
_BASE = rf"{_NAME}\s*{_INDEX}?'*(?:\^\{{-1\}})?"
_APPLIED_RE = re.compile(rf"{_BASE}\s*(?:\((?P<args>[^()]*)\))?")
_PLAIN_BASE = _BASE.replace("?P<name>", "?:")
_ABS_RE = re.compile(rf"(?:\||\\\|)\s*(?:{_PLAIN_BASE}\s*)+(?:\||\\\|)")
_ANGLE_RE = re.compile(r"(?:m\s*)?\\(?:angle|measuredangle)\s*\{?\s*[A-Z]{1,3}\s*\}?")
_AREA_RE = re.compile(r"\[\s*[A-Z]{3,}\s*\]")
_TUPLE_RE = re.compile(r"\(\s*[A-Za-z](?:_\{?\w+\}?)?(?:\s*,\s*[A-Za-z](?:_\{?\w+\}?)?)+\s*\)")
# Arguments with a sum or product in them make `x(x+1) = 6` an equation, not the label `x(..)`.
_OPERATOR_RE = re.compile(r"[+*<>]|\\(?:cdot|times|pm|mp)(?![A-Za-z])|(?<=[\w})])\s*-")
# Lowercase words that name an operation, not a quantity: `sin = ...` is not a labelled answer.
_FUNCTION_WORDS = FUNCTIONS
_IN_RE = re.compile(r"\s*(?P<label>[^=]+?)\s*\\in\s+(?P<set>\S.*)")
_GROUP_SEP_RE = re.compile(r"\s*;\s*|\s+or\s+|\s*\\(?:lor|vee)(?![A-Za-z])\s*")
_ITEM_SEP_RE = re.compile(r"\s*,\s*(?:and\s+)?|\s+and\s+|\s*\\(?:land|wedge)(?![A-Za-z])\s*")


def is_label(text: str) -> bool:
    """Whether `text` names what an answer is about (see the module docstring) rather than computing it."""
    text = text.strip()
    if _TUPLE_RE.fullmatch(text) or _ANGLE_RE.fullmatch(text) or _AREA_RE.fullmatch(text):
        return True
    if _ABS_RE.fullmatch(text):
        return True
    m = _APPLIED_RE.fullmatch(text)
    if m is None or (m.group("args") is not None and _OPERATOR_RE.search(m.group("args"))):
        return False
    name = m.group("name")
    return not (name.islower() and (len(name) == 2 or name in _FUNCTION_WORDS))  # `xy = 6` is a product


def split_equation(text: str) -> tuple[str, str] | None:
    """(lhs, rhs) of `lhs = rhs` (the last `=` of a chain, outside brackets); None without a plain `=`."""
    parts = split_top_at(text, EQUALS_RE)
    if len(parts) < 2:
        return None
    return parts[0], parts[-1]


def split_label(text: str) -> tuple[str, str] | None:
    """(label, value) of a labelled answer such as `AB = 4`; None when the left side is not a label."""
    eq = split_equation(text)
    if eq is None or not eq[1] or not is_label(eq[0]):
        return None
    return eq[0].replace(" ", ""), eq[1]


def strip_label(text: str) -> str:
    """`x = 3` and `f(2) = 3` mean the answer is 3, `x \\in [2, 5]` means [2, 5]; other text is unchanged."""
    if (m := _IN_RE.fullmatch(text)) is not None and is_label(m.group("label")):
        return m.group("set")
    if len(split_top(text, ",;")) > 1:
        return text
    labelled = split_label(text)
    return text if labelled is None else labelled[1]


def drop_labels(text: str) -> str:
    """Labelled values are their values: `a=4, b=5` is `4, 5`; `p=5,q=2; p=7,q=2` is `(5, 2), (7, 2)`."""
    groups = [split_top_at(g, _ITEM_SEP_RE) for g in split_top_at(text, _GROUP_SEP_RE)]
    if sum(len(g) for g in groups) < 2:
        return text
    labelled: list[list[tuple[str, str]]] = []
    for group in groups:
        pairs = [split_label(item) for item in group]
        if any(pair is None for pair in pairs):
            return text
        labelled.append([pair for pair in pairs if pair is not None])
    if len(labelled) == 1:
        return ", ".join(value for _, value in labelled[0])
    order = [label for label, _ in labelled[0]]
    solutions = []
    for pairs in labelled:
        values = dict(pairs)
        if len(values) != len(pairs) or sorted(values) != sorted(order):
            return text  # solutions that name different things are not one list of tuples
        row = [values[label] for label in order]
        solutions.append(row[0] if len(row) == 1 else "(" + ", ".join(row) + ")")
    return ", ".join(solutions)


_COLON_RE = re.compile(r"\s*(?::|\\colon(?![A-Za-z]))\s*")


def _ratio_label(text: str) -> tuple[str, str] | None:
    """(label, value) of `A:B = value` whose left side is a ratio of labels; None otherwise."""
    eq = split_equation(text)
    if eq is None or not eq[1]:
        return None
    names = split_top_at(eq[0], _COLON_RE)
    if len(names) < 2 or not all(name and is_label(name) for name in names):
        return None
    return ":".join(name.replace(" ", "") for name in names), eq[1]


def as_ratio(value: str) -> str:
    """`11:21` as the number it stands for, `\\frac{11}{21}`; other text (`1`, `1:2:3`) unchanged."""
    parts = split_top_at(value, _COLON_RE)
    if len(parts) != 2 or not all(parts):
        return value
    return rf"\frac{{{parts[0]}}}{{{parts[1]}}}"


def ratio_values(a: str, b: str) -> tuple[str, str]:
    """When either answer labels a ratio (`V_1:V_2 = 11:21`, `A:B = 1`), both answer that ratio's value: the
    label is dropped and `p:q` on either side becomes p/q. Two different ratio labels stay equations."""
    ra, rb = _ratio_label(a), _ratio_label(b)
    if ra is None and rb is None:
        return a, b
    if ra is not None and rb is not None and ra[0] != rb[0]:
        return a, b
    return as_ratio(ra[1] if ra else a), as_ratio(rb[1] if rb else b)
