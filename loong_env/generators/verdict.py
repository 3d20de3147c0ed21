"""The keep rule's vocabulary: its settings, what it is given (Candidate) and what it decides (Verdict).

Kept apart from the rule itself (`keep.py`) so output files, the CLI and Ray workers can read verdicts
without the rule's machinery.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from loong_env.generators.agreement import AgreementRule, AgreementStep, SolveOutcome, agreement_decision
from loong_env.types import DataPoint, ExecutionResult


class RejectReason(StrEnum):
    """Why a candidate was not kept; one per candidate, specific enough to act on."""

    llm_error = "llm_error"  # the generation request failed after retries
    truncated = "truncated"  # the generation reply hit max_tokens (finish_reason == "length")
    unparsable = "unparsable"  # no question + code could be read from the reply
    too_short = "too_short"
    too_long = "too_long"
    degenerate = "degenerate"  # repetitive or mostly non-text question
    scaffold_copy = "scaffold_copy"  # the question copies our prompt's scaffolding
    duplicate = "duplicate"  # normalised question equals a seed or kept item
    too_similar = "too_similar"  # ROUGE-L to a seed or kept item above the threshold
    no_information_gain = "no_information_gain"  # evol: the rewrite is too close to its parent
    code_error = "code_error"
    code_timeout = "code_timeout"
    code_limit = "code_limit"  # memory / output limit or killed
    empty_output = "empty_output"
    answer_too_long = "answer_too_long"  # printed more than an answer
    solve_truncated = "solve_truncated"  # every CoT solve hit max_tokens: unknown, not wrong
    solver_gave_up = "solver_gave_up"  # the solver said it cannot be solved
    no_boxed_answer = "no_boxed_answer"  # the solver finished without a \boxed{} answer
    ungrounded = "ungrounded"  # a condition the question states (a bound, parity, ...) never reaches the code
    insensitive = "insensitive"  # moving a stated number, table or text never changed the printed answer
    ill_posed = "ill_posed"  # the question is not self-contained or has no single answer
    disagreement = "disagreement"  # boxed answer(s) differ from the code's answer
    internal_error = "internal_error"  # a bug of ours; the message says where


class KeepConfig(BaseModel):
    """Knobs of the keep rule; defaults tuned for a 0.5B model on 2 cores."""

    model_config = ConfigDict(extra="forbid")

    min_question_chars: int = 30
    max_question_chars: int = 2000
    min_question_words: int = 6
    max_answer_chars: int = 200
    degenerate_unique_ratio: float = Field(
        0.25, description="Reject when unique/total tokens falls below this."
    )
    novelty_threshold: float = Field(
        0.7, description="Reject when ROUGE-L to any seed or kept item exceeds this."
    )
    parent_threshold: float | None = Field(
        None,
        description="Evol only: bar for similarity to the candidate's own parent; None = novelty_threshold.",
    )
    solve_attempts: int = Field(1, ge=1, description="Independent answered solves the agreement rule counts.")
    agreement: AgreementRule = "any"
    unanswered_retries: int = Field(
        1,
        ge=0,
        description="Extra solves (at retry_temperature) when a solve boxed nothing (truncated, no box, "
        "request failed): no evidence either way, so a retry does not loosen the agreement rule. A solve "
        "that boxed a different answer or gave up is never retried.",
    )
    solve_max_tokens: int = 1024
    solve_temperature: float = 0.0
    retry_temperature: float = 0.7
    repair_attempts: int = Field(
        1,
        ge=0,
        description="Follow-ups asking the writer to fix code that crashed or printed nothing; 0 = off.",
    )
    repair_max_tokens: int = 512
    repair_temperature: float = 0.2
    repair_traceback_lines: int = Field(6, ge=1, description="Last stderr lines shown to the writer.")
    grounding: bool = Field(
        True,
        description="Reject code that never uses a condition the question states (a bound such as 'less than "
        "15', parity, primality, divisibility): the commonest misreading, which a solve by the same model "
        "shares. Static (the question's text and the code's live literals); no model call.",
    )
    well_posedness: bool = Field(
        True,
        description="Reject questions that refer to material they do not hold, ask for one of many answers, "
        "or aggregate values they never give. Static; no model call.",
    )
    perturbation: bool = Field(
        True,
        description="Run the code again with each stated number's literals moved (halved, -1, +1, doubled), "
        "one cell of each stated table moved, each stated data text doubled / reversed / shortened, and "
        "reject it when no move changes the printed answer: code that holds what the question states but "
        "ignores it (an `if` made always true, a size never read, a score matrix never summed). Yes/no "
        "answers are not tested. Sandbox only (at most `perturbation_runs` extra runs); no model call. "
        "Measured in docs/generators.md.",
    )
    perturbation_runs: int = Field(8, ge=1, description="Cap on the perturbation check's extra sandbox runs.")
    perturbation_scope: Literal["conditions", "quantities"] = Field(
        "quantities",
        description="'quantities': every stated number the code holds as a literal; 'conditions': only the "
        "bounds and filters the question states (fewer false rejections, far fewer catches).",
    )
    solve_prompt: Literal["plain", "conditions"] = Field(
        "plain",
        description="'conditions' lists the question's quantities and named conditions in the solve prompt, "
        "asking that each be used (a rewording that spells out what a skim drops).",
    )
    solver_model: str | None = Field(
        None, description="The solver's model (a local model name or a remote id); None = the writer's."
    )
    solver_base_url: str | None = Field(
        None, description="The solver's OpenAI-compatible endpoint; None = the writer's (or the local model)."
    )
    solver_api_key: SecretStr | None = Field(None, exclude=True, description="The solver endpoint's key.")

    @property
    def separate_solver(self) -> bool:
        """True when the solve goes to another endpoint or model than the writer's."""
        return self.solver_model is not None or self.solver_base_url is not None

    def decide(self, outcomes: Sequence[str]) -> AgreementStep:
        """The agreement rule after these solve outcomes: draw another solve, keep or reject."""
        return agreement_decision(
            outcomes,
            attempts=self.solve_attempts,
            rule=self.agreement,
            unanswered_retries=self.unanswered_retries,
        )

    def solve_temperature_at(self, index: int) -> float:
        """The first solve is greedy; later ones (retries, further slots) sample so they are not copies."""
        return self.solve_temperature if index == 0 else self.retry_temperature


class SolveAttempt(BaseModel):
    """One independent CoT solve and how it compared with the code's answer."""

    outcome: SolveOutcome
    boxed: str | None = None
    finish_reason: str | None = None
    reason: str = ""
    tokens: int = 0
    seconds: float = 0.0


class RepairAttempt(BaseModel):
    """One repair round: why the code before it failed, what the writer sent back, and how that ran."""

    failed_with: str = Field(description="The reject reason of the code before this repair.")
    failure: str = Field(description="What the writer was shown: traceback tail or 'it printed nothing'.")
    outcome: Literal["fixed", "still_failing", "unparsable", "truncated", "llm_error"]
    code: str | None = Field(default=None, description="The corrected code the writer sent back.")
    detail: str = ""
    tokens: int = 0
    seconds: float = 0.0


class Candidate(BaseModel):
    """A parsed proposal on its way through the keep rule, with where it came from."""

    question: str
    code: str
    domain: str
    method: str
    model: str | None = None
    attempt: int
    seed_ids: list[str] = Field(default_factory=list)
    parent_id: str | None = None
    parsed_by: str | None = None
    extra: dict[str, Any] = Field(default_factory=dict)
    tokens: int = Field(0, description="Tokens spent before the keep rule (the generation request).")
    timings: dict[str, float] = Field(default_factory=dict, description="Seconds spent before the keep rule.")
    raw_reply: str | None = Field(default=None, description="The generation reply (kept for rejected items).")


class Verdict(BaseModel):
    """The end of one attempt: accepted with its DataPoint, or rejected with one reason and a detail."""

    attempt: int
    method: str
    accepted: bool
    reason: RejectReason | None = None
    detail: str = ""
    question: str | None = None
    code: str | None = None
    answer: str | None = None
    answer_rule: str | None = Field(default=None, description="Which output-reading rule read the answer.")
    datapoint: DataPoint | None = None
    seed_ids: list[str] = Field(default_factory=list)
    solves: list[SolveAttempt] = Field(default_factory=list)
    repairs: list[RepairAttempt] = Field(default_factory=list)
    checks: list[str] = Field(
        default_factory=list,
        description="The checks passed, in order (shape, novelty, code, grounding, ...).",
    )
    similarity: float | None = None
    timings: dict[str, float] = Field(default_factory=dict)
    tokens: int = 0
    raw_reply: str | None = Field(default=None, description="The generation reply, kept for rejected items.")


def reject(verdict: Verdict, reason: RejectReason, detail: str) -> Verdict:
    """The verdict turned into a rejection with one reason and a detail (a copy: verdicts flow one way)."""
    return verdict.model_copy(
        update={"accepted": False, "reason": reason, "detail": detail, "datapoint": None}
    )


class Runner(Protocol):
    """What the keep rule needs from a sandbox."""

    async def run(self, code: str) -> ExecutionResult: ...


class ChatClient(Protocol):
    """What the keep rule and generators need from an LLM client (loong_env.llm.LLMClient fits)."""

    async def chat(self, messages: list[dict[str, str]], **kwargs: Any) -> Any: ...
