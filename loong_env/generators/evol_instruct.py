"""EvolInstructGenerator: evolve a parent problem in depth (harder) or breadth (new, rarer) (Xu et al., 2023).

Elimination rules of the paper map onto the shared keep rule: no information gain (the rewrite's nearest
pool item is its own parent, above the ROUGE-L threshold), the solver gives up, the output copies prompt
scaffolding. Kept items can be evolved again, so difficulty can grow over a run.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from loong_env.errors import UnknownNameError
from loong_env.generators import prompts
from loong_env.generators.base import CandidateGenerator, Proposal
from loong_env.generators.selection import short_enough

IN_DEPTH = ("add_constraints", "deepen", "concretize", "more_steps", "complicate_input")
IN_BREADTH = ("breadth",)


class EvolInstructGenerator(CandidateGenerator):
    """Pick a parent (seed, or kept item with probability `p_kept`) and an evolution; ask for the rewrite."""

    name = "evol-instruct"

    def __init__(
        self,
        *args: Any,
        operations: Sequence[str] = IN_DEPTH + IN_BREADTH,
        p_kept: float = 0.3,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        unknown = [op for op in operations if op not in prompts.EVOLUTIONS]
        if unknown:
            raise UnknownNameError("evolution", min(unknown), prompts.EVOLUTIONS)
        self.operations = list(operations)
        self.p_kept = p_kept
        self._parents = short_enough(self.seeds)

    def propose(self, rng: random.Random, attempt: int) -> Proposal:
        use_kept = bool(self.kept) and rng.random() < self.p_kept
        parent = rng.choice(short_enough(self.kept) if use_kept else self._parents)
        operation = rng.choice(self.operations)
        return Proposal(
            messages=prompts.evolve(parent, operation, self.domain, self.requirements),
            seed_ids=[] if use_kept else [parent.id],
            parent_id=parent.id,
            extra={
                "evolution": operation,
                "kind": "in-breadth" if operation in IN_BREADTH else "in-depth",
                "generation": int(parent.metadata.get("generation", 0)) + 1,
            },
        )
