"""Prompts sized for a 0.5B model: short, concrete, one output format, examples in that same format.

Every method asks for the same JSON object, so one parser and one keep rule serve them all.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from loong_env.types import DataPoint

SYSTEM_WRITER = "You write new math problems together with Python code that computes the exact answer."
SYSTEM_SOLVER = "You are a careful math solver. You solve problems step by step without writing code."

FORMAT_RULES = (
    "The problem must be self-contained and have one exact answer (a number or short expression). "
    "The code must compute the answer and print only the answer. "
    'Reply with JSON only: {"question": "...", "code": "..."}'
)

# Phrases from our own prompts: if a question contains them, the model copied scaffolding, not a problem.
SCAFFOLD_MARKERS = (
    "reply with json", "given problem", "rewritten problem", "#given", "#rewritten", "example 1",
    "example problem", "new problem:", '"question"', '"code"', "```", "print only the answer",
    "self-contained and have one exact answer",
)  # fmt: skip


def example_json(dp: DataPoint) -> str:
    """A seed shown in exactly the format we want back."""
    return json.dumps({"question": dp.question, "code": dp.rationale}, ensure_ascii=False)


def domain_hint(domain: str, requirements: Sequence[str]) -> str:
    """One line naming the domain and the libraries the code may import."""
    libs = (
        ", ".join(r.split("=")[0].split("<")[0].split(">")[0] for r in requirements) or "the standard library"
    )
    return f"Domain: {domain.replace('_', ' ')}. The code may use {libs}."


def few_shot(
    examples: Sequence[DataPoint], domain: str, requirements: Sequence[str], *, topic: str | None = None
) -> list[dict[str, str]]:
    """k examples, then ask for one new problem unlike them (about `topic` when one is given)."""
    shown = "\n\n".join(f"Example {i}:\n{example_json(dp)}" for i, dp in enumerate(examples, 1))
    about = f"about {topic.replace('-', ' ')} " if topic else ""
    user = (
        f"{domain_hint(domain, requirements)}\n\n{shown}\n\n"
        f"Write ONE new problem {about}that asks something the examples do not ask "
        "(not a copy with new numbers). "
        f"{FORMAT_RULES}"
    )
    return [{"role": "system", "content": SYSTEM_WRITER}, {"role": "user", "content": user}]


def self_instruct(
    tasks: Sequence[DataPoint], domain: str, requirements: Sequence[str]
) -> list[dict[str, str]]:
    """The Self-Instruct recipe: a numbered task list mixing seeds and generated tasks; the model adds the next."""
    listed = "\n".join(f"Task {i}: {example_json(dp)}" for i, dp in enumerate(tasks, 1))
    user = (
        f"{domain_hint(domain, requirements)}\n\nHere is a list of tasks:\n{listed}\n\n"
        f"Come up with Task {len(tasks) + 1}: a new task on a topic not in the list. {FORMAT_RULES}"
    )
    return [{"role": "system", "content": SYSTEM_WRITER}, {"role": "user", "content": user}]


# Evol-Instruct operations: in-depth rewrites of a parent, and one in-breadth mutation.
EVOLUTIONS: dict[str, str] = {
    "add_constraints": "Rewrite the problem by adding one more condition or requirement to it.",
    "deepen": "Rewrite the problem so it asks a deeper question about the same objects.",
    "concretize": "Rewrite the problem replacing general quantities with specific concrete values or objects.",
    "more_steps": "Rewrite the problem so that solving it needs more reasoning steps.",
    "complicate_input": "Rewrite the problem with a larger or more complicated input (more terms, a bigger structure).",
    "breadth": "Write a brand-new problem in the same domain on a rarer topic than the given problem.",
}


def evolve(
    parent: DataPoint, operation: str, domain: str, requirements: Sequence[str]
) -> list[dict[str, str]]:
    """Ask for one evolution of a parent problem; the parent's code is shown as a format example."""
    # The task comes first and again last: a 0.5B model otherwise tends to return the given problem unchanged.
    task = EVOLUTIONS[operation]
    user = (
        f"{domain_hint(domain, requirements)}\n\nTask: {task}\n\nGiven problem:\n{example_json(parent)}\n\n"
        f"{task} Do not repeat the given problem: the new one must have a different answer. {FORMAT_RULES}"
    )
    return [{"role": "system", "content": SYSTEM_WRITER}, {"role": "user", "content": user}]


def solve(question: str) -> list[dict[str, str]]:
    """The independent second route: chain of thought, no code, boxed answer."""
    user = f"{question}\n\nSolve step by step, briefly. Put the final answer in \\boxed{{}}."
    return [{"role": "system", "content": SYSTEM_SOLVER}, {"role": "user", "content": user}]
