"""CoTConfig: every knob of a CoT pipeline run, validated before the first request."""

from __future__ import annotations

from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from loong_env.errors import ConfigError
from loong_env.pipeline.limiter import LimiterConfig
from loong_env.pipeline.records import Mode


class CoTConfig(BaseModel):
    """How traces are made, judged and kept. Defaults suit the 0.5B local model on 2 cores."""

    model_config = ConfigDict(extra="forbid")

    mode: Mode = "refine"
    max_iterations: int = Field(default=2, ge=0, description="Refinement rounds after the first trace.")
    thresholds: dict[str, float] = Field(
        default_factory=lambda: {"verifier.correct": 1.0},
        description="`evaluator.score` -> minimum; refinement stops once every one is met.",
    )
    samples: int = Field(default=4, ge=1, description="Traces per problem in rejection mode.")
    temperature: float = Field(
        default=0.7, ge=0, description="Sampling temperature (samples, refinements, rationalization)."
    )
    first_temperature: float = Field(
        default=0.0, ge=0, description="The first trace of refine mode (greedy)."
    )
    max_tokens: int = Field(default=512, ge=1, description="Token limit of each trace.")
    rationalize: bool = Field(
        default=True, description="STaR: one hinted round for problems no unhinted trace solved."
    )
    select: Literal["score", "shortest"] = Field(
        default="score",
        description="Best verified trace: highest evaluator score (ties: shortest), or shortest.",
    )
    judge_all_samples: bool = Field(
        default=False, description="Run non-verifier evaluators on every sample, not only verified ones."
    )
    limiter: LimiterConfig = Field(default_factory=LimiterConfig)

    @model_validator(mode="after")
    def _sampling_needs_temperature(self) -> Self:
        if self.mode == "rejection" and self.samples > 1 and self.temperature <= 0:
            raise ConfigError(
                f"rejection sampling draws {self.samples} samples per problem, which needs temperature > 0 "
                f"(got {self.temperature}): every sample would be the same"
            )
        return self

    def fingerprint(self) -> dict[str, Any]:
        """What a result depends on: a directory made with other values cannot be resumed with these."""
        keys = {"mode", "thresholds", "rationalize"} | (
            {"samples"} if self.mode == "rejection" else {"max_iterations"}
        )
        return self.model_dump(include=keys)
