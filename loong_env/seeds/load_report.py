"""What loading seed files found: problems that reject a record, and values coerced to fit the schema.

Both are located (file, line, record index, field) so a reader can find and fix the record; neither stops
the loader, which collects everything before deciding to raise (`on_error="raise"`) or skip.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from loong_env.errors import LoongError
from loong_env.types import DataPoint

_SHOWN = 60


class SeedIssue(BaseModel):
    """One problem with one record, located precisely enough to fix it."""

    file: str
    line: int | None = None
    record: int | None = None
    field: str | None = None
    message: str

    def __str__(self) -> str:
        where = self.file + (f":{self.line}" if self.line is not None else "")
        if self.record is not None:
            where += f" (record {self.record})"
        field = f" field '{self.field}':" if self.field else ""
        return f"{where}:{field} {self.message}"


class SeedFormatError(LoongError, ValueError):
    """Seed files that do not match the format; lists every issue found, not just the first."""

    def __init__(self, issues: Sequence[SeedIssue]):
        self.issues = list(issues)
        head = f"{len(self.issues)} problem(s) in seed files:"
        super().__init__("\n".join([head, *(f"  {i}" for i in self.issues)]))


def shown(value: Any) -> str:
    """A short, unambiguous rendering of a value as found in a file."""
    text = repr(value)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."


class Coercion(BaseModel):
    """One value the loader changed to fit the schema: where, what it found, what it kept, by which rule."""

    file: str
    line: int | None = None
    record: int | None = None
    field: str
    rule: str = Field(description="Short name of the rule, e.g. 'difficulty text -> level'.")
    found: str
    kept: str

    def __str__(self) -> str:
        where = self.file + (f":{self.line}" if self.line is not None else "")
        if self.record is not None:
            where += f" (record {self.record})"
        return f"{where}: field '{self.field}': {self.rule}: {self.found} -> {self.kept}"


class LoadReport(BaseModel):
    """Everything loading coerced, plus the metadata keys kept as found (counted by key)."""

    coercions: list[Coercion] = Field(default_factory=list)
    kept_in_metadata: dict[str, int] = Field(
        default_factory=dict, description="Metadata keys the schema has no field for, kept as found."
    )
    records: int = 0

    def counts(self) -> list[tuple[str, str, int]]:
        """(field, rule, how many records) for every kind of coercion, most frequent first."""
        counter = Counter((c.field, c.rule) for c in self.coercions)
        return [(field, rule, n) for (field, rule), n in counter.most_common()]

    def examples(self, field: str, rule: str, limit: int = 2) -> list[Coercion]:
        """The first few coercions of one kind, to show with the counts."""
        return [c for c in self.coercions if (c.field, c.rule) == (field, rule)][:limit]

    @classmethod
    def merge(cls, reports: Iterable[LoadReport | None]) -> LoadReport:
        """One report from several (one per domain folder)."""
        out = cls()
        kept: Counter[str] = Counter()
        for report in reports:
            if report is None:
                continue
            out.coercions.extend(report.coercions)
            out.records += report.records
            kept.update(report.kept_in_metadata)
        out.kept_in_metadata = dict(kept.most_common())
        return out


def issues_from(
    exc: ValidationError, *, file: str, line: int | None = None, record: int | None = None
) -> list[SeedIssue]:
    """One located issue per pydantic error, quoting the value found."""
    out = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"]) or None
        found = err.get("input")
        found_text = "" if isinstance(found, dict) else f", found {found!r}"[:120]
        message = f"{err['msg']}{found_text}"
        out.append(SeedIssue(file=file, line=line, record=record, field=field, message=message))
    return out


def validate_point(
    fields: dict[str, Any], issues: list[SeedIssue], *, file: str, line: int | None, record: int | None = None
) -> DataPoint | None:
    """The DataPoint, or None with its problems appended to `issues`."""
    try:
        return DataPoint.model_validate(fields)
    except ValidationError as exc:
        issues.extend(issues_from(exc, file=file, line=line, record=record))
        return None
