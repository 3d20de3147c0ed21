"""The one reading of a `\\boxed{}` answer, used by every caller (rewards, routing, keep rule, code output).

Light on purpose (no equivalence engine unless several boxes meet a multi-part reference), so the router
and the code-output reader can count and read boxes without paying for sympy.
"""

from __future__ import annotations

import re

BOX_COMMANDS: tuple[str, ...] = ("boxed", "fbox")


def _box_starts(text: str, commands: tuple[str, ...]) -> list[int]:
    """Positions just after `\\boxed` / `\\fbox` where an argument follows."""
    pattern = re.compile(r"\\(?:" + "|".join(map(re.escape, commands)) + r")(?![A-Za-z])")
    return [m.end() for m in pattern.finditer(text)]


def _argument(text: str, i: int) -> str | None:
    """The braced argument at i (nested braces, escaped braces respected), or `\\boxed 5` style one token."""
    while i < len(text) and text[i] in " \t\n":
        i += 1
    if i >= len(text):
        return None
    if text[i] != "{":
        m = re.match(r"[^\s$\\]+", text[i:])
        return m.group(0) if m else None
    depth = 0
    j = i
    while j < len(text):
        ch = text[j]
        if ch == "\\":
            j += 2
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1 : j]
        j += 1
    return None


def extract_all_boxed(text: str, commands: tuple[str, ...] = BOX_COMMANDS) -> list[str]:
    """Every complete boxed answer in order of appearance (boxes inside a box are part of the outer one)."""
    out: list[str] = []
    end = -1
    for start in _box_starts(text, commands):
        if start < end:
            continue
        arg = _argument(text, start)
        if arg is not None:
            out.append(arg.strip())
            end = text.find(arg, start) + len(arg)
    return out


def extract_boxed(text: str, commands: tuple[str, ...] = BOX_COMMANDS) -> str | None:
    """The LAST complete `\\boxed{...}` / `\\boxed {..}` / `\\fbox{...}` answer, or None if there is none."""
    for start in reversed(_box_starts(text, commands)):
        arg = _argument(text, start)
        if arg is not None:
            return arg.strip()
    return None


def count_boxes(text: str, commands: tuple[str, ...] = BOX_COMMANDS) -> int:
    """How many complete boxed answers a text commits to (a box inside a box counts once)."""
    return len(extract_all_boxed(text, commands))


def reference_parts(reference: str) -> int:
    """How many answers a reference holds: the items of a bare list or a braced set (`{1, 2, 3}`), else 1."""
    from loong_env.equivalence.normalize import normalize
    from loong_env.equivalence.structure import Node, ShapeError, parse_shape

    try:
        shape = parse_shape(normalize(reference))
    except (ShapeError, RecursionError):
        return 1
    return len(shape.items) if isinstance(shape, Node) and shape.kind in ("bare", "set") else 1


def read_boxed(
    text: str,
    reference: str | None = None,
    *,
    commands: tuple[str, ...] = BOX_COMMANDS,
    multi_box: bool = True,
) -> str | None:
    """The answer a text gives: its last box, or one answer per box when the reference has several parts.

    A response that boxes `1`, `2` and `3` separately answers the set reference `{1, 2, 3}` with all three;
    a last box that already holds every part is read alone. Without a reference: the last box.
    """
    boxes = extract_all_boxed(text, commands)
    if not boxes:
        return None
    if reference is None or not multi_box or len(boxes) == 1:
        return boxes[-1]
    parts = reference_parts(reference)
    if parts > 1 and len(boxes) >= parts and reference_parts(boxes[-1]) < parts:
        return ", ".join(boxes[-parts:])
    return boxes[-1]
