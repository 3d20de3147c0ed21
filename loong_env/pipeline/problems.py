"""Where problems come from: the seed library, a generation run, any JSONL file, or a `datasets.Dataset`.

Every source becomes a list of DataPoints (question + reference answer + domain), so the verifiers judge
traces exactly as the env judges answers. A spec string picks the source:

    seeds                       every seed of the library
    seeds:logic,physics         the seeds of some domains
    runs/x                      a generation run's folder (its accepted.jsonl)
    problems.jsonl              one JSON object a line with a question and an answer field
    saved_dataset/              a folder written by `datasets.Dataset.save_to_disk`
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from loong_env.errors import ConfigError, NotFoundError
from loong_env.types import DataPoint

QUESTION_FIELDS = ("question", "problem", "prompt")
ANSWER_FIELDS = ("final_answer", "answer", "reference", "ground_truth")


def load_problems(
    source: str | os.PathLike[str] | Iterable[DataPoint] | Any,
    *,
    question_field: str | None = None,
    answer_field: str | None = None,
    domain: str = "unknown",
    difficulty: Iterable[int] | None = None,
    limit: int | None = None,
) -> list[DataPoint]:
    """Problems from a spec string or path (see the module docstring), DataPoints, or a `datasets.Dataset`.

    Rows without a `domain` get `domain`; `difficulty` keeps only those levels; `limit` keeps the first n.
    """
    if isinstance(source, str | os.PathLike):
        items = _from_spec(str(source), question_field, answer_field, domain)
    elif _is_hf_dataset(source):
        items = _from_rows(source, "dataset", question_field, answer_field, domain)
    else:
        items = []
        for n, item in enumerate(source):
            if isinstance(item, DataPoint):
                items.append(item)
            elif isinstance(item, Mapping):
                items.extend(_from_rows([item], f"item {n}", question_field, answer_field, domain))
            else:
                raise ConfigError(
                    f"problem {n}: expected a DataPoint or a mapping, got {type(item).__name__}"
                )
    if difficulty is not None:
        levels = set(difficulty)
        items = [dp for dp in items if dp.difficulty in levels]
    return items[:limit] if limit is not None else items


def _is_hf_dataset(obj: Any) -> bool:
    return type(obj).__module__.startswith("datasets.") and hasattr(obj, "column_names")


def _from_spec(
    spec: str, question_field: str | None, answer_field: str | None, domain: str
) -> list[DataPoint]:
    from loong_env.generators.output import ACCEPTED, read_accepted
    from loong_env.seeds.dataset import SeedDataset, load_seeds

    if spec == "seeds" or spec.startswith("seeds:"):
        names = [d.strip() for d in spec.partition(":")[2].split(",") if d.strip()]
        parts = [load_seeds(name) for name in names] if names else [load_seeds()]
        return list(SeedDataset.concat(parts))
    path = Path(spec)
    if path.is_dir() and (path / ACCEPTED).exists():
        return read_accepted(path)
    if path.is_dir() and (path / "dataset_info.json").exists():
        import datasets

        return _from_rows(datasets.load_from_disk(str(path)), str(path), question_field, answer_field, domain)
    if path.is_file():
        return _from_jsonl(path, question_field, answer_field, domain)
    raise NotFoundError(
        f"problem source {spec!r} is not `seeds`, `seeds:DOMAIN,...`, a generation run folder "
        f"(with {ACCEPTED}), a saved datasets folder, or a JSONL file"
    )


def _from_jsonl(
    path: Path, question_field: str | None, answer_field: str | None, domain: str
) -> list[DataPoint]:
    rows = []
    for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append((f"{path}:{line_no}", json.loads(line)))
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}:{line_no}: not a JSON object ({exc.msg})") from None
    out: list[DataPoint] = []
    for where, row in rows:
        out.extend(_from_rows([row], where, question_field, answer_field, domain))
    return out


def _pick(row: Mapping[str, Any], asked: str | None, candidates: Sequence[str], what: str, where: str) -> Any:
    names = [asked] if asked else list(candidates)
    for name in names:
        if row.get(name) not in (None, ""):
            return row[name]
    raise ConfigError(
        f"{where}: no {what} field (looked for {', '.join(names)}; found {', '.join(row) or 'none'})"
    )


def _from_rows(
    rows: Iterable[Mapping[str, Any]],
    where: str,
    question_field: str | None,
    answer_field: str | None,
    domain: str,
) -> list[DataPoint]:
    out = []
    for n, raw in enumerate(rows):
        row = dict(raw)
        at = where if where.rsplit(":", 1)[-1].isdigit() else f"{where} row {n}"
        question = _pick(row, question_field, QUESTION_FIELDS, "question", at)
        answer = _pick(row, answer_field, ANSWER_FIELDS, "answer", at)
        meta = row.get("metadata") or {}
        if isinstance(meta, str):  # datasets exports keep nested fields as JSON strings
            meta = json.loads(meta) if meta.strip().startswith("{") else {"metadata": meta}
        known = {"rationale", "difficulty", "tags", "answer_tolerance", "required_dependencies", "source"}
        fields = {k: row[k] for k in known if row.get(k) not in (None, "")}
        if isinstance(fields.get("answer_tolerance"), str):
            fields["answer_tolerance"] = json.loads(fields["answer_tolerance"])
        try:
            out.append(
                DataPoint(
                    question=str(question),
                    final_answer=str(answer),
                    domain=str(row.get("domain") or domain),
                    metadata=dict(meta),
                    **fields,
                )
            )
        except ValidationError as exc:
            raise ConfigError(f"{at}: not a usable problem: {exc}") from None
    return out
