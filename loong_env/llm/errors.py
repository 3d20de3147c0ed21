"""How an LLM request fails: each error carries every attempt made, so a log line says what was tried."""

from __future__ import annotations

from collections.abc import Sequence

from loong_env.errors import LoongError
from loong_env.llm.attempts import Attempt


class LLMError(LoongError, RuntimeError):
    """The request could not be completed; `.attempts` says everything that was tried."""

    def __init__(self, message: str, attempts: Sequence[Attempt] = ()) -> None:
        self.attempts = list(attempts)
        lines = [message] + [
            f"  attempt {i}: {a.model}@{a.endpoint} -> {a.outcome}"
            + (f" HTTP {a.status_code}" if a.status_code else "")
            + (f": {a.error}" if a.error else "")
            for i, a in enumerate(self.attempts, 1)
        ]
        super().__init__("\n".join(lines))


class LLMConfigError(LLMError):
    """The configuration is unusable (bad file, bad value, no model for a remote endpoint)."""


class LLMUnavailableError(LLMError):
    """Every endpoint kept failing with transient errors (429, 5xx, timeouts, connection) until we gave up."""


class LLMRejectedError(LLMError):
    """The last endpoint refused the request itself (4xx other than 408/409/429, or an unusable answer)."""


class LLMResponseError(LoongError, ValueError):
    """An answer arrived but is not what was asked for (not JSON, or does not fit the requested schema)."""
