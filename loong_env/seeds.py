"""The seed library: reading domain folders (ours and Loong's format) into a validated SeedDataset.

A domain folder is either ours (`domain.toml` + `seeds.jsonl`, one record a line) or the public Loong
format (`seed_dataset.json`, a JSON list of `{question, final_answer, rationale, metadata}`). Every
malformed record is reported with its file, line and field; one bad record never hides the others.
"""

from __future__ import annotations

import json
import os
import random
import re
import tomllib
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal, overload

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from loong_env.errors import ConfigError, LoongError, NotFoundError, UnknownNameError
from loong_env.library import seeds_root
from loong_env.types import DataPoint, Tolerance

OURS_FILE = "seeds.jsonl"
CONFIG_FILE = "domain.toml"
LOONG_FILE = "seed_dataset.json"

# Fields a seeds.jsonl record may carry; anything else is a typo worth reporting.
_RECORD_FIELDS = {
    "question", "final_answer", "rationale", "difficulty", "tags", "answer_tolerance",
    "license", "source", "contributor", "date_created", "required_dependencies", "metadata",
}  # fmt: skip
# Loong metadata keys that map onto DataPoint fields; the rest stays in `metadata`.
_LOONG_META_FIELDS = {"license", "source", "required_dependencies", "answer_tolerance", "tags", "contributor",
                      "date_created", "difficulty"}  # fmt: skip


def default_root() -> Path:
    """Where seeds live unless told otherwise (see loong_env.library: env var, loong.toml, shipped copy)."""
    return seeds_root()


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


class DomainConfig(BaseModel):
    """What a domain is and what its rationale code needs to run (from `domain.toml`)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9_]+$")
    description: str = ""
    requirements: list[str] = Field(default_factory=list)
    license: str | None = None
    answer_tolerance: Tolerance | None = None
    verifier: str | None = Field(default=None, description="Plug-in name from the top-level verifiers/ folder.")
    path: Path | None = None
    format: Literal["loong_env", "loong"] = "loong_env"

    @field_validator("answer_tolerance", mode="before")
    @classmethod
    def _coerce_tolerance(cls, v: Any) -> Any:
        return Tolerance.coerce(v)


class SeedDataset(Sequence[DataPoint]):
    """An ordered, immutable collection of seeds with the configs of their domains."""

    def __init__(
        self,
        items: Iterable[DataPoint],
        configs: dict[str, DomainConfig] | None = None,
        issues: Sequence[SeedIssue] = (),
    ):
        self._items = list(items)
        self._configs = dict(configs or {})
        self.issues: list[SeedIssue] = list(issues)  # what `on_error="skip"` left out, located

    def __len__(self) -> int:
        return len(self._items)

    @overload
    def __getitem__(self, index: int) -> DataPoint: ...
    @overload
    def __getitem__(self, index: slice) -> SeedDataset: ...
    def __getitem__(self, index: int | slice) -> DataPoint | SeedDataset:
        if isinstance(index, slice):
            return SeedDataset(self._items[index], self._configs)
        return self._items[index]

    def __iter__(self) -> Iterator[DataPoint]:
        return iter(self._items)

    def __repr__(self) -> str:
        return f"SeedDataset({len(self)} seeds, domains={self.domains})"

    @property
    def domains(self) -> list[str]:
        """Domains present, in first-seen order."""
        return list(dict.fromkeys(dp.domain for dp in self._items))

    def domain_config(self, domain: str) -> DomainConfig:
        """The domain's config; a domain without a folder config gets a bare one (no requirements)."""
        return self._configs.get(domain) or DomainConfig(name=_slug(domain))

    def filter(
        self, *, domain: str | Iterable[str] | None = None, difficulty: int | Iterable[int] | None = None
    ) -> SeedDataset:
        """Subset by domain(s) and/or difficulty level(s), keeping order."""
        domains = {domain} if isinstance(domain, str) else set(domain) if domain is not None else None
        levels = {difficulty} if isinstance(difficulty, int) else set(difficulty) if difficulty is not None else None
        if domains is not None and (unknown := domains - set(self.domains)):
            raise UnknownNameError("domain", sorted(unknown)[0], self.domains)
        kept = [
            dp
            for dp in self._items
            if (domains is None or dp.domain in domains) and (levels is None or dp.difficulty in levels)
        ]
        return SeedDataset(kept, self._configs)

    def sample(self, n: int, *, seed: int | None = None) -> list[DataPoint]:
        """n independent draws under a seed: distinct items while they last, then with replacement."""
        if not self._items:
            raise ConfigError("cannot sample from an empty SeedDataset")
        rng = random.Random(seed)
        if n <= len(self._items):
            return [self._items[i] for i in rng.sample(range(len(self._items)), n)]
        return [self._items[i] for i in rng.choices(range(len(self._items)), k=n)]

    def to_hf(self) -> Any:
        """A `datasets.Dataset`, one row a seed; nested fields are JSON strings so Arrow never guesses types."""
        import datasets

        rows = [_to_row(dp) for dp in self._items]
        return datasets.Dataset.from_list(rows) if rows else datasets.Dataset.from_dict({k: [] for k in _ROW_KEYS})

    @classmethod
    def concat(cls, parts: Iterable[SeedDataset]) -> SeedDataset:
        """One dataset from several (e.g. one per domain), keeping every part's domain configs."""
        parts = list(parts)
        configs = {d: ds.domain_config(d) for ds in parts for d in ds.domains}
        return cls((p for ds in parts for p in ds), configs)

    @classmethod
    def from_hf(cls, ds: Any, configs: dict[str, DomainConfig] | None = None) -> SeedDataset:
        """Rebuild from `to_hf()` output (or any dataset with question/final_answer/domain columns)."""
        return cls((_from_row(dict(row)) for row in ds), configs)


_ROW_KEYS = ["id", "question", "final_answer", "rationale", "domain", "difficulty", "license", "source",
             "required_dependencies", "answer_tolerance", "tags", "contributor", "date_created", "metadata"]  # fmt: skip


def _to_row(dp: DataPoint) -> dict[str, Any]:
    row = dp.model_dump(mode="json")
    row["answer_tolerance"] = json.dumps(row["answer_tolerance"])
    row["metadata"] = json.dumps(row["metadata"], sort_keys=True)
    return {k: row[k] for k in _ROW_KEYS}


def _from_row(row: dict[str, Any]) -> DataPoint:
    row.pop("id", None)
    for key in ("answer_tolerance", "metadata"):
        if isinstance(row.get(key), str):
            row[key] = json.loads(row[key])
    return DataPoint.model_validate({k: v for k, v in row.items() if v is not None or k == "difficulty"})


# --------------------------------------------------------------------------------------------- loading


def load_seeds(
    domain_or_path: str | os.PathLike[str] | None = None,
    *,
    root: str | os.PathLike[str] | None = None,
    on_error: Literal["raise", "skip"] = "raise",
) -> SeedDataset:
    """Load one domain (by name or folder), or every domain under `root`.

    `on_error="skip"` keeps the usable records of a noisy upstream folder and leaves the rest in
    `dataset.issues`; the default raises one SeedFormatError listing every problem.
    """
    base = Path(root) if root is not None else default_root()
    if domain_or_path is None:
        folders = domain_folders(base)
        if not folders:
            raise NotFoundError(f"no seed domains under {base} (expected folders with {OURS_FILE} or {LOONG_FILE})")
    else:
        candidate = Path(domain_or_path)
        if _is_domain_folder(candidate):
            folders = [candidate]
        elif candidate.is_dir() and domain_folders(candidate):
            folders = domain_folders(candidate)
        elif _is_domain_folder(base / str(domain_or_path)):
            folders = [base / str(domain_or_path)]
        else:
            known = ", ".join(f.name for f in domain_folders(base)) or "none"
            raise NotFoundError(
                f"no seed domain {str(domain_or_path)!r}: not a folder with {OURS_FILE} or {LOONG_FILE}, "
                f"nor a domain under {base} (known: {known})"
            )
    items: list[DataPoint] = []
    configs: dict[str, DomainConfig] = {}
    issues: list[SeedIssue] = []
    for folder in folders:
        config, points, problems = read_domain(folder)
        configs[config.name] = config
        items.extend(points)
        issues.extend(problems)
    if issues and on_error == "raise":
        raise SeedFormatError(issues)
    return SeedDataset(items, configs, issues)


def domain_folders(root: Path) -> list[Path]:
    """Domain folders directly under root, sorted by name."""
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if _is_domain_folder(p))


def _is_domain_folder(path: Path) -> bool:
    return path.is_dir() and ((path / OURS_FILE).is_file() or (path / LOONG_FILE).is_file())


def read_domain(folder: Path) -> tuple[DomainConfig, list[DataPoint], list[SeedIssue]]:
    """Read one folder in whichever format it is, collecting issues instead of stopping at the first."""
    if (folder / OURS_FILE).is_file():
        return _read_ours(folder)
    return _read_loong(folder)


def _read_ours(folder: Path) -> tuple[DomainConfig, list[DataPoint], list[SeedIssue]]:
    issues: list[SeedIssue] = []
    config = _read_config(folder, issues)
    points: list[DataPoint] = []
    path = folder / OURS_FILE
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                issues.append(SeedIssue(file=str(path), line=lineno, message=f"not valid JSON: {exc.msg} at column {exc.colno}"))  # fmt: skip
                continue
            if not isinstance(record, dict):
                issues.append(SeedIssue(file=str(path), line=lineno, message=f"expected a JSON object, found {type(record).__name__}"))  # fmt: skip
                continue
            unknown = sorted(set(record) - _RECORD_FIELDS)
            for key in unknown:
                issues.append(SeedIssue(file=str(path), line=lineno, field=key,
                                        message=f"unknown field; allowed: {', '.join(sorted(_RECORD_FIELDS))}"))  # fmt: skip
            if unknown:
                continue
            fields = {
                "license": config.license,
                "source": "loong_env",
                "contributor": ["loong_env maintainers"],
                "required_dependencies": config.requirements,
                "answer_tolerance": config.answer_tolerance,
                **record,
                "domain": config.name,
                "metadata": {**record.get("metadata", {}), "origin": f"{path}:{lineno}"},
            }
            for required in ("rationale", "difficulty"):
                if required not in record:
                    issues.append(SeedIssue(file=str(path), line=lineno, field=required, message="required field is missing"))  # fmt: skip
            point = _validate(fields, issues, file=str(path), line=lineno)
            if point is not None and "rationale" in record and "difficulty" in record:
                points.append(point)
    return config, points, issues


def _read_config(folder: Path, issues: list[SeedIssue]) -> DomainConfig:
    """The folder's `domain.toml`, or a bare config with the problem added to `issues`."""
    config_path = folder / CONFIG_FILE
    config = DomainConfig(name=_slug(folder.name), path=folder)
    if not config_path.is_file():
        issues.append(
            SeedIssue(file=str(config_path), message=f"missing {CONFIG_FILE} (name, description, requirements)")
        )
        return config
    try:
        raw = tomllib.loads(config_path.read_text(encoding="utf-8"))
        parsed = DomainConfig.model_validate({**raw, "path": folder})
    except tomllib.TOMLDecodeError as exc:
        issues.append(SeedIssue(file=str(config_path), message=f"invalid TOML: {exc}"))
        return config
    except ValidationError as exc:
        issues.extend(_issues_from(exc, file=str(config_path)))
        return config
    if parsed.name != folder.name:
        message = f"must equal the folder name {folder.name!r}, found {parsed.name!r}"
        issues.append(SeedIssue(file=str(config_path), field="name", message=message))
    return parsed


def _read_loong(folder: Path) -> tuple[DomainConfig, list[DataPoint], list[SeedIssue]]:
    path = folder / LOONG_FILE
    issues: list[SeedIssue] = []
    config = DomainConfig(name=_slug(folder.name), path=folder, format="loong",
                          description=f"Loong-format seeds from {folder}")  # fmt: skip
    text = path.read_text(encoding="utf-8")
    try:
        records = list(_json_list_with_lines(text))
    except (json.JSONDecodeError, ValueError) as exc:
        return config, [], [SeedIssue(file=str(path), message=f"expected a JSON list of records: {exc}")]
    points: list[DataPoint] = []
    requirement_sets: dict[tuple[str, ...], int] = {}
    for index, (lineno, record) in enumerate(records):
        if not isinstance(record, dict):
            issues.append(SeedIssue(file=str(path), line=lineno, record=index,
                                    message=f"expected an object, found {type(record).__name__}"))  # fmt: skip
            continue
        meta = record.get("metadata") or {}
        if not isinstance(meta, dict):
            issues.append(SeedIssue(file=str(path), line=lineno, record=index, field="metadata", message="expected an object"))  # fmt: skip
            meta = {}
        fields: dict[str, Any] = {k: record.get(k) for k in ("question", "final_answer", "rationale")}
        fields["domain"] = config.name
        extra = {k: v for k, v in meta.items() if k not in _LOONG_META_FIELDS}
        extra["origin"] = f"{path}:{lineno}"
        fields["metadata"] = extra
        for key in _LOONG_META_FIELDS & meta.keys():
            fields[key] = meta[key]
        if "difficulty" in fields:
            level = _loong_difficulty(fields["difficulty"])
            if level is _BAD:
                issues.append(SeedIssue(file=str(path), line=lineno, record=index, field="metadata.difficulty",
                                        message=f"expected 1-5 or 'Level N', found {fields['difficulty']!r}"))  # fmt: skip
                continue
            fields["difficulty"] = level
        if isinstance(fields.get("final_answer"), int | float) and not isinstance(fields["final_answer"], bool):
            fields["final_answer"] = str(fields["final_answer"])  # a bare number is meaningful; keep it
        point = _validate(fields, issues, file=str(path), line=lineno, record=index)
        if point is not None:
            points.append(point)
            key = tuple(point.required_dependencies)
            requirement_sets[key] = requirement_sets.get(key, 0) + 1
    if requirement_sets:
        config.requirements = list(max(requirement_sets, key=requirement_sets.__getitem__))
    return config, points, issues


_BAD = object()


def _loong_difficulty(value: Any) -> int | None | object:
    """Loong writes difficulty as 1-5, '3', or 'Level 5'; anything else is not meaningful."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 5:
        return value
    if isinstance(value, str) and (m := re.fullmatch(r"\s*(?:level\s*)?([1-5])\s*", value, re.IGNORECASE)):
        return int(m.group(1))
    return _BAD


def _validate(
    fields: dict[str, Any], issues: list[SeedIssue], *, file: str, line: int | None, record: int | None = None
) -> DataPoint | None:
    try:
        return DataPoint.model_validate(fields)
    except ValidationError as exc:
        issues.extend(_issues_from(exc, file=file, line=line, record=record))
        return None


def _issues_from(exc: ValidationError, *, file: str, line: int | None = None, record: int | None = None) -> list[SeedIssue]:
    out = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"]) or None
        found = err.get("input")
        found_text = "" if isinstance(found, dict) else f", found {found!r}"[:120]
        out.append(SeedIssue(file=file, line=line, record=record, field=field, message=f"{err['msg']}{found_text}"))
    return out


def _json_list_with_lines(text: str) -> Iterator[tuple[int, Any]]:
    """Decode a JSON list element by element, yielding (line number, element) so errors can point at a line."""
    decoder = json.JSONDecoder()
    ws = re.compile(r"[\s,]*")
    pos = ws.match(text, 0).end()  # type: ignore[union-attr]
    if not text.startswith("[", pos):
        raise ConfigError("the file does not start with '['")
    pos = ws.match(text, pos + 1).end()  # type: ignore[union-attr]
    line, counted = 1, 0
    while pos < len(text) and text[pos] != "]":
        line += text.count("\n", counted, pos)
        counted = pos
        value, end = decoder.raw_decode(text, pos)
        yield line, value
        pos = ws.match(text, end).end()  # type: ignore[union-attr]
    if pos >= len(text):
        raise ConfigError("unterminated list: missing ']'")


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9_]+", "_", name.lower()).strip("_") or "domain"


def warmup_rationales(requirements: Sequence[str], *, limit: int, root: Path | None = None) -> list[str]:
    """Rationales of the library's own domains that need exactly `requirements`: the sandbox's warm-up code.

    Read leniently (a broken record is skipped, never reported): warm-up only buys speed.
    """
    from loong_env.sandbox.envs import normalize_requirements

    wanted = normalize_requirements(requirements)
    codes: list[str] = []
    for folder in domain_folders(root or default_root()):
        config_path = folder / CONFIG_FILE
        try:
            meta = tomllib.loads(config_path.read_text(encoding="utf-8")) if config_path.is_file() else {}
            if normalize_requirements(meta.get("requirements", [])) != wanted:
                continue
            lines = (folder / OURS_FILE).read_text(encoding="utf-8").splitlines()
        except (OSError, ValueError, LoongError):
            continue
        for line in lines:
            try:
                code = json.loads(line).get("rationale")
            except (ValueError, AttributeError):
                continue
            if isinstance(code, str) and code.strip():
                codes.append(code)
            if len(codes) >= limit:
                return codes
    return codes


def library_domain_config(name: str, *, root: Path | None = None) -> DomainConfig | None:
    """A library domain's config by name, read from its `domain.toml` alone (None: no such domain)."""
    folder = (root or default_root()) / name
    if not (folder / CONFIG_FILE).is_file():
        return DomainConfig(name=_slug(name), path=folder, format="loong") if _is_domain_folder(folder) else None
    issues: list[SeedIssue] = []
    config = _read_config(folder, issues)
    if issues:
        raise SeedFormatError(issues)
    return config
