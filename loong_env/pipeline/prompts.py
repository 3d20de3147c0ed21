"""What the pipeline says to the model: the first solve, a refinement turn, a STaR hint, and the judge rubric.

The first trace uses the generators' solve prompt (short numbered steps, one \\boxed{} answer), so a trace
made here and a solve made during generation answer the same prompt. Markers the scripted test server
recognises: FEEDBACK_MARKER (a refinement turn) and HINT_MARKER (a rationalization).
"""

from __future__ import annotations

from loong_env.generators.prompts import solve
from loong_env.pipeline.records import Messages

FEEDBACK_MARKER = "Feedback on your solution"
HINT_MARKER = "Hint: the correct final answer is"
SYSTEM_JUDGE = "You grade step-by-step math solutions strictly and briefly."

__all__ = ["FEEDBACK_MARKER", "HINT_MARKER", "judge", "rationalize", "refine", "solve"]


def refine(prompt: Messages, trace: str, feedback: str) -> Messages:
    """The conversation so far plus the evaluators' feedback, asking for a brief improved solution."""
    follow_up = (
        f"{FEEDBACK_MARKER}:\n{feedback.strip()}\n\nWrite an improved solution, brief and step by step, "
        "fixing every problem above. End with the final answer as \\boxed{} with only the final number or "
        "expression."
    )
    return [*prompt, {"role": "assistant", "content": trace}, {"role": "user", "content": follow_up}]


def rationalize(prompt: Messages, reference: str) -> Messages:
    """STaR: the unhinted prompt with the reference answer as a hint; the trace must reason its way there."""
    *head, last = prompt
    hint = (
        f"\n\n{HINT_MARKER} {reference}. Solve the problem in a few short steps so that the reasoning "
        "itself arrives at this answer; do not mention the hint. End with \\boxed{} holding the final answer."
    )
    return [*head, {"role": last["role"], "content": last["content"] + hint}]


def judge(question: str, trace: str, reference: str | None) -> Messages:
    """Ask for scores 0-10 (correctness, clarity, completeness) and feedback, as one JSON object."""
    known = f"\nThe correct final answer is: {reference}\n" if reference is not None else ""
    user = (
        f"Problem:\n{question}\n{known}\nSolution to grade:\n{trace}\n\n"
        "Grade the solution. correctness: are the steps and the final answer right; clarity: is it easy to "
        "follow; completeness: are all needed steps shown. Each is an integer from 0 to 10. In feedback, say "
        "in one or two sentences what to fix"
        + (" without stating the correct answer." if reference else ".")
        + ' Reply with JSON only: {"feedback": "...", "correctness": 0, "clarity": 0, "completeness": 0}'
    )
    return [{"role": "system", "content": SYSTEM_JUDGE}, {"role": "user", "content": user}]
