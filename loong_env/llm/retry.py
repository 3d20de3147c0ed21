"""Which failures are worth another try, and how long the server asked us to wait."""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Mapping

import openai

from loong_env.errors import LoongError

RETRYABLE_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 520, 522, 524, 529})


def _retry_after_seconds(headers: Mapping[str, str] | None) -> float | None:
    """Retry-After as seconds: `retry-after-ms`, delta-seconds, or an HTTP date."""
    if not headers:
        return None
    if (ms := headers.get("retry-after-ms")) is not None:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class BadResponse(LoongError):
    """The server answered 200 with something that is not a chat completion."""


def classify(exc: BaseException) -> tuple[str, int | None, float | None, bool]:
    """(outcome, status, retry_after_s, retryable) for an exception raised by the openai client."""
    if isinstance(exc, openai.APITimeoutError):
        return "timeout", None, None, True
    if isinstance(exc, openai.APIConnectionError):
        return "connection", None, None, True
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        retry_after = _retry_after_seconds(exc.response.headers if exc.response is not None else None)
        if status == 429:
            return "rate_limited", status, retry_after, True
        if status >= 500 or status in RETRYABLE_STATUS:
            return "server_error", status, retry_after, True
        return "rejected", status, retry_after, False
    if isinstance(exc, BadResponse | openai.APIResponseValidationError | json.JSONDecodeError):
        return "bad_response", None, None, True
    if isinstance(exc, TimeoutError):
        return "timeout", None, None, True
    raise exc


def short(exc: BaseException) -> str:
    text = str(exc).strip().replace("\n", " ")
    return f"{type(exc).__name__}: {text[:300]}" if text else type(exc).__name__
