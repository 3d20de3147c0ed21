"""Prime Intellect `verifiers` >= 0.4 (`verifiers.v1`): our problems as a single-turn taskset.

    vf-eval loong-env -m MODEL --client.base-url http://127.0.0.1:8080/v1 -n 20 --no-push \
        --env.agent.harness.id null --env.agent.runtime.type subprocess --env.taskset.domains '["physics"]'

verifiers 0.4 finds a taskset by importing the module named by its id (`loong-env` -> `loong_env`) and
taking the one `Taskset` subclass its `__all__` exports; `loong_env` exports `LoongTaskset` when
`verifiers.v1` is installed (0.4; 0.3.1 ships it as a preview, and the tests run it there). The
tool-less `null` harness asks the model once; the task's reward is our router's verdict on the last
reply, so it judges exactly as `SingleStepEnv.step` would. Each task carries the answer key (domain,
tolerance, plug-in, requirements), the datapoint id and its dataset version.
For verifiers 0.3's classic API see `loong_env.integrations.verifiers_env`.
"""

from __future__ import annotations

from collections.abc import Iterator

import verifiers.v1 as vf
from pydantic import Field

from loong_env.env import BOXED_INSTRUCTION
from loong_env.integrations.keys import key_columns, key_from_columns, shared_router
from loong_env.integrations.rows import draw_keyed
from loong_env.integrations.verifiers_env import problem_source
from loong_env.rewards import is_well_formatted
from loong_env.types import VerificationStatus

__all__ = ["LoongTaskset"]


class LoongData(vf.TaskData):
    """One problem: the question as the policy sees it, and its answer key as plain columns."""

    answer: str
    domain: str = "unknown"
    tolerance: str = ""
    verifier: str = ""
    requirements: list[str] = Field(default_factory=list)
    datapoint_id: str = ""
    dataset_version: str = ""


class LoongTask(vf.Task[LoongData]):
    """Single turn; rewarded 1.0 when loong_env's verifier judges the last reply correct."""

    @vf.stop
    async def single_turn(self, trace: vf.Trace) -> bool:
        """One answer per problem."""
        return trace.num_turns >= 1

    @vf.reward(weight=1.0)
    async def loong_correctness(self, trace: vf.Trace) -> float:
        """1.0 when the verdict is `correct` (boxed, code or the domain's plug-in), else 0.0."""
        data = self.data
        columns = {
            "answer": data.answer,
            "domain": data.domain,
            "tolerance": data.tolerance,
            "verifier": data.verifier,
            "requirements": data.requirements,
        }
        key = key_from_columns(columns, router=shared_router())
        result, _name = await shared_router().judge(trace.last_reply, key)
        return 1.0 if result.status is VerificationStatus.correct else 0.0

    @vf.metric
    async def loong_format(self, trace: vf.Trace) -> float:
        """1.0 for exactly one \\boxed{} answer (or a runnable ```python block); logged, not rewarded."""
        return 1.0 if is_well_formatted(trace.last_reply) else 0.0


class LoongTasksetConfig(vf.TasksetConfig):
    """Which problems: seed domains (default: every domain) or a generation run's kept items."""

    domains: list[str] | None = None
    run: str | None = None
    num_tasks: int = 256
    seed: int = 0
    instruction: str | None = BOXED_INSTRUCTION


class LoongTaskset(vf.Taskset[LoongTask, LoongTasksetConfig]):
    """`num_tasks` problems drawn like `env.reset(seed=...)` from seeds or a run's output."""

    def load(self) -> Iterator[LoongTask]:
        cfg = self.config
        source = problem_source(cfg.domains, cfg.run)
        for i, (question, key, dp) in enumerate(
            draw_keyed(source, cfg.num_tasks, seed=cfg.seed, instruction=cfg.instruction)
        ):
            columns = key_columns(key)
            data = LoongData(
                idx=i,
                id=dp.id,
                prompt=question,
                answer=columns["answer"],
                domain=columns["domain"],
                tolerance=columns["tolerance"] or "",
                verifier=columns["verifier"] or "",
                requirements=list(columns["requirements"] or []),
                datapoint_id=dp.id,
                dataset_version=str(dp.metadata.get("dataset_version") or ""),
            )
            yield LoongTask(data, cfg.task)
