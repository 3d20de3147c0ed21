"""Answer keys from what trainers carry (a label, a JSON object, dataset columns), and keys back to columns.

Trainers pass the reference answer in their own shape: OpenRLHF a `label` string, verl a `ground_truth`
plus `extra_info`, TRL and `verifiers` dataset columns. Each becomes one `AnswerKey`; fields a trainer
leaves unset (tolerance, requirements, plug-in) come from the domain's config in the seed library, as
they do for `SingleStepEnv`, so routing per domain works without the trainer knowing about it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from loong_env.errors import ConfigError
from loong_env.routing import VerifierRouter
from loong_env.types import AnswerKey, Tolerance

SOURCE_PREFIX = "loong/"  # data_source of rows we write: "loong/<domain>"
_KEY_FIELDS = set(AnswerKey.model_fields)


def parse_tolerance(value: Any) -> Tolerance | None:
    """A tolerance from a column value: None/"" (none), JSON, a dict, a Tolerance or a bare number."""
    if value in (None, "", "null"):
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ConfigError(f'tolerance must be JSON like {{"rel": 0.01}}, got {value!r}') from exc
    try:
        return Tolerance.coerce(value)
    except (ValidationError, TypeError) as exc:
        raise ConfigError(f'tolerance must be {{"rel": x}} and/or {{"abs": y}}, got {value!r}') from exc


def domain_from_source(data_source: str | None) -> str | None:
    """The domain named by a dataset's source tag: "loong/<domain>" or a bare domain name."""
    if not data_source:
        return None
    return data_source.removeprefix(SOURCE_PREFIX)


def answer_key(
    reference: Any,
    *,
    domain: str | None = None,
    tolerance: Any = None,
    requirements: Sequence[str] | None = None,
    verifier: str | None = None,
    router: VerifierRouter | None = None,
) -> AnswerKey:
    """A fully resolved key; what the caller leaves unset comes from the domain's config when it has one."""
    if reference is None or (isinstance(reference, str) and not reference.strip()):
        raise ConfigError("the reference answer is missing or empty")
    if not isinstance(reference, str | int | float) or isinstance(reference, bool):
        raise ConfigError(
            f"the reference answer must be a string or a number, got {type(reference).__name__}"
        )
    domain = domain or "unknown"
    config = (router or shared_router()).config(domain)
    tol = parse_tolerance(tolerance)
    reqs = [str(r) for r in requirements] if requirements else []
    if config is not None:
        tol = tol if tol is not None else config.answer_tolerance
        reqs = reqs or list(config.requirements)
        verifier = verifier or config.verifier
    try:
        return AnswerKey(
            reference=str(reference),
            domain=domain,
            tolerance=tol,
            requirements=reqs,
            verifier=verifier or None,
        )
    except ValidationError as exc:
        raise ConfigError(f"not a valid answer key: {exc.errors()[0]['msg']}") from exc


def key_from_label(
    label: Any, *, defaults: Mapping[str, Any] | None = None, router: VerifierRouter | None = None
) -> AnswerKey:
    """A key from a trainer's label: the reference answer itself, or a JSON object with `reference` (or
    `answer`) and optionally `domain`, `tolerance`, `requirements`, `verifier`; key fields the label leaves
    out come from `defaults`, then from the domain's config."""
    fields = _label_fields(label)
    if fields is None:
        fields = {"reference": label}
    elif "reference" not in fields and "answer" in fields:
        fields["reference"] = fields.pop("answer")
    unknown = set(fields) - _KEY_FIELDS
    if unknown:
        raise ConfigError(f"label object has unknown fields {sorted(unknown)}; known: {sorted(_KEY_FIELDS)}")
    merged = {k: v for k, v in (defaults or {}).items() if v not in (None, "", [])}
    merged.update({k: v for k, v in fields.items() if v is not None})
    return answer_key(
        merged.get("reference"),
        domain=merged.get("domain"),
        tolerance=merged.get("tolerance"),
        requirements=merged.get("requirements"),
        verifier=merged.get("verifier"),
        router=router,
    )


def _label_fields(label: Any) -> dict[str, Any] | None:
    """The label's fields when it is an object (or a JSON string of one), else None (a bare answer)."""
    if isinstance(label, Mapping):
        return dict(label)
    if isinstance(label, str) and label.lstrip().startswith("{"):
        try:
            parsed = json.loads(label)
        except json.JSONDecodeError:
            return None  # an answer like "{1, 2, 3}" is a set, not JSON
        if isinstance(parsed, dict) and ({"reference", "answer"} & set(parsed)):
            return parsed
    return None


def key_columns(key: AnswerKey) -> dict[str, Any]:
    """The flat, parquet-friendly columns a dataset row carries for its key (the inverse of `answer_key`)."""
    return {
        "answer": key.reference,
        "domain": key.domain,
        "tolerance": key.tolerance.model_dump_json(exclude_none=True) if key.tolerance else None,
        "verifier": key.verifier or "",
        "requirements": list(key.requirements),
    }


def key_label(key: AnswerKey) -> str:
    """The key as one JSON string: the label `key_from_label` reads (e.g. OpenRLHF's --data.label_key)."""
    return key.model_dump_json(exclude_defaults=True)


def key_from_columns(
    columns: Mapping[str, Any], *, router: VerifierRouter | None = None, answer_column: str = "answer"
) -> AnswerKey:
    """The key of one dataset row written with `key_columns` (or any row with at least an answer column)."""
    return answer_key(
        columns.get(answer_column),
        domain=columns.get("domain"),
        tolerance=columns.get("tolerance"),
        requirements=columns.get("requirements"),
        verifier=columns.get("verifier"),
        router=router,
    )


_ROUTER: VerifierRouter | None = None


def shared_router() -> VerifierRouter:
    """One router per process for callers that have none (domain-config lookups, verl's compute_score)."""
    global _ROUTER
    if _ROUTER is None:
        _ROUTER = VerifierRouter()
    return _ROUTER
