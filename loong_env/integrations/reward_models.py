"""The reward service's wire format: typed requests and responses, ours and OpenRLHF's.

Our API (`POST /v1/score`) takes `ScoreRequest` and answers `ScoreResponse`; OpenRLHF's remote reward
protocol (`POST /get_reward`) takes `OpenRLHFRequest` (`query`, `prompts`, `labels`) and answers
`OpenRLHFResponse` (`rewards`, `scores`, `extra_logs`, plus our per-item `details`). A malformed item
never fails its batch: it is kept as an item with an `error`, and scores 0 with that reason.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.json_schema import SkipJsonSchema

from loong_env.types import Tolerance

ItemStatus = Literal["correct", "incorrect", "no_answer", "error", "invalid"]


class ScoreItem(BaseModel):
    """One response and what it is judged against; fields left out come from the domain's config."""

    model_config = ConfigDict(extra="forbid")

    id: str | int | None = Field(default=None, description="Echoed back in the result, for your bookkeeping.")
    response: str = Field(
        description="The policy's full answer text (a \\boxed{} answer, or a ```python block)."
    )
    reference: str | int | float = Field(description="The reference answer the response must match.")
    domain: str | None = Field(
        default=None, description="Seed domain: picks its tolerance and verifier plug-in."
    )
    tolerance: Tolerance | float | None = Field(
        default=None, description='{"rel": x, "abs": y}; a number = rel.'
    )
    requirements: list[str] | None = Field(default=None, description="Packages a code answer may import.")
    verifier: str | None = Field(default=None, description="Plug-in name; default: the domain's, else boxed.")
    error: SkipJsonSchema[str | None] = Field(default=None, exclude=True)

    @model_validator(mode="wrap")
    @classmethod
    def _keep_bad_items(cls, data: Any, handler: Any) -> ScoreItem:
        """A malformed item becomes an item carrying its error, so the rest of the batch is still scored."""
        try:
            return handler(data)
        except ValidationError as exc:
            item_id = data.get("id") if isinstance(data, dict) else None
            return cls.model_construct(
                id=item_id if isinstance(item_id, str | int) else None,
                response="",
                reference="",
                error=describe_validation_error(exc),
            )


class ScoreRequest(BaseModel):
    """A batch to score with loong_env's verifiers."""

    model_config = ConfigDict(extra="forbid")

    items: list[ScoreItem] = Field(description="The batch; at most the server's max_batch items.")
    format_weight: float | None = Field(
        default=None,
        ge=0,
        description="Bonus per well-formatted answer (one \\boxed{}, or code); default: server's.",
    )


class ItemScore(BaseModel):
    """The verdict on one item, in request order."""

    id: str | int | None = None
    reward: float = Field(description="correctness + format_weight * well_formatted.")
    correctness: float = Field(description="1.0 when the verifier judged the answer correct, else 0.0.")
    well_formatted: bool = False
    status: ItemStatus
    verifier: str | None = Field(default=None, description="The verifier that judged the item.")
    verifier_version: str | None = Field(default=None, description="That verifier's version.")
    extracted: str | None = Field(default=None, description="The answer the verifier read from the response.")
    reference: str | None = None
    reason: str = ""
    duration_s: float = 0.0


class ScoreResponse(BaseModel):
    """Results in request order, and counts over the batch."""

    results: list[ItemScore]
    n: int
    correct: int
    invalid: int = Field(description="Items that were malformed (scored 0 with a reason).")
    errors: int = Field(description="Items whose verifier failed or timed out (scored 0 with a reason).")
    duration_s: float


class OpenRLHFRequest(BaseModel):
    """OpenRLHF's remote reward request: `query` (prompt + response text), `prompts`, `labels` (references).

    Unknown fields are ignored (the protocol belongs to OpenRLHF); an item that is not a string is scored 0.
    """

    model_config = ConfigDict(extra="ignore")

    query: list[Any] = Field(description="Full decoded sequences: prompt followed by the response.")
    prompts: list[Any] | None = Field(default=None, description="The prompts, used to cut the response out.")
    labels: list[Any] | None = Field(
        default=None, description="Reference answers, or JSON objects {reference, domain, tolerance, ...}."
    )


class OpenRLHFResponse(BaseModel):
    """What OpenRLHF reads: `rewards` (advantages), `scores` (0..1, for filtering), `extra_logs` (logged)."""

    rewards: list[float]
    scores: list[float]
    extra_logs: dict[str, list[float]]
    details: list[ItemScore] = Field(description="Our per-item verdicts (OpenRLHF ignores this field).")


class Health(BaseModel):
    """Liveness and load: how many items are being scored or waiting, against the limits."""

    status: Literal["ok"] = "ok"
    version: str
    pending_items: int
    max_pending_items: int
    max_batch: int


def describe_validation_error(exc: ValidationError) -> str:
    """One line naming each bad field and what was wrong with it."""
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err["loc"]) or "item"
        parts.append(f"{where}: {err['msg']}")
    return "invalid item: " + "; ".join(parts)
