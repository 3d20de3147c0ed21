"""Choice answers: `(A) 12` is `A` against a letter reference, else `12`; letters match in any case."""

from __future__ import annotations

import re

_CHOICE_RE = re.compile(r"\(\s*(?P<letter>[A-Ja-j])\s*\)\s*(?P<value>\S.*)")
_LETTER_RE = re.compile(r"\(?\s*(?P<letter>[A-Ja-j])\s*\)?")


def choice_letter(text: str) -> str | None:
    """The option letter of `B`, `b` or `(B)` (options A to J), upper-cased; None for anything else."""
    m = _LETTER_RE.fullmatch(text)
    return None if m is None else m.group("letter").upper()


def read_choice(candidate: str, reference: str) -> str:
    """`(A) 12` answers `A` when the reference is a letter, else `12`; other candidates are unchanged."""
    m = _CHOICE_RE.fullmatch(candidate)
    if m is None:
        return candidate
    return m.group("letter") if choice_letter(reference) is not None else m.group("value")
