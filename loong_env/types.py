"""The public data model: what flows from seeds to rewards.

Every other module speaks these types; this module imports nothing of ours so it can never be part of
an import cycle.
"""

from __future__ import annotations

import hashlib
import unicodedata
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, computed_field, field_validator, model_validator

from loong_env.errors import ConfigError


def normalize_question(text: str) -> str:
    """Canonical form of a question so trivially re-formatted copies hash to the same id."""
    text = unicodedata.normalize("NFKC", text)
    return " ".join(text.split()).casefold()


def content_id(question: str, final_answer: str) -> str:
    """Stable problem id: the same question and answer always get the same id, across runs and machines."""
    payload = normalize_question(question) + "\x1f" + " ".join(final_answer.split())
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


class Tolerance(BaseModel):
    """How close a numeric answer must be: |a - b| <= max(abs, rel * |b|), or (`sig_figs`) within half a unit
    in the last place the reference states. None of these means exact (a quantity with a unit is still
    read at its significant figures unless a tolerance is stated: docs/equivalence.md)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rel: float | None = Field(default=None, ge=0)
    abs: float | None = Field(default=None, ge=0)
    sig_figs: bool | None = Field(
        default=None,
        description="Bare numbers too are rounded values: `51` accepts any answer that rounds to it at its "
        "significant figures (what quantities with a unit get without asking). Not combined with rel/abs.",
    )

    @model_validator(mode="after")
    def _one_rule(self) -> Tolerance:
        if self.sig_figs and (self.rel is not None or self.abs is not None):
            raise ConfigError(
                f"sig_figs=true cannot be combined with rel/abs (found rel={self.rel}, abs={self.abs}): "
                "a stated tolerance already replaces the rounding rule"
            )
        return self

    @property
    def bounded(self) -> bool:
        """Whether a rel or abs bound is stated (it wins over any rounding rule)."""
        return self.rel is not None or self.abs is not None

    @classmethod
    def coerce(cls, value: Tolerance | float | dict[str, float] | None) -> Tolerance | None:
        """Accept the loose forms seeds use: a bare number means a relative tolerance."""
        if value is None or isinstance(value, Tolerance):
            return value
        if isinstance(value, int | float):
            return cls(rel=float(value))
        return cls.model_validate(value)


# DataPoint fields that Loong's format keeps under `metadata` (its readers and our table columns share them)
LOONG_METADATA_FIELDS = (
    "difficulty",
    "license",
    "source",
    "required_dependencies",
    "answer_tolerance",
    "tags",
    "contributor",
    "date_created",
)


DATASET_VERSION_KEY = "dataset_version"  # DataPoint.metadata key an exported dataset stamps on its items


class DataPoint(BaseModel):
    """One verifiable problem: a question, its answer, and the code that proves the answer."""

    model_config = ConfigDict(extra="forbid")

    question: str = Field(min_length=1)
    final_answer: str = Field(
        min_length=1, description="The answer as a string: a number, expression or literal."
    )
    rationale: str = Field(default="", description="Python code that prints final_answer.")
    domain: str = Field(min_length=1)
    difficulty: int | None = Field(default=None, ge=1, le=5)
    # Loong metadata fields, first-class so they are validated, not buried in a dict.
    license: str | None = None
    source: str | None = None
    required_dependencies: list[str] = Field(default_factory=list)
    answer_tolerance: Tolerance | None = None
    tags: list[str] = Field(default_factory=list)
    contributor: list[str] = Field(default_factory=list)
    date_created: str | None = None
    metadata: dict[str, Any] = Field(
        default_factory=dict, description="Anything else: provenance, origin file."
    )

    @field_validator("answer_tolerance", mode="before")
    @classmethod
    def _coerce_tolerance(cls, v: Any) -> Any:
        return Tolerance.coerce(v)

    @field_validator("contributor", "tags", mode="before")
    @classmethod
    def _listify(cls, v: Any) -> Any:
        if v is None:
            return []
        return [v] if isinstance(v, str) else v

    @computed_field  # type: ignore[prop-decorator]
    @property
    def id(self) -> str:
        return content_id(self.question, self.final_answer)

    @property
    def dataset_version(self) -> str | None:
        """The version of the exported dataset this item came from (None: not from an export)."""
        value = self.metadata.get(DATASET_VERSION_KEY)
        return str(value) if value else None


class Observation(BaseModel):
    """What the policy sees: the question, and the index it must answer under."""

    model_config = ConfigDict(frozen=True)

    index: int
    question: str
    domain: str
    datapoint_id: str
    difficulty: int | None = None
    tags: list[str] = Field(default_factory=list)


class AnswerKey(BaseModel):
    """What one response is judged against, fully resolved: the reference and how to compare it.

    Built from a DataPoint and its domain's config by the env's router, or from dataset columns by the
    trainer integrations; the router judges a key the same way whoever built it.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    reference: str = Field(min_length=1)
    domain: str = "unknown"
    tolerance: Tolerance | None = None
    requirements: list[str] = Field(default_factory=list, description="Packages a code answer may import.")
    verifier: str | None = Field(default=None, description="Plug-in name; None means the default verifier.")

    @field_validator("tolerance", mode="before")
    @classmethod
    def _coerce_tolerance(cls, v: Any) -> Any:
        return Tolerance.coerce(v)


class Action(BaseModel):
    """The policy's answer to the observation at `index`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    index: int = 0
    llm_response: str


class VerificationStatus(StrEnum):
    correct = "correct"
    incorrect = "incorrect"
    no_answer = "no_answer"
    error = "error"


class VerificationResult(BaseModel):
    """A verifier's verdict on one response; never an exception for one bad item."""

    status: VerificationStatus
    reward: float
    extracted: str | None = Field(default=None, description="The answer the verifier read from the response.")
    reference: str | None = None
    reason: str = ""
    duration_s: float = 0.0

    @property
    def correct(self) -> bool:
        return self.status is VerificationStatus.correct


class ExecutionStatus(StrEnum):
    ok = "ok"
    error = "error"
    timeout = "timeout"
    memory_limit = "memory_limit"
    output_limit = "output_limit"
    killed = "killed"


class ExecutionResult(BaseModel):
    """What happened when a snippet ran in the sandbox."""

    status: ExecutionStatus
    stdout: str = ""
    stderr: str = ""
    exit_code: int | None = None
    duration_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status is ExecutionStatus.ok


class StepResult(BaseModel):
    """The outcome of one step: the reward, its parts, the verdict behind it, and what was asked."""

    observation: Observation
    datapoint: DataPoint = Field(
        description="The problem answered, reference included (for logs, not the policy)."
    )
    verification: VerificationResult
    verifier: str | None = Field(default=None, description="Name of the verifier that judged the answer.")
    verifier_version: str | None = Field(default=None, description="Version of that verifier.")
    dataset_version: str | None = Field(
        default=None, description="Version of the dataset the datapoint came from (an export's content hash)."
    )
    reward: float = Field(description="Weighted sum of `rewards`.")
    rewards: dict[str, float] = Field(description="Each named reward: `correctness`, then any extra ones.")
    reward_errors: dict[str, str] = Field(
        default_factory=dict, description="Extra rewards that raised (scored 0)."
    )
    done: bool = True
