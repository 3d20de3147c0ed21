"""Exporting an output folder: its kept items as a dataset, with the card that says how they were made.

A generation folder (`accepted.jsonl`) exports as a seed library, one domain folder each
(`<domain>/domain.toml` + `seeds.jsonl`), so `load_seeds(dest)` reads it back and the env trains on it. A
CoT folder (`results.jsonl`) exports its SFT rows (one verified trace per problem) as a `datasets` folder,
`dest/data` (`datasets.load_from_disk`). Both get `dest/README.md`, the Hub dataset card.
"""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from loong_env.publish.card import CARD_FILE, DatasetCardInfo, content_hash, folder_hash, render_card
from loong_env.publish.errors import ExportError
from loong_env.types import DATASET_VERSION_KEY, DataPoint

GENERATION_FILE = "accepted.jsonl"
COT_FILE = "results.jsonl"
_RECORD_EXCLUDE = {"id", "domain"}


def item_content(dp: DataPoint) -> dict[str, Any]:
    """What a kept item *is* (hashed into the version): everything but its provenance metadata."""
    return dp.model_dump(mode="json", exclude={"id", "metadata"})


def export(
    out_dir: str | os.PathLike[str],
    dest: str | os.PathLike[str],
    *,
    seeds_root: str | os.PathLike[str] | None = None,
    keep_precision: float | None = None,
    title: str | None = None,
    overwrite: bool = False,
) -> DatasetCardInfo:
    """Write the kept items of a generation or CoT folder and their card to `dest`; returns the card."""
    src, target = Path(out_dir), Path(dest)
    if target.exists() and any(target.iterdir()):
        if not overwrite:
            raise ExportError(f"{target} is not empty; pass overwrite=True (--overwrite) to replace it")
        shutil.rmtree(target)
    if (src / GENERATION_FILE).is_file():
        info = _export_generation(src, target, seeds_root, keep_precision)
    elif (src / COT_FILE).is_file():
        info = _export_cot(src, target, keep_precision)
    else:
        raise ExportError(
            f"{src} is neither a generation output ({GENERATION_FILE}) nor a CoT output ({COT_FILE})"
        )
    (target / CARD_FILE).write_text(render_card(info, title=title), encoding="utf-8")
    return info


def _export_generation(
    src: Path, target: Path, seeds_root: str | os.PathLike[str] | None, keep_precision: float | None
) -> DatasetCardInfo:
    from loong_env.generators.output import read_accepted, read_manifest
    from loong_env.seeds.dataset import library_domain_config

    points = read_accepted(src)
    if not points:
        raise ExportError(f"nothing to export: {src / GENERATION_FILE} has no kept items")
    version = content_hash(item_content(dp) for dp in points)
    by_domain: dict[str, list[DataPoint]] = {}
    for dp in points:
        by_domain.setdefault(dp.domain, []).append(dp)
    root = Path(seeds_root) if seeds_root is not None else None
    seed_folders = []
    for domain, items in sorted(by_domain.items()):
        config = library_domain_config(domain, root=root)
        if config is not None and config.path is not None:
            seed_folders.append(config.path)
        folder = target / domain
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "domain.toml").write_text(_domain_toml(domain, config), encoding="utf-8")
        with (folder / "seeds.jsonl").open("w", encoding="utf-8") as fh:
            for dp in items:
                record = dp.model_dump(mode="json", exclude=_RECORD_EXCLUDE)
                record["metadata"] = {**record["metadata"], DATASET_VERSION_KEY: version}
                fh.write(json.dumps(record, ensure_ascii=False) + "\n")
    metas = [dp.metadata for dp in points]
    manifest = read_manifest(src) if (src / "manifest.json").is_file() else None
    models = {str(m["model"]) for m in metas if m.get("model")}
    models |= {run.model for run in (manifest.runs if manifest else []) if run.model}
    keep = {
        "novelty_threshold": _distinct(m.get("novelty", {}).get("threshold") for m in metas),
        "agreement_rule": _distinct(m.get("agreement", {}).get("rule") for m in metas),
        "solve_attempts": _distinct(m.get("agreement", {}).get("attempts") for m in metas),
    }
    return DatasetCardInfo(
        kind="generation",
        dataset_version=version,
        items=len(points),
        domains=sorted(by_domain),
        models=sorted(models),
        generators=dict(Counter(str(m.get("generator") or "unknown") for m in metas).most_common()),
        config={"runs": _run_infos(src, "generation"), "keep_rule": keep},
        seed_ids=sorted({str(s) for m in metas for s in (m.get("seed_ids") or [])}),
        seed_library_version=folder_hash(seed_folders),
        keep_precision=keep_precision,
        source=str(src),
        data_files=[f"{domain}/seeds.jsonl" for domain in sorted(by_domain)],
    )


def _export_cot(src: Path, target: Path, keep_precision: float | None) -> DatasetCardInfo:
    import datasets

    from loong_env.pipeline.export import sft_rows
    from loong_env.pipeline.store import read_manifest

    rows = sft_rows(src)
    if not rows:
        raise ExportError(f"nothing to export: {src / COT_FILE} has no verified trace")
    version = content_hash(rows)
    settings = read_manifest(src).settings if (src / "manifest.json").is_file() else {}
    stamped = [{**row, DATASET_VERSION_KEY: version} for row in rows]
    datasets.Dataset.from_list(stamped).save_to_disk(str(target / "data"))
    return DatasetCardInfo(
        kind="cot",
        dataset_version=version,
        items=len(rows),
        domains=sorted({str(r["domain"]) for r in rows}),
        models=[str(settings["model"])] if settings.get("model") else [],
        config={"settings": settings, "runs": _run_infos(src, "cot")},
        keep_precision=keep_precision,
        source=str(src),
        data_files=["data/*.arrow"],
    )


def _run_infos(src: Path, kind: str) -> list[dict[str, Any]]:
    """What each run segment of the folder was asked to do (its metrics `run` records), oldest first."""
    from loong_env.errors import NotFoundError
    from loong_env.runs.metrics import RunRecord, read_metrics

    try:
        records = read_metrics(src).records
    except NotFoundError:
        return []
    return [r.info for r in records if isinstance(r, RunRecord) and r.run == kind]


def _distinct(values: Iterable[Any]) -> list[Any]:
    return sorted({v for v in values if v is not None}, key=str)


def _domain_toml(domain: str, config: Any) -> str:
    """domain.toml for an exported domain: the library's config when it has one, else just the name."""
    lines = [f"name = {json.dumps(domain)}"]
    if config is not None:
        if config.description:
            lines.append(f"description = {json.dumps(config.description)}")
        if config.requirements:
            lines.append(f"requirements = {json.dumps(list(config.requirements))}")
        if config.license:
            lines.append(f"license = {json.dumps(config.license)}")
        if config.verifier:
            lines.append(f"verifier = {json.dumps(config.verifier)}")
        if config.answer_tolerance is not None:
            tol: Mapping[str, Any] = config.answer_tolerance.model_dump(exclude_none=True)
            lines.append("answer_tolerance = { " + ", ".join(f"{k} = {v!r}" for k, v in tol.items()) + " }")
    return "\n".join(lines) + "\n"


def push_to_hub(
    dest: str | os.PathLike[str], repo_id: str, *, token: str | None = None, private: bool = True
) -> str:
    """Upload an export folder (data + card) as a Hub dataset repo; returns the commit URL."""
    from huggingface_hub import HfApi

    folder = Path(dest)
    if not (folder / CARD_FILE).is_file():
        raise ExportError(f"{folder} is not an export (no {CARD_FILE}); run export(out_dir, dest) first")
    api = HfApi(token=token)
    try:
        api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        commit = api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type="dataset")
    except Exception as exc:
        raise ExportError(f"push_to_hub({repo_id!r}) failed: {type(exc).__name__}: {exc}"[:500]) from exc
    return str(getattr(commit, "commit_url", commit))
