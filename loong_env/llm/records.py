"""What one LLM call gives back and costs, and a client's running totals."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from pydantic import BaseModel, Field, ValidationError

from loong_env.llm.attempts import Attempt
from loong_env.llm.errors import LLMResponseError

_ModelT = TypeVar("_ModelT", bound=BaseModel)


class Usage(BaseModel):
    """Tokens one completion used."""

    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class Completion(BaseModel):
    """An LLM answer plus what it cost and where it came from."""

    text: str
    texts: list[str] = Field(default_factory=list, description="All choices when n > 1 (texts[0] == text).")
    finish_reason: str | None = None
    finish_reasons: list[str | None] = Field(default_factory=list, description="Per choice when n > 1.")
    model: str
    usage: Usage = Field(default_factory=Usage)
    cost_usd: float | None = None
    endpoint: str = Field(description="base_url that answered.")
    latency_s: float = Field(default=0.0, description="Wall time of the call including retries.")
    cached: bool = False
    attempts: list[Attempt] = Field(default_factory=list)
    tool_calls: list[dict[str, Any]] = Field(
        default_factory=list,
        description="The first choice's OpenAI-style tool calls ({id, type, function: {name, arguments}}).",
    )

    def message(self) -> dict[str, Any]:
        """The first choice as an assistant message, tool calls included: what to append to a conversation."""
        message: dict[str, Any] = {"role": "assistant", "content": self.text}
        if self.tool_calls:
            message["tool_calls"] = [dict(call) for call in self.tool_calls]
        return message

    def parse(self, output_type: type[_ModelT]) -> _ModelT:
        """The text validated as `output_type` (pair with `response_format=output_type`)."""
        try:
            return output_type.model_validate_json(self.text)
        except ValidationError as exc:
            raise LLMResponseError(
                f"Completion from {self.model} does not fit {output_type.__name__}: {exc}\n"
                f"text: {self.text[:300]!r}"
            ) from exc

    def json_value(self) -> Any:
        """The text parsed as JSON (for response_format json_schema / json_object requests)."""
        try:
            return json.loads(self.text)
        except json.JSONDecodeError as exc:
            raise LLMResponseError(
                f"Completion from {self.model} is not valid JSON ({exc}): {self.text[:200]!r}"
            ) from exc


class UsageStats(BaseModel):
    """Running totals for one client: what a run spent."""

    requests: int = 0
    cache_hits: int = 0
    failures: int = 0
    attempts: int = 0
    retries: int = 0
    fallbacks_used: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    by_model: dict[str, Usage] = Field(default_factory=dict)
