"""SelfInstructGenerator: demonstrations mix seeds and machine-generated problems (Wang et al., 2023).

The original recipe shows 6 human + 2 machine tasks; we scale it down for a small context (default 2 + 1)
and rely on the shared keep rule for the ROUGE-L > 0.7 novelty filter and the length / degeneracy filters.
"""

from __future__ import annotations

import random
from typing import Any

from loong_env.generators import prompts
from loong_env.generators.base import CandidateGenerator, Proposal
from loong_env.generators.selection import pick, short_enough


class SelfInstructGenerator(CandidateGenerator):
    """Task list of `k_seed` seeds plus up to `k_machine` kept items; the model writes the next task."""

    name = "self-instruct"

    def __init__(self, *args: Any, k_seed: int = 2, k_machine: int = 1, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.k_seed = k_seed
        self.k_machine = k_machine
        self._demos = short_enough(self.seeds)

    def propose(self, rng: random.Random, attempt: int) -> Proposal:
        human = pick(rng, self._demos, self.k_seed)
        machine = pick(rng, short_enough(self.kept), self.k_machine) if self.kept else []
        tasks = human + machine
        rng.shuffle(tasks)
        return Proposal(
            messages=prompts.self_instruct(tasks, self.domain, self.requirements),
            seed_ids=[dp.id for dp in human],
            extra={"machine_ids": [dp.id for dp in machine]},
        )
