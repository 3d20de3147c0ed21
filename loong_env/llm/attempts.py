"""One HTTP try of an LLM request: the record both a completion's stats and an error's message are made of."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class Attempt(BaseModel):
    """One HTTP try: where it went, how it ended, and how long we waited before the next one."""

    endpoint: str
    model: str
    outcome: Literal[
        "ok", "rate_limited", "server_error", "timeout", "connection", "rejected", "bad_response"
    ]
    status_code: int | None = None
    error: str = ""
    retry_after_s: float | None = None
    started_at: float = Field(description="time.time() when the request was sent.")
    duration_s: float = 0.0
    wait_s: float = Field(default=0.0, description="Sleep before the next attempt (0 if none).")
