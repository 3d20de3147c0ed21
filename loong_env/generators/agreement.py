"""The agreement rule as a pure function of solve outcomes: the keep rule and its benchmark decide alike.

Given the outcomes of the independent solves drawn so far (in order), `agreement_decision` says whether to
draw another solve, keep or reject. `KeepRule.judge` draws solves until it stops asking; the precision
benchmark replays solves it drew once through the very same function, for every configuration.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

SolveOutcome = Literal["agree", "disagree", "truncated", "no_answer", "gave_up", "llm_error"]
AgreementStep = Literal["solve", "keep", "reject"]
AgreementRule = Literal["any", "majority", "all"]

# A solve that boxed nothing is no evidence either way: it may be retried without loosening the rule.
UNANSWERED: tuple[SolveOutcome, ...] = ("truncated", "no_answer", "llm_error")


def majority_needed(attempts: int, rule: str) -> int:
    """How many agreeing solves the agreement rule asks for out of `attempts`."""
    return {"any": 1, "majority": attempts // 2 + 1, "all": attempts}[rule]


def agreement_decision(
    outcomes: Sequence[str], *, attempts: int, rule: str, unanswered_retries: int
) -> AgreementStep:
    """After these solve outcomes (in draw order): "solve" (draw the next one), "keep" or "reject".

    There are `attempts` slots; a slot whose solve boxed nothing asks again while the shared budget of
    `unanswered_retries` lasts. The rule stops as soon as the outcome is certain: enough slots agreed, or
    too few slots remain to reach `majority_needed`.
    """
    needed = majority_needed(attempts, rule)
    retries_left = unanswered_retries
    slots_done = agreed = 0
    for outcome in outcomes:
        if outcome in UNANSWERED and retries_left > 0:
            retries_left -= 1  # the same slot asks again
            continue
        slots_done += 1
        agreed += outcome == "agree"
        if agreed >= needed:
            return "keep"
        if agreed + (attempts - slots_done) < needed:
            return "reject"
    return "solve"
