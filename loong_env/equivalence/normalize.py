"""Text clean-up shared by every check: the same answer in different LaTeX noise becomes one string."""

from __future__ import annotations

import re
import unicodedata

from loong_env.equivalence.vocabulary import FUNCTIONS

# Characters models emit for the same math; mapped to the LaTeX the parsers understand.
_UNICODE = {
    "\u2212": "-",
    "\u2013": "-",
    "\u2044": "/",
    "\u00d7": r"\times ",
    "\u22c5": r"\cdot ",
    "\u00b7": r"\cdot ",
    "\u2264": r"\le ",
    "\u2265": r"\ge ",
    "\u2260": r"\ne ",
    "\u221e": r"\infty ",
    "\u03c0": r"\pi ",
    "\u222a": r"\cup ",
    "\u2229": r"\cap ",
    "\u2205": r"\emptyset ",
    "\u221a": r"\sqrt",
    "\u00b0": r"^\circ ",
}
_UNICODE_RE = re.compile("|".join(map(re.escape, _UNICODE)))
# Spacing commands; inside a digit group they are thousands separators, elsewhere plain spaces.
_SPACES_RE = re.compile(r"(?<!\\)\\[,;:! ]|\\quad|\\qquad|~|\\thinspace|\\enspace")
_DIGIT_GROUP_RE = re.compile(
    r"(?<!(?<![\d.])0)(?<=\d)"  # never after a lone leading 0: `0{,}111` is a decimal comma, not 111
    r"(?:(?:(?:\{,\}|,)\\!|\{,\}|\\,|\\!|\\;|\\:|\\ ) ?|\u2009|\u202f|\u00a0)(?=\d{3}(?!\d))"
)  # `1,\!000` (the MATH dataset's idiom, also `1,\! 000`), `1{,}000`, `1\,000`, `1 000` with a thin space
_DEGREE_RE = re.compile(r"\^\s*\{\s*\\circ\s*\}|\^\s*\\circ")
_WRAPPERS = (
    "text",
    "textbf",
    "textit",
    "textrm",
    "mathrm",
    "mathbf",
    "mathit",
    "mbox",
    "operatorname",
    "textnormal",
    "boldsymbol",
    "mathsf",
    "mathtt",
    "rm",
)
_WRAPPER_RE = re.compile(r"\\(?:" + "|".join(_WRAPPERS) + r")\s*\{")
_DROP_RE = re.compile(
    r"\\(?:displaystyle|textstyle|scriptstyle|limits|nolimits|big|Big|bigg|Bigg)[lrm]?(?![A-Za-z])"
)
_LEFT_RIGHT_RE = re.compile(r"\\(?:left|right)(?![A-Za-z])\s*(\.)?")
_FRAC_RE = re.compile(r"\\[dtc]frac(?![A-Za-z])")
_OPS = {
    r"\leq": r"\le",
    r"\geq": r"\ge",
    r"\leqslant": r"\le",
    r"\geqslant": r"\ge",
    r"\lt": "<",
    r"\gt": ">",
    r"\neq": r"\ne",
    r"\varnothing": r"\emptyset",
    r"\lbrace": r"\{",
    r"\rbrace": r"\}",
    r"\lbrack": "[",
    r"\rbrack": "]",
    r"\lvert": "|",
    r"\rvert": "|",
    r"\dots": r"\ldots",
    r"\cdots": r"\ldots",
}
_OPS_RE = re.compile("|".join(re.escape(k) + r"(?![A-Za-z])" for k in sorted(_OPS, key=len, reverse=True)))
_MATH_DELIMS = ((r"\[", r"\]"), (r"\(", r"\)"), ("$$", "$$"), ("$", "$"))
_PERCENT_WORD_RE = re.compile(r"(?<=[\d}])\s*(?:pct\.?|per\s?cent)(?![A-Za-z])", re.IGNORECASE)
# Answers escaped twice for JSON (`\\frac`): undone only when every backslash is doubled and a doubled one
# starts a command we know, so a single-escaped `\\` (a matrix row break) is never halved.
_BACKSLASHES_RE = re.compile(r"\\+")
_DOUBLED_COMMAND_RE = re.compile(r"(?<!\\)\\\\(?:(?P<name>[A-Za-z]+)|[{}()\[\]])")
_COMMAND_NAMES = (
    frozenset(
        [
            "frac",
            "dfrac",
            "tfrac",
            "left",
            "right",
            "pi",
            "cdot",
            "times",
            "div",
            "pm",
            "mp",
            "text",
            "mathrm",
            "mathbf",
            "operatorname",
            "begin",
            "end",
            "infty",
            "le",
            "ge",
            "leq",
            "geq",
            "ne",
            "neq",
            "lt",
            "gt",
            "in",
            "cup",
            "cap",
            "emptyset",
            "varnothing",
            "dots",
            "ldots",
            "cdots",
            "angle",
            "circ",
            "mathbb",
            "overline",
            "sum",
            "prod",
            "binom",
            "approx",
            "alpha",
            "beta",
            "gamma",
            "delta",
            "theta",
            "lambda",
            "mu",
            "sigma",
            "phi",
            "omega",
            "boxed",
            "quad",
            "qquad",
        ]
    )
    | FUNCTIONS
)


def unwrap_command(text: str, pattern: re.Pattern[str]) -> str:
    """Replace `\\cmd{body}` by `body` for every match of `pattern` (which ends at the opening brace)."""
    out: list[str] = []
    pos = 0
    while (m := pattern.search(text, pos)) is not None:
        out.append(text[pos : m.start()])
        depth, i = 1, m.end()
        while i < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0) if text[i - 1] != "\\" else 0
            i += 1
        body = text[m.end() : i - 1] if depth == 0 else text[m.end() :]
        out.append(" " + body + " ")
        pos = i
    out.append(text[pos:])
    return "".join(out)


def strip_math_delimiters(text: str) -> str:
    """`$x$`, `\\(x\\)` and `\\[x\\]` are all just `x`."""
    changed = True
    while changed:
        changed = False
        text = text.strip()
        for left, right in _MATH_DELIMS:
            if len(text) >= len(left) + len(right) and text.startswith(left) and text.endswith(right):
                text = text[len(left) : len(text) - len(right)]
                changed = True
                break
    return text


def _arg(text: str, i: int) -> tuple[str, int] | None:
    """One TeX argument starting at i (after spaces): a {group}, a \\command or one character."""
    while i < len(text) and text[i] == " ":
        i += 1
    if i >= len(text):
        return None
    if text[i] == "{":
        depth, j = 0, i
        while j < len(text):
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
            if depth == 0:
                return text[i + 1 : j - 1], j
        return None
    if text[i] == "\\":
        j = i + 1
        while j < len(text) and text[j].isalpha():
            j += 1
        return text[i:j], j
    if text[i] in "}^_":
        return None
    return text[i], i + 1


def brace_arguments(text: str) -> str:
    """`\\frac12`, `\\frac\\pi2` and `\\sqrt2` written out with braces, which the LaTeX parser needs."""
    if "\\frac" not in text and "\\sqrt" not in text:
        return text
    out: list[str] = []
    i = 0
    while i < len(text):
        for cmd, n in (("\\frac", 2), ("\\sqrt", 1)):
            if text.startswith(cmd, i) and not text[i + len(cmd) : i + len(cmd) + 1].isalpha():
                j = i + len(cmd)
                opt = ""
                if n == 1 and text[j : j + 1] == "[" and "]" in text[j:]:
                    k = text.index("]", j)
                    opt, j = text[j : k + 1], k + 1
                args = []
                for _ in range(n):
                    got = _arg(text, j)
                    if got is None:
                        break
                    args.append(got[0])
                    j = got[1]
                if len(args) == n:
                    out.append(cmd + opt + "".join("{" + brace_arguments(a) + "}" for a in args))
                    i = j
                    break
        else:
            out.append(text[i])
            i += 1
            continue
    return "".join(out)


def undo_double_escape(text: str) -> str:
    """`\\\\frac{1}{5}` was JSON-escaped twice: halve every backslash run so the parsers can read it."""
    if "\\\\" not in text or any(len(m.group()) % 2 for m in _BACKSLASHES_RE.finditer(text)):
        return text
    if not any(m.group("name") in (None, *_COMMAND_NAMES) for m in _DOUBLED_COMMAND_RE.finditer(text)):
        return text
    return _BACKSLASHES_RE.sub(lambda m: "\\" * (len(m.group()) // 2), text)


def normalize(text: str) -> str:
    """One canonical spelling per answer: unicode, spacing, \\text{}, \\left/\\right, \\dfrac and friends."""
    text = undo_double_escape(text)
    text = unicodedata.normalize("NFKC", _DIGIT_GROUP_RE.sub("", text))
    text = _UNICODE_RE.sub(lambda m: _UNICODE[m.group()], text)
    text = strip_math_delimiters(text)
    text = _DIGIT_GROUP_RE.sub("", text)
    text = unwrap_command(text, _WRAPPER_RE)
    text = _DROP_RE.sub("", text)
    text = _LEFT_RIGHT_RE.sub("", text)
    text = _FRAC_RE.sub(r"\\frac", text)
    text = _DEGREE_RE.sub(r"^\\circ ", text)
    text = brace_arguments(text)
    text = _OPS_RE.sub(lambda m: _OPS[m.group()], text)
    text = _SPACES_RE.sub(" ", text)
    text = text.replace(r"\%", "%").replace(r"\$", "")
    text = _PERCENT_WORD_RE.sub("%", text)
    text = " ".join(text.split())
    text = re.sub(r"(?:\s*[.;]|\\\.)+$", "", text).strip()  # a sentence's full stop is not part of the answer
    return text
