"""Training data from CoT results: a chat-format SFT dataset and a preference dataset for TRL's DPOTrainer.

SFT: one row per problem, `messages` = the prompt + the best verified unhinted trace (conversational
language-modeling format, what TRL's SFTTrainer reads). Preference: `prompt` / `chosen` / `rejected` in
TRL's conversational preference format (prompt = the messages, chosen/rejected = one assistant message
each) or its standard format (plain strings); chosen is a verified trace, rejected a wrong one for the same
prompt. Rationalized (hinted) traces are left out unless asked for, and then carry `rationalized=True`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from loong_env.pipeline.records import ProblemResult, Trace
from loong_env.pipeline.store import read_results
from loong_env.types import VerificationStatus

Results = str | os.PathLike[str] | Iterable[ProblemResult]


def _results(source: Results) -> list[ProblemResult]:
    if isinstance(source, str | os.PathLike):
        return read_results(source)
    return sorted(source, key=lambda r: r.index)


def _picked(source: Results, include_rationalized: bool) -> Iterator[tuple[ProblemResult, Trace, bool]]:
    """Each result with a trace to learn from: the best verified one, else (if asked) the hinted one."""
    for result in _results(source):
        if result.best is not None:
            yield result, result.traces[result.best], False
        elif include_rationalized and result.rationalized is not None:
            yield result, result.traces[result.rationalized], True


def sft_rows(source: Results, *, include_rationalized: bool = False) -> list[dict[str, Any]]:
    """SFT rows as dicts: messages, id, domain, difficulty, rationalized, trace kind."""
    rows = []
    for result, trace, rationalized in _picked(source, include_rationalized):
        rows.append(
            {
                "messages": [*result.prompt, {"role": "assistant", "content": trace.text}],
                "id": result.id,
                "domain": result.domain,
                "difficulty": result.difficulty,
                "rationalized": rationalized,
                "kind": trace.kind,
            }
        )
    return rows


def preference_rows(
    source: Results,
    *,
    conversational: bool = True,
    pairs_per_problem: int = 1,
    include_rationalized: bool = False,
) -> list[dict[str, Any]]:
    """Preference rows: chosen = the best verified trace, rejected = distinct wrong traces of the same prompt.

    Wrong answers (`incorrect`) come before traces with no answer at all; hinted traces are never rejected.
    """
    rows = []
    for result, chosen, rationalized in _picked(source, include_rationalized):
        wrong = [t for t in result.traces if not t.correct and not t.hinted]
        wrong.sort(key=lambda t: t.status is not VerificationStatus.incorrect)  # stable: keeps trace order
        seen: set[str] = set()
        for bad in wrong:
            if bad.text in seen or len(seen) >= pairs_per_problem:
                continue
            seen.add(bad.text)
            if conversational:
                pair = {
                    "prompt": result.prompt,
                    "chosen": [{"role": "assistant", "content": chosen.text}],
                    "rejected": [{"role": "assistant", "content": bad.text}],
                }
            else:
                pair = {"prompt": result.prompt[-1]["content"], "chosen": chosen.text, "rejected": bad.text}
            rows.append(
                {
                    **pair,
                    "id": result.id,
                    "domain": result.domain,
                    "rationalized": rationalized,
                    "rejected_status": str(bad.status),
                }
            )
    return rows


def _dataset(rows: list[dict[str, Any]], columns: list[str]) -> Any:
    import datasets

    return datasets.Dataset.from_list(rows) if rows else datasets.Dataset.from_dict({c: [] for c in columns})


def to_sft_dataset(source: Results, *, include_rationalized: bool = False) -> Any:
    """A `datasets.Dataset` with a `messages` column (conversational SFT), one row per solved problem."""
    columns = ["messages", "id", "domain", "difficulty", "rationalized", "kind"]
    return _dataset(sft_rows(source, include_rationalized=include_rationalized), columns)


def to_preference_dataset(
    source: Results,
    *,
    conversational: bool = True,
    pairs_per_problem: int = 1,
    include_rationalized: bool = False,
) -> Any:
    """A `datasets.Dataset` with prompt / chosen / rejected columns, as TRL's DPOTrainer reads them."""
    rows = preference_rows(
        source,
        conversational=conversational,
        pairs_per_problem=pairs_per_problem,
        include_rationalized=include_rationalized,
    )
    return _dataset(rows, ["prompt", "chosen", "rejected", "id", "domain", "rationalized", "rejected_status"])


def write_exports(out_dir: str | os.PathLike[str], *, include_rationalized: bool = False) -> dict[str, Path]:
    """Write sft.jsonl and preference.jsonl next to the results (for `datasets.load_dataset("json")`)."""
    results = read_results(out_dir)
    written = {}
    for name, rows in (
        ("sft", sft_rows(results, include_rationalized=include_rationalized)),
        ("preference", preference_rows(results, include_rationalized=include_rationalized)),
    ):
        path = Path(out_dir) / f"{name}.jsonl"
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        os.replace(tmp, path)
        written[name] = path
    return written
