"""Reading the public Loong format leniently: a record is rejected only for what makes it unusable.

`seed_dataset.json` is a JSON list of `{question, final_answer, rationale, metadata}`. Upstream files vary:
lists where one value is expected, numbers as strings, free-text difficulty, missing rationales, metadata
of any shape. The reader rejects a record only when it has no question, no final answer, or cannot be
parsed; every other value is coerced (each coercion reported, located) or kept in `metadata` as found.
Values the coercion could not keep whole are stored under `metadata["as_found"]`.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from loong_env.errors import ConfigError
from loong_env.seeds.load_report import Coercion, LoadReport, SeedIssue, shown, validate_point
from loong_env.types import LOONG_METADATA_FIELDS, DataPoint, Tolerance

LOONG_FILE = "seed_dataset.json"

_RECORD_KEYS = {"question", "final_answer", "rationale", "metadata"}

# Free-text difficulty words -> our 1-5 scale (see seeds/README.md); anything else becomes None.
DIFFICULTY_WORDS = {
    "trivial": 1,
    "very easy": 1,
    "beginner": 1,
    "elementary": 1,
    "easy": 2,
    "basic": 2,
    "simple": 2,
    "medium": 3,
    "moderate": 3,
    "intermediate": 3,
    "normal": 3,
    "average": 3,
    "hard": 4,
    "difficult": 4,
    "challenging": 4,
    "advanced": 4,
    "very hard": 5,
    "expert": 5,
    "competition": 5,
    "olympiad": 5,
}
_LEVEL = re.compile(r"(?:level|lvl|tier|grade|difficulty)?\s*[:#]?\s*(\d+(?:\.\d+)?)", re.IGNORECASE)
_RATIO = re.compile(r"(\d+(?:\.\d+)?)\s*(?:/|out of|of)\s*(\d+(?:\.\d+)?)", re.IGNORECASE)


class LoongRead(BaseModel):
    """What one Loong file gave: usable points, rejected records, and what was coerced on the way."""

    points: list[DataPoint] = Field(default_factory=list)
    issues: list[SeedIssue] = Field(default_factory=list)
    report: LoadReport = Field(default_factory=LoadReport)


def parse_difficulty(value: Any) -> tuple[int | None, str | None, bool]:
    """(level 1-5 or None, rule applied or None when taken as is, whether the original is lost)."""
    if value is None:
        return None, None, False
    if isinstance(value, bool):
        return None, "not a difficulty -> None", True
    if isinstance(value, int | float):
        if float(value).is_integer() and 1 <= value <= 5:
            return int(value), (None if isinstance(value, int) else "float -> level"), False
        if 1 <= value <= 5:
            return round(value), "fractional level -> nearest level", True
        return None, "level outside 1-5 -> None", True
    if not isinstance(value, str):
        return None, "not a difficulty -> None", True
    text = " ".join(value.strip().lower().split())
    if m := _RATIO.fullmatch(text):
        n, m_of = float(m.group(1)), float(m.group(2))
        if m_of > 0 and 0 <= n <= m_of:
            level = min(5, max(1, round(n / m_of * 5)))
            return level, "'n/m' text -> level", m_of != 5
        return None, "unreadable difficulty text -> None", True
    if m := _LEVEL.fullmatch(text):
        level, rule, lost = parse_difficulty(float(m.group(1)))
        return level, "level text -> level" if level is not None else rule, lost
    if text in DIFFICULTY_WORDS:
        return DIFFICULTY_WORDS[text], "difficulty word -> level", True
    return None, "unreadable difficulty text -> None", True


def _tolerance(value: Any) -> Tolerance | None:
    """A Tolerance from a number, a numeric string ('0.1', '1e-6', '0.5%') or a dict with such values."""

    def number(v: Any) -> float:
        if isinstance(v, str):
            v = v.strip()
            if v.endswith("%"):
                return float(v[:-1]) / 100
        if isinstance(v, bool):
            raise ConfigError("a boolean is not a tolerance")
        return float(v)

    if isinstance(value, dict):  # `sig_figs` is the one flag: rounded references (docs/equivalence.md)
        fields = {k: v if k == "sig_figs" else number(v) for k, v in value.items() if v is not None}
        return Tolerance(**fields)
    return Tolerance(rel=number(value))


class _Record:
    """One record being fitted to the schema; every change is noted where it happened."""

    def __init__(self, read: LoongRead, file: str, line: int, index: int) -> None:
        self.read, self.file, self.line, self.index = read, file, line, index
        self.as_found: dict[str, Any] = {}

    def note(self, field: str, rule: str, found: Any, kept: Any, *, lost: bool = False) -> None:
        where = {"file": self.file, "line": self.line, "record": self.index}
        self.read.report.coercions.append(
            Coercion(**where, field=field, rule=rule, found=shown(found), kept=shown(kept))
        )
        if lost:
            self.as_found[field] = found

    def reject(self, field: str | None, message: str) -> None:
        where = {"file": self.file, "line": self.line, "record": self.index}
        self.read.issues.append(SeedIssue(**where, field=field, message=message))

    def text(self, field: str, value: Any) -> str | None:
        """question / final_answer: required text; numbers and literals become their string."""
        if value is None or (isinstance(value, str) and not value.strip()):
            self.reject(field, "required: missing or empty")
            return None
        if isinstance(value, str):
            return value
        if field == "question" and isinstance(value, list | dict):
            self.reject(field, f"expected text, found {type(value).__name__}")
            return None
        kept = json.dumps(value, ensure_ascii=False) if isinstance(value, list | dict) else str(value)
        self.note(field, f"{type(value).__name__} -> text", value, kept)
        return kept

    def rationale(self, value: Any) -> str:
        if value is None or isinstance(value, str):
            return value or ""  # empty: an answer-only record (validation reports it as "no code")
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            kept = "\n".join(value)
            self.note("rationale", "list of lines -> code", value, "<joined>")
            return kept
        self.note("rationale", "not code -> empty", value, "", lost=True)
        return ""

    def one(self, field: str, value: Any) -> Any:
        """Fields holding one string (license, source, date_created)."""
        if value is None or isinstance(value, str):
            return value
        if isinstance(value, list) and all(isinstance(v, str | int | float) for v in value) and value:
            if len(value) == 1:
                kept = str(value[0])
                self.note(field, "one-element list -> value", value, kept)
                return kept
            if field == "source":
                kept = ", ".join(str(v) for v in value)
                self.note(field, "list -> joined text", value, kept)
                return kept
            kept = str(value[0])
            self.note(field, "list -> first value", value, kept, lost=True)
            return kept
        if isinstance(value, int | float) and not isinstance(value, bool):
            self.note(field, "number -> text", value, str(value))
            return str(value)
        self.note(field, f"{type(value).__name__} -> None", value, None, lost=True)
        return None

    def many(self, field: str, value: Any) -> list[str]:
        """Fields holding a list of strings (contributor, tags, required_dependencies)."""
        if value is None:
            return []
        if isinstance(value, str):
            separators = r"\n" if field == "contributor" else r"[,;\n]"  # a name may hold a comma
            parts = [p.strip() for p in re.split(separators, value) if p.strip()]
            self.note(field, "text -> list", value, parts)
            return parts
        if isinstance(value, list):
            kept = [str(v) for v in value if isinstance(v, str | int | float) and not isinstance(v, bool)]
            if len(kept) != len(value) or any(not isinstance(v, str) for v in value):
                self.note(field, "list items -> text", value, kept, lost=len(kept) != len(value))
            return kept
        self.note(field, f"{type(value).__name__} -> empty list", value, [], lost=True)
        return []

    def difficulty(self, value: Any) -> int | None:
        level, rule, lost = parse_difficulty(value)
        if rule is not None:
            self.note("difficulty", rule, value, level, lost=lost)
        return level

    def tolerance(self, value: Any) -> Tolerance | None:
        if value is None or isinstance(value, Tolerance):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
            return Tolerance(rel=float(value))  # the documented loose form, not a coercion
        try:
            kept = _tolerance(value)
        except (TypeError, ValueError) as exc:
            rule = f"unreadable tolerance -> None ({type(exc).__name__})"
            self.note("answer_tolerance", rule, value, None, lost=True)
            return None
        rule = f"{type(value).__name__} -> tolerance"
        self.note("answer_tolerance", rule, value, kept.model_dump(exclude_none=True))
        return kept


def _records(text: str, file: str, issues: list[SeedIssue]) -> Iterator[tuple[int, int, Any]]:
    """(line, index, element) of a JSON list, element by element; a broken element is reported with its line
    and column, and reading resumes at the next line that starts a record, so one bad record hides nothing."""
    decoder = json.JSONDecoder()
    ws = re.compile(r"[\s,]*")
    pos = ws.match(text, 0).end()  # type: ignore[union-attr]
    if not text.startswith("[", pos):
        message = "expected a JSON list of records: the file does not start with '['"
        issues.append(SeedIssue(file=file, line=1, message=message))
        return
    pos = ws.match(text, pos + 1).end()  # type: ignore[union-attr]
    index = 0
    while pos < len(text) and text[pos] != "]":
        line = text.count("\n", 0, pos) + 1
        try:
            value, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            message = f"not valid JSON: {exc.msg} at column {exc.colno}"
            issues.append(SeedIssue(file=file, line=exc.lineno, record=index, message=message))
            index += 1
            resumed = _resume(text, exc.pos, decoder)
            if resumed is None:
                return
            pos = resumed
            continue
        yield line, index, value
        index += 1
        pos = ws.match(text, end).end()  # type: ignore[union-attr]
    if pos >= len(text):
        last = text.count("\n") + 1
        issues.append(SeedIssue(file=file, line=last, message="unterminated list: missing ']'"))


def _resume(text: str, after: int, decoder: json.JSONDecoder) -> int | None:
    """Where the next record starts after a broken one: a line opening an object that decodes to a record."""
    for m in re.finditer(r"\n[ \t]*\{", text[after:]):
        start = after + m.end() - 1
        try:
            value, _ = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict) and _RECORD_KEYS & value.keys():
            return start
    return None


def read_loong(path: Path, domain: str) -> LoongRead:
    """Every usable record of one `seed_dataset.json`, with the rejected ones and the coercions located."""
    read = LoongRead()
    file = str(path)
    kept: Counter[str] = Counter()
    for line, index, record in _records(path.read_text(encoding="utf-8"), file, read.issues):
        read.report.records += 1
        rec = _Record(read, file, line, index)
        if not isinstance(record, dict):
            rec.reject(None, f"expected an object, found {type(record).__name__}")
            continue
        question = rec.text("question", record.get("question"))
        answer = rec.text("final_answer", record.get("final_answer"))
        if question is None or answer is None:
            continue
        meta = record.get("metadata")
        if not isinstance(meta, dict):
            if meta is not None:
                rec.note("metadata", f"{type(meta).__name__} -> empty", meta, {}, lost=True)
            meta = {}
        extra = {k: v for k, v in meta.items() if k not in LOONG_METADATA_FIELDS}
        for key, value in record.items():  # unexpected top-level keys are kept too, never dropped
            if key not in _RECORD_KEYS:
                extra[key if key not in extra else f"record.{key}"] = value
        kept.update(extra.keys())
        fields: dict[str, Any] = {
            "question": question,
            "final_answer": answer,
            "rationale": rec.rationale(record.get("rationale")),
            "domain": domain,
            "license": rec.one("license", meta.get("license")),
            "source": rec.one("source", meta.get("source")),
            "date_created": rec.one("date_created", meta.get("date_created")),
            "contributor": rec.many("contributor", meta.get("contributor")),
            "tags": rec.many("tags", meta.get("tags")),
            "required_dependencies": rec.many("required_dependencies", meta.get("required_dependencies")),
            "difficulty": rec.difficulty(meta.get("difficulty")),
            "answer_tolerance": rec.tolerance(meta.get("answer_tolerance")),
        }
        fields["metadata"] = {**extra, "origin": f"{file}:{line}"}
        if rec.as_found:
            fields["metadata"]["as_found"] = rec.as_found
        point = validate_point(fields, read.issues, file=file, line=line, record=index)
        if point is not None:
            read.points.append(point)
    read.report.kept_in_metadata = dict(kept.most_common())
    return read
