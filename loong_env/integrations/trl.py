"""Trainer integration: TRL GRPO-style reward functions and a prompt dataset, judged by the env's verifiers.

    from loong_env.integrations.trl import to_grpo_dataset, reward_fn
    dataset = to_grpo_dataset(load_seeds("graph_discrete_math"), n=512)
    trainer = GRPOTrainer(model=..., reward_funcs=[reward_fn], train_dataset=dataset)

TRL calls a reward function with `prompts`, `completions` (strings, or lists of chat messages) and every
dataset column (but `prompt`) as keyword lists; it returns one float per completion, or None where the
reward does not apply (a row without an answer). TRL itself is not needed to import this module.

Each call is one *step* of the run's diagnostics (`loong_env.runs.diagnostics`): TRL >= 1.x passes
`log_metric` and `log_extra`, so the reward logs `loong/correct`, `loong/no_answer`, `loong/timeout`, ...
(fractions of the call's answers), `loong/zero_variance_fraction` and `loong/seconds` beside TRL's own
metrics, and per completion the verdict, verifier and its version and the dataset version as columns of
TRL's completions table. With `metrics=` (a `MetricsWriter` or `open_sinks(...)`) each call is also a
`step` record in the run's metrics file, trackio or W&B, which `loong report` plots.

With a curriculum, the reward function feeds it and the prompts are drawn through it; TRL's
`num_generations` completions of one prompt share a `datapoint_id`, and form one GRPO group:

    sampler = CurriculumSampler(seeds)
    dataset = curriculum_prompts(seeds, sampler)            # drawn lazily, so later prompts follow the bandit
    reward = make_reward_fn(curriculum=sampler)
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from loong_env import bridge
from loong_env.env import BOXED_INSTRUCTION, SingleStepEnv, Source
from loong_env.errors import ConfigError, InvalidActionError
from loong_env.integrations.keys import key_columns, key_label, parse_tolerance
from loong_env.integrations.rows import Keyed, draw_keyed, keyed
from loong_env.rewards import is_well_formatted
from loong_env.routing import VerifierRouter
from loong_env.runs.diagnostics import ItemOutcome, StepDiagnostics, diagnose, verdict_kind
from loong_env.runs.metrics import StepRecord
from loong_env.types import AnswerKey, VerificationStatus
from loong_env.verifiers.base import Verifier

if TYPE_CHECKING:
    from loong_env.curriculum import CurriculumSampler
    from loong_env.runs.sinks import Sink

RewardList = list[float | None]


class RewardConfig(BaseModel):
    """How completions become rewards; the defaults match SingleStepEnv's correctness reward."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    answer_column: str = "answer"
    error_reward: float | None = 0.0  # a verifier error (timeout, crash): 0.0, or None to skip the item
    route: bool = True  # code answers -> PythonVerifier, plug-in domains -> their plug-in
    timeout_s: float | None = 600.0  # bound on one sync call


def completion_text(completion: Any) -> str:
    """The answer text of one completion as TRL passes it: a str, or a list of chat messages."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Mapping):
        return str(completion.get("content") or "")
    if isinstance(completion, Sequence):
        parts = [m for m in completion if isinstance(m, Mapping)]
        assistant = [m for m in parts if m.get("role", "assistant") == "assistant"]
        chosen = assistant[-1] if assistant else (parts[-1] if parts else None)
        content = chosen.get("content") if chosen else None
        if isinstance(content, list):  # multimodal content blocks: keep the text ones
            return "".join(b.get("text", "") for b in content if isinstance(b, Mapping))
        return str(content or "")
    raise InvalidActionError(
        f"a completion is a str or a list of chat messages, got {type(completion).__name__}"
    )


def _column(columns: Mapping[str, Any], name: str, n: int, default: Any = None) -> list[Any]:
    """A dataset column as TRL passes it (a list, one value per completion), or defaults when absent."""
    values = columns.get(name)
    if values is None:
        return [default] * n
    values = list(values)
    if len(values) != n:
        raise ConfigError(f"column {name!r} has {len(values)} values but there are {n} completions")
    return values


def make_async_reward_fn(
    verifier: Verifier | None = None,
    *,
    config: RewardConfig | None = None,
    name: str = "loong_correctness",
    curriculum: CurriculumSampler | None = None,
    metrics: Sink | None = None,
) -> Callable[..., Awaitable[RewardList]]:
    """An `async def` reward function for GRPOTrainer (TRL awaits async reward functions concurrently).

    With `curriculum`, each call's rewards update it, grouped by the `datapoint_id` column. With
    `metrics`, each call writes one `step` record (at TRL's global step when TRL passes its state).
    """
    cfg = config or RewardConfig()
    router = VerifierRouter(verifier, route=cfg.route)
    calls = 0

    async def reward(
        prompts: Sequence[Any] | None = None, completions: Sequence[Any] = (), **columns: Any
    ) -> RewardList:
        import asyncio

        nonlocal calls
        calls += 1
        t0 = time.perf_counter()
        n = len(completions)
        answers = _column(columns, cfg.answer_column, n)
        domains = _column(columns, "domain", n, "unknown")
        tolerances = _column(columns, "tolerance", n)
        plugins = _column(columns, "verifier", n)
        requirements = _column(columns, "requirements", n)

        groups = _column(columns, "datapoint_id", n)
        versions = _column(columns, "dataset_version", n)
        outcomes: list[ItemOutcome | None] = [None] * n

        async def one(i: int) -> float | None:
            if answers[i] in (None, ""):
                return None
            key = AnswerKey(
                reference=str(answers[i]),
                domain=domains[i] or "unknown",
                tolerance=parse_tolerance(tolerances[i]),
                requirements=list(requirements[i] or []),
                verifier=plugins[i] or None,
            )
            result, verifier_name = await router.judge(completion_text(completions[i]), key)
            reward = cfg.error_reward if result.status is VerificationStatus.error else float(result.reward)
            outcomes[i] = ItemOutcome(
                group=str(groups[i] if groups[i] is not None else prompts[i] if prompts else i),
                reward=reward,
                status=result.status.value,
                reason=result.reason,
                verifier=verifier_name,
                dataset_version=versions[i] or None,
            )
            return reward

        rewards = list(await asyncio.gather(*(one(i) for i in range(n))))
        judged = [item for item in outcomes if item is not None]
        diagnostics = diagnose(judged, seconds=time.perf_counter() - t0)
        _log_to_trl(columns, diagnostics, outcomes, router)
        if metrics is not None:
            state = columns.get("trainer_state")
            step = int(getattr(state, "global_step", calls)) if state is not None else calls
            metrics.write(StepRecord.from_diagnostics(step, diagnostics, source="trl"))
        if curriculum is not None:
            if columns.get("datapoint_id") is None:
                raise ConfigError("a curriculum needs the `datapoint_id` column (to_grpo_dataset adds it)")
            ids = _column(columns, "datapoint_id", n)
            curriculum.record_rewards(
                [(str(i), r) for i, r in zip(ids, rewards, strict=True) if r is not None]
            )
        return rewards

    reward.__name__ = reward.__qualname__ = name
    return reward


def _log_to_trl(
    columns: Mapping[str, Any],
    diagnostics: StepDiagnostics,
    outcomes: Sequence[ItemOutcome | None],
    router: VerifierRouter,
) -> None:
    """The call's diagnostics via TRL's `log_metric` (scalars) and `log_extra` (one value per completion)."""
    log_metric, log_extra = columns.get("log_metric"), columns.get("log_extra")
    judged = diagnostics.answers
    if callable(log_metric) and judged:
        for kind, count in diagnostics.counts.items():
            log_metric(f"loong/{kind}", count / judged)
        if diagnostics.zero_variance_fraction is not None:
            log_metric("loong/zero_variance_fraction", diagnostics.zero_variance_fraction)
        log_metric("loong/seconds", diagnostics.seconds)
    if callable(log_extra):
        kinds = [verdict_kind(o.status, o.reason) if o else "" for o in outcomes]
        log_extra("loong_verdict", kinds)
        log_extra("loong_verifier", [(o.verifier or "") if o else "" for o in outcomes])
        log_extra("loong_verifier_version", [router.version(o.verifier) or "" if o else "" for o in outcomes])
        log_extra("loong_dataset_version", [(o.dataset_version or "") if o else "" for o in outcomes])


def make_reward_fn(
    verifier: Verifier | None = None,
    *,
    config: RewardConfig | None = None,
    name: str = "loong_correctness",
    curriculum: CurriculumSampler | None = None,
    metrics: Sink | None = None,
) -> Callable[..., RewardList]:
    """A plain sync reward function for GRPOTrainer; safe to call while an event loop runs."""
    cfg = config or RewardConfig()
    inner = make_async_reward_fn(verifier, config=cfg, name=name, curriculum=curriculum, metrics=metrics)

    def reward(
        prompts: Sequence[Any] | None = None, completions: Sequence[Any] = (), **columns: Any
    ) -> RewardList:
        return bridge.run(inner(prompts, completions, **columns), timeout=cfg.timeout_s)

    reward.__name__ = reward.__qualname__ = name
    return reward


def format_reward_fn(
    prompts: Sequence[Any] | None = None, completions: Sequence[Any] = (), **_: Any
) -> RewardList:
    """1.0 when a completion commits to exactly one \\boxed{} answer (or is runnable code), else 0.0."""
    return [1.0 if is_well_formatted(completion_text(c)) else 0.0 for c in completions]


reward_fn = make_reward_fn()
areward_fn = make_async_reward_fn(name="loong_correctness_async")


def to_grpo_dataset(
    source: Source,
    n: int,
    *,
    seed: int = 0,
    instruction: str | None = BOXED_INSTRUCTION,
    conversational: bool = False,
    system_prompt: str | None = None,
    sampler: CurriculumSampler | None = None,
) -> Any:
    """A `datasets.Dataset` of n prompts drawn like env.reset(seed=...), with the columns the reward reads.

    Columns: prompt (str, or chat messages when `conversational`), answer, domain, tolerance (JSON or
    None), verifier (plug-in name or ""), requirements, label (the whole key as JSON, for OpenRLHF's
    --data.label_key and the reward server), datapoint_id, difficulty. With `sampler` the n prompts are
    drawn by the curriculum as it stands now (see `curriculum_prompts` to follow it).
    """
    import datasets

    items = draw_keyed(source, n, seed=seed, instruction=instruction, sampler=sampler)
    return datasets.Dataset.from_list(_rows(items, conversational, system_prompt))


def curriculum_prompts(
    source: Source,
    sampler: CurriculumSampler,
    *,
    seed: int = 0,
    instruction: str | None = BOXED_INSTRUCTION,
    conversational: bool = False,
    system_prompt: str | None = None,
) -> Any:
    """An endless `datasets.IterableDataset` of prompts drawn one at a time by the curriculum.

    Each row is drawn when the trainer asks for it, so rows follow the curriculum as the reward function
    (`make_reward_fn(curriculum=sampler)`) updates it. Same columns as `to_grpo_dataset`; pass
    `max_steps` to the trainer, since the stream has no end.
    """
    import datasets

    options = {"instruction": instruction, "conversational": conversational, "system_prompt": system_prompt}
    # a module-level generator and plain-data arguments: `datasets` pickles both to fingerprint the stream
    return datasets.IterableDataset.from_generator(
        _stream_rows, gen_kwargs={"source": source, "sampler": sampler, "seed": seed, **options}
    )


def _stream_rows(
    source: Source,
    sampler: CurriculumSampler,
    seed: int,
    instruction: str | None,
    conversational: bool,
    system_prompt: str | None,
) -> Iterator[dict[str, Any]]:
    """Rows drawn one at a time by the curriculum, forever."""
    env = SingleStepEnv(source, route=False, instruction=instruction, sampler=sampler, seed=seed)
    while True:
        yield from _rows(keyed(env, bridge.run(env.reset(batch_size=1))), conversational, system_prompt)


def _rows(items: Sequence[Keyed], conversational: bool, system_prompt: str | None) -> list[dict[str, Any]]:
    """Dataset rows: the prompt and the columns the reward reads."""
    rows = []
    for question, key, dp in items:
        if conversational:
            messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
            prompt: Any = [*messages, {"role": "user", "content": question}]
        else:
            prompt = question if not system_prompt else f"{system_prompt}\n\n{question}"
        rows.append(
            {
                "prompt": prompt,
                **key_columns(key),
                "label": key_label(key),
                "datapoint_id": dp.id,
                "difficulty": dp.difficulty,
                "dataset_version": dp.dataset_version or "",
            }
        )
    return rows
