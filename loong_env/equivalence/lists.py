"""Lists written in words: `6 and 8`, `1, 2, and 3`, `a, b or c`, `(11,7)or(7,11)` and `x = \\pm 2` are lists.

Inequalities joined by `or`/`and` stay one condition (a union or an intersection) for sympy to read as a set.
"""

from __future__ import annotations

import re

from loong_env.equivalence.labels import EQUALS_RE
from loong_env.equivalence.structure import split_top, split_top_at
from loong_env.equivalence.vocabulary import FUNCTIONS

MATH_WORDS = FUNCTIONS | {"pi", "inf", "oo", "infty"}
RELATION_RE = re.compile(r"<|>|\\le(?![a-z])|\\ge(?![a-z])|\\cup|\\cap|\\infty|\\emptyset|\\mathbb\{R\}")
_WORD_RE = re.compile(r"[A-Za-z][A-Za-z'\- ]*[A-Za-z]|[A-Za-z]")
_OR_RE = re.compile(r"\s*,?\s+or\s+|(?<=[)\]}])\s*or\s*(?=[(\[{\\])|\s*,?\s*\\(?:lor|vee)(?![A-Za-z])\s*")
_AND_RE = re.compile(r"\s*,\s*(?:and|or)\s+|\s+and\s+|(?<=[)\]}])\s*and\s*(?=[(\[{\\])")
_PM_RE = re.compile(r"\\(?:pm|mp)(?![A-Za-z])")


def is_words(text: str) -> bool:
    """Plain-language answers ('yes', 'Alice', 'True') are compared as text, never as products of symbols."""
    if not _WORD_RE.fullmatch(text):
        return False
    return len(text) > 1 and text.lower() not in MATH_WORDS


def _listed(parts: list[str]) -> bool:
    """Parts joined by a word are answers, unless empty, conditions (`x<1 or x>3`) or groups of equations."""
    if not all(parts) or any(RELATION_RE.search(p) for p in parts):
        return False
    return not any(len(split_top(p, ",;")) > 1 and EQUALS_RE.search(p) for p in parts)


def expand_alternatives(text: str) -> str:
    """`x = 2 or x = -2`, `6 and 8`, `1, 2, and 3`, `\\pm 2` as comma lists: `x = 2, x = -2`, `6, 8`, ..."""
    if len(parts := split_top_at(text, _AND_RE)) > 1:
        if _listed(parts) and not any(is_words(p) and len(p) > 1 for p in parts):  # `salt and pepper` is one
            return ", ".join(expand_alternatives(p) for p in parts)
        return text
    if len(parts := split_top_at(text, _OR_RE)) > 1:
        return ", ".join(parts) if _listed(parts) else text
    if len(split_top(text, ",;")) > 1:
        return text
    if len(_PM_RE.findall(text)) == 1 and not RELATION_RE.search(text):
        plus, minus = _PM_RE.sub("+", text), _PM_RE.sub("-", text)
        if _PM_RE.search(text).group() == r"\mp":  # type: ignore[union-attr]
            plus, minus = minus, plus
        return f"{plus.replace('= +', '= ')}, {minus}"
    return text
