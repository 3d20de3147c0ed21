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
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal, overload

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from loong_env.errors import ConfigError, LoongError, NotFoundError, UnknownNameError
from loong_env.seeds.library import seeds_root
from loong_env.seeds.load_report import LoadReport, SeedFormatError, SeedIssue, issues_from, validate_point
from loong_env.seeds.loong_format import LOONG_FILE, read_loong
from loong_env.types import LOONG_METADATA_FIELDS, DataPoint, Tolerance

OURS_FILE = "seeds.jsonl"
CONFIG_FILE = "domain.toml"

__all__ = [
    "CONFIG_FILE",
    "LOONG_FILE",
    "OURS_FILE",
    "DomainConfig",
    "LoadReport",
    "SeedDataset",
    "SeedFormatError",
    "SeedIssue",
    "default_root",
    "domain_folders",
    "library_domain_config",
    "load_seeds",
    "read_domain",
    "warmup_rationales",
]

# Fields a seeds.jsonl record may carry; anything else is a typo worth reporting.
_RECORD_FIELDS = {
    "question",
    "final_answer",
    "rationale",
    "difficulty",
    "tags",
    "answer_tolerance",
    "license",
    "source",
    "contributor",
    "date_created",
    "required_dependencies",
    "metadata",
}


def default_root() -> Path:
    """Where seeds live unless told otherwise (seeds.library: env var, loong.toml, shipped copy)."""
    return seeds_root()


class DomainConfig(BaseModel):
    """What a domain is and what its rationale code needs to run (from `domain.toml`)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9_]+$")
    description: str = ""
    requirements: list[str] = Field(default_factory=list)
    license: str | None = None
    answer_tolerance: Tolerance | None = None
    verifier: str | None = Field(default=None, description="A plug-in from the top-level verifiers/ folder.")
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
        load_report: LoadReport | None = None,
    ):
        self._items = list(items)
        self._configs = dict(configs or {})
        self.issues: list[SeedIssue] = list(issues)  # what `on_error="skip"` left out, located
        self.load_report = load_report  # what loading coerced (`load_seeds(..., report=True)`)

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
        domains = _as_set(domain, str)
        levels = _as_set(difficulty, int)
        if domains is not None and (unknown := domains - set(self.domains)):
            raise UnknownNameError("domain", min(unknown), self.domains)
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
        """A `datasets.Dataset`, one row a seed; nested fields are JSON strings so Arrow never guesses."""
        import datasets

        rows = [_to_row(dp) for dp in self._items]
        if not rows:
            return datasets.Dataset.from_dict({k: [] for k in _ROW_KEYS})
        return datasets.Dataset.from_list(rows)

    @classmethod
    def concat(cls, parts: Iterable[SeedDataset]) -> SeedDataset:
        """One dataset from several (e.g. one per domain), keeping every part's domain configs."""
        parts = list(parts)
        configs = {d: ds.domain_config(d) for ds in parts for d in ds.domains}
        issues = [i for ds in parts for i in ds.issues]
        reports = [ds.load_report for ds in parts]
        report = LoadReport.merge(reports) if any(r is not None for r in reports) else None
        return cls((p for ds in parts for p in ds), configs, issues, report)

    @classmethod
    def from_hf(cls, ds: Any, configs: dict[str, DomainConfig] | None = None) -> SeedDataset:
        """Rebuild from `to_hf()` output (or any dataset with question/final_answer/domain columns)."""
        return cls((_from_row(dict(row)) for row in ds), configs)


def _as_set(value: Any, single: type) -> set[Any] | None:
    """None (no filter), one value, or several values -> None or a set."""
    if value is None:
        return None
    return {value} if isinstance(value, single) else set(value)


_ROW_KEYS = ["id", "question", "final_answer", "rationale", "domain", *LOONG_METADATA_FIELDS, "metadata"]


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
    report: bool = False,
) -> SeedDataset:
    """Load one domain (by name or folder), or every domain under `root`.

    `on_error="skip"` keeps the usable records of a noisy upstream folder and leaves the rest in
    `dataset.issues`; the default raises one SeedFormatError listing every problem. `report=True` attaches
    `dataset.load_report`: every value coerced to fit the schema (located) and the metadata kept as found.
    """
    base = Path(root) if root is not None else default_root()
    if domain_or_path is None:
        folders = domain_folders(base)
        if not folders:
            expected = f"expected folders with {OURS_FILE} or {LOONG_FILE}"
            raise NotFoundError(f"no seed domains under {base} ({expected})")
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
    reports: list[LoadReport] = []
    for folder in folders:
        config, points, problems, found = _read_domain(folder)
        configs[config.name] = config
        items.extend(points)
        issues.extend(problems)
        reports.append(found)
    if issues and on_error == "raise":
        raise SeedFormatError(issues)
    return SeedDataset(items, configs, issues, LoadReport.merge(reports) if report else None)


def domain_folders(root: Path) -> list[Path]:
    """Domain folders directly under root, sorted by name."""
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if _is_domain_folder(p))


def _is_domain_folder(path: Path) -> bool:
    return path.is_dir() and ((path / OURS_FILE).is_file() or (path / LOONG_FILE).is_file())


def read_domain(folder: Path) -> tuple[DomainConfig, list[DataPoint], list[SeedIssue]]:
    """Read one folder in whichever format it is, collecting issues instead of stopping at the first."""
    config, points, issues, _ = _read_domain(folder)
    return config, points, issues


def _read_domain(folder: Path) -> tuple[DomainConfig, list[DataPoint], list[SeedIssue], LoadReport]:
    if (folder / OURS_FILE).is_file():
        config, points, issues = _read_ours(folder)
        records = len(points) + len({i.line for i in issues if i.line})
        return config, points, issues, LoadReport(records=records)
    return _read_loong(folder)


def _read_ours(folder: Path) -> tuple[DomainConfig, list[DataPoint], list[SeedIssue]]:
    """Our format, strictly: every problem of every line is an issue located by file, line and field."""
    issues: list[SeedIssue] = []
    config = _read_config(folder, issues)
    points: list[DataPoint] = []
    path = folder / OURS_FILE
    allowed = ", ".join(sorted(_RECORD_FIELDS))
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue

            def issue(message: str, field: str | None = None, at: int = lineno) -> None:
                issues.append(SeedIssue(file=str(path), line=at, field=field, message=message))

            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                issue(f"not valid JSON: {exc.msg} at column {exc.colno}")
                continue
            if not isinstance(record, dict):
                issue(f"expected a JSON object, found {type(record).__name__}")
                continue
            unknown = sorted(set(record) - _RECORD_FIELDS)
            for key in unknown:
                issue(f"unknown field; allowed: {allowed}", key)
            missing = [required for required in ("rationale", "difficulty") if required not in record]
            for required in missing:
                issue("required field is missing", required)
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
            point = validate_point(fields, issues, file=str(path), line=lineno)
            if point is not None and not missing:
                points.append(point)
    return config, points, issues


def _read_config(folder: Path, issues: list[SeedIssue]) -> DomainConfig:
    """The folder's `domain.toml`, or a bare config with the problem added to `issues`."""
    config_path = folder / CONFIG_FILE
    config = DomainConfig(name=_slug(folder.name), path=folder)
    if not config_path.is_file():
        message = f"missing {CONFIG_FILE} (name, description, requirements)"
        issues.append(SeedIssue(file=str(config_path), message=message))
        return config
    try:
        raw = tomllib.loads(config_path.read_text(encoding="utf-8"))
        parsed = DomainConfig.model_validate({**raw, "path": folder})
    except tomllib.TOMLDecodeError as exc:
        issues.append(SeedIssue(file=str(config_path), message=f"invalid TOML: {exc}"))
        return config
    except ValidationError as exc:
        issues.extend(issues_from(exc, file=str(config_path)))
        return config
    if parsed.name != folder.name:
        message = f"must equal the folder name {folder.name!r}, found {parsed.name!r}"
        issues.append(SeedIssue(file=str(config_path), field="name", message=message))
    return parsed


def _read_loong(folder: Path) -> tuple[DomainConfig, list[DataPoint], list[SeedIssue], LoadReport]:
    """A Loong-format folder, read leniently (seeds.loong_format); requirements: the most common set."""
    name = _slug(folder.name)
    description = f"Loong-format seeds from {folder}"
    config = DomainConfig(name=name, path=folder, format="loong", description=description)
    read = read_loong(folder / LOONG_FILE, name)
    sets = Counter(tuple(p.required_dependencies) for p in read.points if p.required_dependencies)
    if sets:
        config.requirements = list(sets.most_common(1)[0][0])
    return config, read.points, read.issues, read.report


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9_]+", "_", name.lower()).strip("_") or "domain"


def warmup_rationales(
    requirements: Sequence[str], *, limit: int | None = None, root: Path | None = None
) -> list[str]:
    """Rationales of the library's own domains that need exactly `requirements`: the sandbox's warm-up code.

    Read leniently (a broken record is skipped, never reported): warm-up only buys speed. Whoever starts a
    Sandbox hands it these (`Sandbox(reqs, warmup=...)`); the sandbox itself knows no seed library.
    """
    from loong_env.sandbox.envs import normalize_requirements
    from loong_env.sandbox.pool import MAX_WARMUP_SNIPPETS

    limit = MAX_WARMUP_SNIPPETS if limit is None else limit

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
        if not _is_domain_folder(folder):
            return None
        return DomainConfig(name=_slug(name), path=folder, format="loong")
    issues: list[SeedIssue] = []
    config = _read_config(folder, issues)
    if issues:
        raise SeedFormatError(issues)
    return config
