"""The dataset card: what an export holds and how it was made, as a README.md with a YAML header.

The header is machine-readable (`read_card` gives it back as `DatasetCardInfo`); the body says the same
for people. `content_hash` is the dataset version: a hash of the kept items' content (not their
provenance metadata, not their order), so it changes exactly when the kept items change.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from loong_env.publish.errors import ExportError

CARD_FILE = "README.md"


def content_hash(items: Iterable[Mapping[str, Any]]) -> str:
    """The version of a set of items: sha256 over their canonical JSON lines, sorted (order-free), 16 hex."""
    lines = sorted(json.dumps(item, sort_keys=True, ensure_ascii=False) for item in items)
    digest = hashlib.sha256()
    for line in lines:
        digest.update(line.encode("utf-8") + b"\n")
    return digest.hexdigest()[:16]


def folder_hash(folders: Iterable[str | os.PathLike[str]]) -> str | None:
    """The version of seed domain folders: sha256 over every file's relative path and bytes (None: none)."""
    digest = hashlib.sha256()
    seen = False
    for folder in sorted(Path(f) for f in folders):
        for path in sorted(p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
            digest.update(f"{folder.name}/{path.relative_to(folder).as_posix()}\n".encode())
            digest.update(path.read_bytes())
            seen = True
    return digest.hexdigest()[:16] if seen else None


class DatasetCardInfo(BaseModel):
    """The card's YAML header: the Hub's own keys, then loong_env's under `loong`."""

    model_config = ConfigDict(extra="forbid")

    kind: str = Field(description="generation | cot")
    dataset_version: str = Field(description="Content hash of the kept items.")
    items: int
    domains: list[str] = Field(default_factory=list)
    models: list[str] = Field(default_factory=list)
    generators: dict[str, int] = Field(default_factory=dict, description="Kept items per generation method.")
    config: dict[str, Any] = Field(default_factory=dict, description="Generator / keep rule / CoT settings.")
    seed_ids: list[str] = Field(default_factory=list, description="Seeds the items were grown from.")
    seed_library_version: str | None = Field(None, description="Content hash of the domain folders used.")
    keep_precision: float | None = Field(None, description="Measured precision of the keep rule, if known.")
    source: str = Field(description="The output folder exported.")
    data_files: list[str] = Field(default_factory=list)


def render_card(info: DatasetCardInfo, *, title: str | None = None) -> str:
    """README.md text: a YAML header (Hub metadata + `loong`) and a short human summary."""
    import yaml

    header = {
        "license": "mit",
        "task_categories": ["question-answering", "text-generation"],
        "tags": ["loong_env", "verifiable-rewards", "reinforcement-learning", *info.domains],
        "size_categories": [_size_category(info.items)],
        "configs": [{"config_name": "default", "data_files": list(info.data_files)}],
        "loong": info.model_dump(mode="json"),
    }
    precision = "not measured" if info.keep_precision is None else f"{info.keep_precision:.1%}"
    body = [
        f"# {title or 'loong_env dataset'} ({info.dataset_version})",
        "",
        f"{info.items} verified {info.kind} items from `{info.source}`, exported by loong_env.",
        "",
        f"- dataset version (content hash of the kept items): `{info.dataset_version}`",
        f"- domains: {', '.join(info.domains) or '-'}",
        f"- models: {', '.join(info.models) or '-'}",
        f"- generators: {', '.join(f'{k} ({v})' for k, v in info.generators.items()) or '-'}",
        f"- seeds used: {len(info.seed_ids)}; seed library version `{info.seed_library_version or '-'}`",
        f"- measured keep precision: {precision}",
        "",
        "Every item's `metadata.dataset_version` holds the version, so a training run's rewards can be",
        "traced back to this export. The generator, keep rule and CoT settings are in the header under",
        "`loong.config`.",
        "",
    ]
    dumped = yaml.safe_dump(header, sort_keys=False, allow_unicode=True)
    return f"---\n{dumped}---\n\n" + "\n".join(body)


def read_card(location: str | os.PathLike[str]) -> DatasetCardInfo:
    """The `loong` part of an export's card (`location` is the export folder or its README.md)."""
    import yaml

    path = Path(location)
    path = path / CARD_FILE if path.is_dir() else path
    if not path.is_file():
        raise ExportError(f"no dataset card at {path} (an export folder holds {CARD_FILE})")
    text = path.read_text(encoding="utf-8")
    if not text.startswith("---\n") or "\n---\n" not in text[4:]:
        raise ExportError(f"{path} has no YAML header (expected it between two '---' lines)")
    header = yaml.safe_load(text[4 : text.index("\n---\n", 4)])
    if not isinstance(header, dict) or "loong" not in header:
        raise ExportError(f"{path}'s YAML header has no `loong` section; it was not written by loong export")
    return DatasetCardInfo.model_validate(header["loong"])


def _size_category(n: int) -> str:
    for bound, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K")):
        if n < bound:
            return label
    return "100K<n<1M"
