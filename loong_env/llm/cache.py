"""An on-disk response cache: a re-run replays the same answers, so experiments are reproducible and free."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from loong_env.llm.records import Completion

Message = Mapping[str, Any]


class ResponseCache:
    """Files keyed by the full request; the k-th identical request of a run replays the k-th recorded answer.

    Counting occurrences keeps repeated sampling of one prompt diverse while a re-run stays reproducible.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._seen: dict[str, int] = {}

    def next_slot(self, key: str) -> Path:
        index = self._seen.get(key, 0)
        self._seen[key] = index + 1
        return self.root / key[:2] / f"{key}.{index}.json"

    @staticmethod
    def load(path: Path) -> Completion | None:
        try:
            return Completion.model_validate_json(path.read_bytes())
        except (OSError, ValueError):
            return None

    @staticmethod
    def store(path: Path, completion: Completion) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{id(completion)}.tmp")
        tmp.write_text(completion.model_dump_json(exclude={"cached", "latency_s"}))
        os.replace(tmp, path)


def request_key(model: str, messages: Sequence[Message], params: Mapping[str, Any]) -> str:
    payload = json.dumps(
        {"model": model, "messages": list(messages), "params": dict(params)},
        sort_keys=True,
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()
