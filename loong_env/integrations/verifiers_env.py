"""Prime Intellect `verifiers`: `load_environment(...)`, a single-turn env whose rubric is our verifier.

    vf-eval loong-env -m MODEL -b http://127.0.0.1:8080/v1 -n 20 -a '{"domains": ["physics"]}'
    env = verifiers.load_environment("loong-env", domains=["physics"])   # or loong_env.load_environment

`verifiers` finds an environment by importing the module named by its id (`loong-env` -> `loong_env`) and
calling its `load_environment`; `loong_env` exposes this one. Rows hold `question`, `answer` and an `info`
object (domain, tolerance, plug-in, requirements), so the rubric judges each answer exactly as
`SingleStepEnv.step` would. Supported: the classic API (`vf.SingleTurnEnv`, `vf.Rubric`), verifiers
>= 0.3.1, < 0.4 (the `verifiers` extra).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from loong_env.env import BOXED_INSTRUCTION
from loong_env.errors import ConfigError
from loong_env.integrations.keys import key_columns, key_from_columns
from loong_env.integrations.rows import draw_keyed
from loong_env.rewards import is_well_formatted
from loong_env.routing import VerifierRouter
from loong_env.types import VerificationStatus


def load_environment(
    domains: str | Sequence[str] | None = None,
    *,
    run: str | None = None,
    num_examples: int = 256,
    num_eval_examples: int = 64,
    seed: int = 0,
    system_prompt: str | None = None,
    instruction: str | None = BOXED_INSTRUCTION,
    format_weight: float = 0.0,
    **env_kwargs: Any,
) -> Any:
    """A `verifiers.SingleTurnEnv` over seed domains (default: all) or a generation run's kept problems.

    `num_examples` training and `num_eval_examples` evaluation questions are drawn like
    `env.reset(seed=...)` (evaluation with `seed + 1`); the rubric is `loong_correctness` (weight 1)
    plus `loong_format` (weight `format_weight`; at 0 it is logged as a metric only).
    """
    import datasets

    import verifiers as vf
    from loong_env.integrations.trl import completion_text
    from loong_env.verifiers.extract import read_boxed

    source = problem_source(domains, run)
    router = VerifierRouter()

    def rows(n: int, draw_seed: int) -> Any:
        out = []
        for question, key, dp in draw_keyed(source, n, seed=draw_seed, instruction=instruction):
            columns = key_columns(key)
            answer = columns.pop("answer")
            out.append(
                {
                    "question": question,
                    "answer": answer,
                    "info": {
                        **columns,
                        "tolerance": columns["tolerance"] or "",
                        "datapoint_id": dp.id,
                        "dataset_version": dp.dataset_version or "",
                    },
                }
            )
        return datasets.Dataset.from_list(out)

    async def loong_correctness(completion: Any, answer: str, info: dict[str, Any], **_: Any) -> float:
        """1.0 when loong_env's verifier judges the final answer correct (boxed, code or a domain plug-in)."""
        key = key_from_columns({**(info or {}), "answer": answer}, router=router)
        result, _name = await router.judge(completion_text(completion), key)
        return 1.0 if result.status is VerificationStatus.correct else 0.0

    def loong_format(completion: Any, **_: Any) -> float:
        """1.0 for exactly one \\boxed{} answer (or a runnable ```python block)."""
        return 1.0 if is_well_formatted(completion_text(completion)) else 0.0

    parser = vf.Parser(extract_fn=lambda text: read_boxed(text) or "")
    rubric = vf.Rubric(funcs=[loong_correctness, loong_format], weights=[1.0, format_weight], parser=parser)
    return vf.SingleTurnEnv(
        dataset=rows(num_examples, seed),
        eval_dataset=rows(num_eval_examples, seed + 1) if num_eval_examples > 0 else None,
        system_prompt=system_prompt,
        parser=parser,
        rubric=rubric,
        **env_kwargs,
    )


def problem_source(domains: str | Sequence[str] | None, run: str | None) -> Any:
    """The problems: a generation run's accepted.jsonl, or the named seed domains (default: every domain)."""
    from loong_env.seeds.dataset import SeedDataset, load_seeds

    if run is not None:
        if domains:
            raise ConfigError("give either `run` (a generation output folder) or `domains`, not both")
        from loong_env.generators.output import read_accepted

        points = read_accepted(run)
        if not points:
            raise ConfigError(f"the generation run at {run} has no accepted problems yet")
        return SeedDataset(points)
    if domains is None:
        return load_seeds()
    names = [domains] if isinstance(domains, str) else list(domains)
    if not names:
        raise ConfigError("domains is empty; name at least one seed domain, or pass None for every domain")
    return SeedDataset.concat([load_seeds(name) for name in names])
