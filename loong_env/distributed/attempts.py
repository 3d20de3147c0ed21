"""A generation worker: one Ray actor that runs whole attempts (LLM calls, sandbox, solves) near its node.

The driver sends attempt numbers; the worker answers each with a Verdict and writes nothing. It holds its
own LLM client (pointed at the endpoints in its spec, never a model server of its own), its own warm
sandbox, and a generator whose keep rule asks the run's one NoveltyPool actor about novelty.
"""

from __future__ import annotations

import os
import socket
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from loong_env.generators.base import CandidateGenerator
from loong_env.generators.keep import KeepConfig, Verdict
from loong_env.generators.run import method_class
from loong_env.llm.config import LLMConfig
from loong_env.types import DataPoint, Tolerance


class WorkerSpec(BaseModel):
    """Everything a worker needs to build its generator, as plain data that travels to any node."""

    model_config = ConfigDict(extra="forbid")

    domain: str
    method: str
    seeds: list[DataPoint]
    requirements: list[str] = Field(default_factory=list)
    tolerance: Tolerance | None = None
    keep: KeepConfig = Field(default_factory=KeepConfig)
    llm: LLMConfig = Field(description="Resolved endpoint(s): base_url is always set (no local model here).")
    seed: int = 0
    concurrency: int = Field(4, ge=1, description="Attempts this worker runs at once.")
    max_tokens: int = 512
    temperature: float = 0.8
    sandbox_workers: int = Field(1, ge=1, description="Warm sandbox processes of this worker.")
    sandbox_timeout_s: float = 10.0


class WorkerInfo(BaseModel):
    """Where a worker runs: for logs, tests and the kill-a-worker drill."""

    pid: int
    host: str
    node_id: str


class AttemptWorker:
    """The Ray actor's body (plain Python; the driver wraps it with `ray.remote`)."""

    def __init__(self, spec: WorkerSpec, pool: Any) -> None:
        from loong_env.distributed.pool import PooledKeepRule
        from loong_env.llm import LLMClient
        from loong_env.sandbox import Sandbox
        from loong_env.seeds.dataset import warmup_rationales

        self.spec = spec
        self.pool = pool
        self.client = LLMClient(config=spec.llm)
        self.sandbox = Sandbox(
            spec.requirements,
            timeout_s=spec.sandbox_timeout_s,
            workers=spec.sandbox_workers,
            warmup=warmup_rationales(spec.requirements),
        )
        self.keep = keep = PooledKeepRule(
            self.sandbox,
            self.client,
            writer=self.client,
            config=spec.keep,
            tolerance=spec.tolerance,
            requirements=spec.requirements,
            shared=pool,
        )
        self.generator: CandidateGenerator = method_class(spec.method)(
            spec.seeds,
            self.client,
            keep,
            domain=spec.domain,
            requirements=spec.requirements,
            seed=spec.seed,
            concurrency=spec.concurrency,
            max_tokens=spec.max_tokens,
            temperature=spec.temperature,
        )
        keep.demos = self.generator.kept  # other workers' kept items become this generator's demos too

    async def attempt(self, number: int) -> Verdict:
        """Run attempt `number` end to end (the same number always proposes from the same RNG)."""
        await self.keep.sync()  # demos current before the proposal
        return await self.generator.attempt(number)

    def info(self) -> WorkerInfo:
        """This worker's process id, host and Ray node."""
        import ray

        node = ray.get_runtime_context().get_node_id()
        return WorkerInfo(pid=os.getpid(), host=socket.gethostname(), node_id=node)

    async def close(self) -> None:
        """Stop the sandbox workers and the HTTP pool (the driver calls this before it lets the actor go)."""
        await self.sandbox.close()
        await self.client.close()
