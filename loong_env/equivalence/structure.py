"""The shape of an answer: a scalar, an ordered or unordered collection, a mapping, a matrix or an interval.

Shapes are read in-process with a bracket scanner (linear time, depth-limited), so `[1, 2, 3]`, `{'a': 1}`,
`\\{1, 2\\}`, `(-\\infty, 2]` and `\\begin{pmatrix}..\\end{pmatrix}` compare part by part and only the parts
that need sympy go to the worker.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

from loong_env.equivalence.numbers import parse_number
from loong_env.errors import LoongError

MAX_DEPTH = 60

Kind = Literal["list", "tuple", "set", "bare", "interval", "dict", "matrix"]
_OPEN = {"(": ")", "[": "]", "{": "}"}
_CLOSE = set(")]}")
# One environment only: `M + N` or `2M` written with two environments is an expression for sympy,
# not a matrix.
_MATRIX_RE = re.compile(
    r"^\\begin\{([pbBvV]?matrix|array)\}(?:\{[^{}]*\})?((?:(?!\\end\{\1\}).)*)\\end\{\1\}$", re.DOTALL
)
_BRACKETED_MATRIX_RE = re.compile(
    r"^[\[(]\s*(\\begin\{(?:matrix|array)\}.*\\end\{(?:matrix|array)\})\s*[\])]$", re.DOTALL
)
_PY_CALL_RE = re.compile(r"^(set|frozenset|tuple|list|Matrix|FiniteSet)\((.*)\)$", re.DOTALL)


class ShapeError(LoongError, ValueError):
    """The answer nests deeper than any real answer does (a guard against pathological input)."""


@dataclass
class Atom:
    """One scalar answer, still as text; `string` is set when it was a quoted Python string literal."""

    text: str
    string: str | None = None


@dataclass
class Node:
    """A collection: items in written order; for dicts, `items` alternate key, value; `text` as written."""

    kind: Kind
    items: list[Shape] = field(default_factory=list)
    brackets: str = ""
    text: str = ""


Shape = Atom | Node


def _walk(text: str) -> Iterator[tuple[int, str, int, bool]]:
    """(index, char, depth after it, is_bracket) for every character outside quotes and backslash commands.

    Escaped braces `\\{` `\\}` count as brackets (reported at the brace); any other backslash is reported and
    the character after it belongs to a command (e.g. `\\,` or `\\\\`) and is skipped.
    """
    depth = 0
    quote: str | None = None
    i = 0
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 2
                continue
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "\\":
            if i + 1 < len(text) and text[i + 1] in "{}":
                depth += 1 if text[i + 1] == "{" else -1
                yield i + 1, text[i + 1], depth, True
            else:
                yield i, ch, depth, False  # where a command such as `\\lor` starts
            i += 2
            continue
        elif ch in _OPEN or ch in _CLOSE:
            depth += 1 if ch in _OPEN else -1
            yield i, ch, depth, True
        else:
            yield i, ch, depth, False
        i += 1


def _scan(text: str) -> list[tuple[int, int]]:
    """Depth after each bracket character as (index, depth-after) pairs; raises on deep nesting."""
    marks: list[tuple[int, int]] = []
    for i, _, depth, is_bracket in _walk(text):
        if is_bracket:
            if depth > MAX_DEPTH:
                raise ShapeError(f"brackets nest deeper than {MAX_DEPTH} levels")
            marks.append((i, depth))
    return marks


def split_top(text: str, seps: str = ",") -> list[str]:
    """Split on separators that sit outside every bracket and quote."""
    parts: list[str] = []
    start = 0
    for i, ch, depth, is_bracket in _walk(text):
        if depth == 0 and not is_bracket and ch in seps:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts]


def split_top_at(text: str, pattern: re.Pattern[str]) -> list[str]:
    """Split on matches of `pattern` (` or `, `=`) that start outside every bracket and quote."""
    if pattern.search(text) is None:
        return [text.strip()]
    outside = {i for i, _, depth, is_bracket in _walk(text) if depth == 0 and not is_bracket}
    parts: list[str] = []
    start = 0
    for m in pattern.finditer(text):
        if m.start() in outside and m.start() >= start and m.end() > m.start():
            parts.append(text[start : m.start()])
            start = m.end()
    parts.append(text[start:])
    return [p.strip() for p in parts]


def _outer_pair(text: str) -> tuple[str, str, str] | None:
    """(open, inner, close) when one bracket pair spans the whole text, else None."""
    if len(text) < 2:
        return None
    if text.startswith(r"\{") and text.endswith(r"\}"):
        opener, closer, inner = "{", "}", text[2:-2]
        if _balanced(inner):
            return opener, inner, closer
        return None
    if text[0] not in _OPEN or text[-1] not in _CLOSE:
        return None
    inner = text[1:-1]
    if not _balanced(inner):
        return None
    if text[0] == "{" and text[-1] != "}":
        return None
    return text[0], inner, text[-1]


def _balanced(inner: str) -> bool:
    depth = 0
    for _, d in _scan(inner):
        depth = d
        if d < 0:
            return False
    return depth == 0


def _string_literal(text: str) -> str | None:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            return None
        return value if isinstance(value, str) else None
    return None


def parse_shape(text: str, depth: int = 0) -> Shape:
    """Read the shape of an (already normalised) answer."""
    shape = _parse_shape(text, depth)
    if isinstance(shape, Node) and not shape.text:
        shape.text = text.strip()
    return shape


def _parse_shape(text: str, depth: int = 0) -> Shape:
    if depth > MAX_DEPTH:
        raise ShapeError(f"answer nests deeper than {MAX_DEPTH} levels")
    text = text.strip()
    _scan(text)  # depth guard before any recursion
    if text in (r"\emptyset", "{}", r"\{\}", "set()"):
        return Node("set", [], "{}", text)
    if (s := _string_literal(text)) is not None:
        return Atom(text, string=s)
    if (m := _BRACKETED_MATRIX_RE.match(text)) is not None:  # \\left[\\begin{matrix}..\\end{matrix}\\right]
        text = m.group(1)
    if (m := _MATRIX_RE.match(text)) is not None:
        rows = [r for r in re.split(r"\\\\", m.group(2)) if r.strip() and not r.strip().startswith(r"\hline")]
        return Node("matrix", [Node("list", [parse_shape(c, depth + 1) for c in r.split("&")]) for r in rows])
    if (m := _PY_CALL_RE.match(text)) is not None:
        name, arg = m.group(1), m.group(2).strip()
        if name in ("set", "frozenset") and not arg:
            return Node("set", brackets="{}")
        if _balanced(arg):
            inner = parse_shape(arg, depth + 1)
            if name == "FiniteSet":
                return Node("set", [parse_shape(p, depth + 1) for p in split_top(arg)], "{}")
            if isinstance(inner, Node) and inner.kind in ("list", "tuple", "set"):
                if name == "Matrix":
                    return Node("matrix", inner.items, "[]")
                kind = {"set": "set", "frozenset": "set", "tuple": "tuple", "list": "list"}[name]
                return Node(kind, inner.items, {"set": "{}", "tuple": "()", "list": "[]"}[kind])
    pair = _outer_pair(text)
    if pair is not None:
        opener, inner, closer = pair
        parts = split_top(inner) if inner.strip() else []
        if opener == "{" and parts and all(len(split_top(p, ":")) == 2 for p in parts):
            items: list[Shape] = []
            for p in parts:
                k, v = split_top(p, ":")
                items += [parse_shape(k, depth + 1), parse_shape(v, depth + 1)]
            return Node("dict", items, "{}")
        if opener + closer in ("(]", "[)", "]]", "[[", "]["):
            return Node("interval", [parse_shape(p, depth + 1) for p in parts], opener + closer)
        if opener == "(" and closer == ")" and len(parts) == 1:
            return parse_shape(inner, depth + 1)  # plain grouping parentheses
        if (
            opener == "{"
            and closer == "}"
            and len(parts) == 1
            and not text.startswith("\\{")
            and ":" not in inner
        ):
            return (
                parse_shape(inner, depth + 1) if "," not in inner else Node("set", [parse_shape(inner)], "{}")
            )
        kind: Kind = {"(": "tuple", "[": "list", "{": "set"}[opener]  # type: ignore[assignment]
        if opener + closer not in ("()", "[]", "{}"):
            return Atom(text)
        return Node(kind, [parse_shape(p, depth + 1) for p in parts], opener + closer)
    parts = split_top(text, ",;")
    if len(parts) > 1 and all(parts) and parse_number(text) is None:
        return Node("bare", [parse_shape(p, depth + 1) for p in parts])
    return Atom(text)
