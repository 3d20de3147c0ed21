"""Errors of the trainer integrations and the reward server, each with the HTTP status it is answered with."""

from __future__ import annotations

from loong_env.errors import ConfigError, LoongError


class OverloadedError(LoongError):
    """The scorer already holds as many items as it admits; retry after a moment (HTTP 429)."""


class DeadlineError(LoongError, TimeoutError):
    """A request was not scored within its deadline (HTTP 503); its items were cancelled."""


class BatchTooLargeError(ConfigError):
    """A request holds more items than the scorer takes in one batch (HTTP 413)."""


class RequirementsNotAllowedError(ConfigError, PermissionError):
    """An item names a requirement set the server's operator did not prepare or allow (HTTP 403)."""


class UnauthorizedError(LoongError, PermissionError):
    """A scoring request came without the server's API key, or with a wrong one (HTTP 401)."""


class RewardServerError(LoongError):
    """A reward server refused a request or could not be reached; the message carries its `detail`."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status
