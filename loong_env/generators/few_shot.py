"""FewShotGenerator: k random seeds as examples -> one new question + solution code."""

from __future__ import annotations

import random
from typing import Any

from loong_env.generators import prompts
from loong_env.generators.base import CandidateGenerator, Proposal
from loong_env.generators.selection import pick, short_enough


class FewShotGenerator(CandidateGenerator):
    """The plain recipe: show k seeds in the output format, ask for one new problem."""

    name = "few-shot"

    def __init__(self, *args: Any, k: int = 2, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.k = k
        self._demos = short_enough(self.seeds)
        self._tags = sorted({tag for dp in self.seeds for tag in dp.tags})

    def propose(self, rng: random.Random, attempt: int) -> Proposal:
        examples = pick(rng, self._demos, self.k)
        # Small models copy their examples; naming a topic the examples are not about steers them away.
        shown = {tag for dp in examples for tag in dp.tags}
        topics = [t for t in self._tags if t not in shown]
        topic = rng.choice(topics) if topics else None
        return Proposal(
            messages=prompts.few_shot(examples, self.domain, self.requirements, topic=topic),
            seed_ids=[dp.id for dp in examples],
            extra={"topic": topic},
        )
