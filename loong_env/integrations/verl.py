"""verl: a `compute_score` for `custom_reward_function`, and parquet rows in verl's RL dataset layout.

    custom_reward_function.path=pkg://loong_env.integrations.verl   # or the file path of this module
    custom_reward_function.name=compute_score                       # or acompute_score (async reward loop)

verl calls `compute_score(data_source=..., solution_str=..., ground_truth=..., extra_info=...)` once per
response (plus any `custom_reward_function.reward_kwargs`) and reads a float, or a dict whose "score" is
the reward and whose other keys are logged per sample. We return the dict, with the same keys every time
(verl stacks them into columns): score, acc, pred (the extracted answer, used for maj@k), status,
verifier, reason.

The answer key: `ground_truth` is the reference (or a JSON object with reference/domain/tolerance/...);
the domain comes from `extra_info["domain"]`, else from `data_source` ("loong/<domain>"); tolerance,
requirements and plug-in from `extra_info`, else the domain's config. verl needs no import here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from loong_env import bridge
from loong_env.errors import ConfigError
from loong_env.integrations.keys import (
    SOURCE_PREFIX,
    domain_from_source,
    key_columns,
    key_from_label,
    shared_router,
)
from loong_env.types import AnswerKey, VerificationStatus

TIMEOUT_S = 600.0  # bound on one sync call (a code answer can wait for a sandbox env to build)


def verl_key(
    data_source: str | None, ground_truth: Any, extra_info: Mapping[str, Any] | None = None
) -> AnswerKey:
    """The answer key of one verl sample (see the module docstring for where each field comes from)."""
    info = extra_info if isinstance(extra_info, Mapping) else {}
    defaults = {name: info.get(name) for name in ("tolerance", "requirements", "verifier")}
    defaults["domain"] = info.get("domain") or domain_from_source(data_source)
    return key_from_label(ground_truth, defaults=defaults, router=shared_router())


async def acompute_score(
    data_source: str | None,
    solution_str: str,
    ground_truth: Any,
    extra_info: Mapping[str, Any] | None = None,
    **_: Any,
) -> dict[str, Any]:
    """verl's reward for one response, as a coroutine (verl's reward loop awaits coroutine functions)."""
    info = extra_info if isinstance(extra_info, Mapping) else {}
    version = str(info.get("dataset_version") or "")
    try:
        key = verl_key(data_source, ground_truth, extra_info)
    except ConfigError as exc:
        return _row(0.0, "", "invalid", None, str(exc), version)
    router = shared_router()
    result, name = await router.judge(solution_str or "", key)
    correct = result.status is VerificationStatus.correct
    score = 1.0 if correct else 0.0
    row = _row(score, result.extracted or "", result.status.value, name, result.reason, version)
    row["verifier_version"] = router.version(name) or ""
    return row


def compute_score(
    data_source: str | None,
    solution_str: str,
    ground_truth: Any,
    extra_info: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """verl's reward for one response: {"score", "acc", "pred", "status", ...}; safe from any thread."""
    return bridge.run(
        acompute_score(data_source, solution_str, ground_truth, extra_info, **kwargs), timeout=TIMEOUT_S
    )


def _row(
    score: float, pred: str, status: str, verifier: str | None, reason: str, dataset_version: str
) -> dict[str, Any]:
    # Same keys and types on every call: verl stacks them into one column per key.
    return {
        "score": score,
        "acc": score,
        "pred": pred,
        "status": status,
        "verifier": verifier or "",
        "verifier_version": "",
        "dataset_version": dataset_version,
        "reason": reason,
    }


def to_verl_dataset(
    source: Any, n: int, *, seed: int = 0, instruction: str | None = None, system_prompt: str | None = None
) -> Any:
    """A `datasets.Dataset` in verl's RL layout (write it with `.to_parquet(path)` for `data.train_files`).

    Rows: data_source "loong/<domain>", prompt (chat messages), ability, reward_model {style: rule,
    ground_truth}, extra_info {index, domain, tolerance, verifier, requirements, datapoint_id}.
    """
    import datasets

    from loong_env.integrations.rows import draw_keyed

    rows = []
    for i, (question, key, dp) in enumerate(draw_keyed(source, n, seed=seed, instruction=instruction)):
        messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
        columns = key_columns(key)
        rows.append(
            {
                "data_source": SOURCE_PREFIX + key.domain,
                "prompt": [*messages, {"role": "user", "content": question}],
                "ability": key.domain,
                "reward_model": {"style": "rule", "ground_truth": key.reference},
                "extra_info": {
                    "index": i,
                    "domain": key.domain,
                    "tolerance": columns["tolerance"] or "",
                    "verifier": columns["verifier"],
                    "requirements": columns["requirements"],
                    "datapoint_id": dp.id,
                    "dataset_version": dp.dataset_version or "",
                },
            }
        )
    return datasets.Dataset.from_list(rows)
