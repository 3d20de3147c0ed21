"""Prompts sized for a 0.5B model: short, concrete, one output format, examples in that same format.

Every method asks for the same JSON object, so one parser and one keep rule serve them all.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from loong_env.types import DataPoint

SYSTEM_WRITER = "You write new math problems together with Python code that computes the exact answer."
SYSTEM_SOLVER = "You are a careful math solver. You solve problems step by step without writing code."

CODE_RULE = "The code must compute the answer and print only the answer."
FORMAT_RULES = (
    "The problem must be self-contained and have one exact answer (a number or short expression). "
    f"{CODE_RULE} "
    'Reply with JSON only: {"question": "...", "code": "..."}'
)

# Phrases from our own prompts: if a question contains them, the model copied scaffolding, not a problem.
SCAFFOLD_MARKERS = (
    "reply with json",
    "given problem",
    "rewritten problem",
    "#given",
    "#rewritten",
    "example 1",
    "example problem",
    "new problem:",
    '"question"',
    '"code"',
    "```",
    "print only the answer",
    "self-contained and have one exact answer",
)


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
    """The Self-Instruct recipe: a numbered list of seed and generated tasks; the model adds the next."""
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
    "concretize": (
        "Rewrite the problem replacing general quantities with specific concrete values or objects."
    ),
    "more_steps": "Rewrite the problem so that solving it needs more reasoning steps.",
    "complicate_input": (
        "Rewrite the problem with a larger or more complicated input (more terms, a bigger structure)."
    ),
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


def write_code(question: str, domain: str, requirements: Sequence[str]) -> list[dict[str, str]]:
    """The generation prompt's code part for a GIVEN problem: seeds with known answers test the keep rule."""
    user = (
        f"{domain_hint(domain, requirements)}\n\nProblem: {question}\n\n"
        f"Write Python code for this problem. {CODE_RULE} "
        'Reply with JSON only: {"question": "<the same problem>", "code": "..."}'
    )
    return [{"role": "system", "content": SYSTEM_WRITER}, {"role": "user", "content": user}]


def solve(question: str, conditions: Sequence[str] = ()) -> list[dict[str, str]]:
    """The independent second route: a short chain of thought, no code, one boxed answer.

    With `conditions` (the question's quantities and named conditions, read by `checks.conditions`) the
    prompt lists them and asks that each be used: a solver that skims past "less than 15" as the writer did
    would otherwise repeat the writer's misreading.
    """
    # A 0.5B model follows short numbered instructions best; "check" catches some arithmetic slips, and
    # "only the final number" keeps words out of the box. No example value: a 0.5B model would copy it.
    listed = ""
    if conditions:
        items = "\n".join(f"- {c}" for c in conditions)
        listed = f"\n\nThe problem states these quantities and conditions; use every one of them:\n{items}"
    user = (
        f"{question}{listed}\n\nSolve step by step, briefly: 1) write what is asked, 2) compute it in a few "
        "short steps, 3) check the result once. Then write the final answer as \\boxed{} with only the final "
        "number or expression inside."
    )
    return [{"role": "system", "content": SYSTEM_SOLVER}, {"role": "user", "content": user}]


_MISSING_IMPORT = re.compile(r"cannot import name '(\w+)' from '([\w.]+)'")
_MISSING_ATTR = re.compile(r"module '([\w.]+)' has no attribute '(\w+)'")
_UNDEFINED = re.compile(r"name '(\w+)' is not defined")


def failure_hint(error: str) -> str:
    """Say plainly which name does not exist: a 0.5B writer shown only the traceback re-imports it."""
    if match := _MISSING_IMPORT.search(error):
        name, module = match.groups()
        return f"`{name}` does not exist in `{module}`: do not import it; compute the answer another way."
    if match := _MISSING_ATTR.search(error):
        module, name = match.groups()
        return f"`{module}.{name}` does not exist: do not use it; compute the answer another way."
    if match := _UNDEFINED.search(error):
        return f"`{match.group(1)}` is used but never defined or imported."
    return ""


def clean_traceback(lines: Sequence[str]) -> str:
    """Traceback lines without long file paths in parentheses (tokens a small model does not need)."""
    return "\n".join(re.sub(r" \(/[^)]*\)", "", line) for line in lines)


# The scripted test server recognises a repair request by this phrase; keep it in the prompt.
REPAIR_MARKER = "Fix the code"


def repair(
    question: str, code: str, failure: str, domain: str, requirements: Sequence[str]
) -> list[dict[str, str]]:
    """One follow-up to the writer: its code failed; show the failure and ask for corrected code only."""
    user = (
        f"{domain_hint(domain, requirements)}\n\nProblem: {question}\n\n"
        f"This Python code was written to print the answer:\n```python\n{code}\n```\n\n"
        f"It failed:\n{failure}\n\n"
        f"{REPAIR_MARKER} so it runs and prints only the answer. Import only names that really exist "
        "(when unsure, compute it with plain Python). Keep the problem exactly as it is. "
        'Reply with JSON only: {"question": "<the same problem>", "code": "..."}'
    )
    return [{"role": "system", "content": SYSTEM_WRITER}, {"role": "user", "content": user}]
