"""Exceptions loong_env raises on purpose, under one base class so callers can catch them all.

Every error class in the package derives from `LoongError` (a test walks the package to hold this). Where
callers reasonably catch a built-in kind (`KeyError` for an unknown name, `ValueError` for a bad value,
`TimeoutError`), the error derives from that built-in too, so both `except LoongError` and the built-in
work. Errors of one part live next to it (`SeedFormatError` in seeds, `LLMError` in llm, ...).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class LoongError(Exception):
    """Base of every error loong_env raises on purpose; catch this to handle them all."""


class ConfigError(LoongError, ValueError):
    """An argument or setting has a value that cannot work; the message says what was expected."""


class UnknownNameError(LoongError, KeyError):
    """A name (domain, method, plug-in, model) is not known; the message lists close matches."""

    def __init__(self, kind: str, name: str, known: Iterable[str]) -> None:
        self.kind, self.name, self.known = kind, name, sorted(known)
        close = difflib.get_close_matches(name, self.known, n=3)
        hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
        listed = ", ".join(self.known[:20]) + (", ..." if len(self.known) > 20 else "")
        super().__init__(f"unknown {kind} {name!r}{hint} (known: {listed or 'none'})")

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0])


class NotFoundError(LoongError, FileNotFoundError):
    """A file or folder the caller named does not exist or is not what was expected there."""


class EnvError(LoongError):
    """The environment was used out of order or with an action it cannot place."""


class NotResetError(EnvError):
    """step() was called before reset(): there is no batch to answer yet."""


class UnknownIndexError(EnvError, IndexError):
    """An action names an index that is not in the current batch."""


class AlreadySteppedError(EnvError):
    """An action answers an index that was already stepped in this batch."""


class InvalidActionError(EnvError, TypeError):
    """An action is not of a form step() accepts (an Action, a list of Actions, or {index: response})."""


class PluginError(LoongError):
    """A verifier plug-in (in a domain folder or a plug-in folder) is missing or malformed."""


class SyncBridgeError(LoongError, RuntimeError):
    """A `*_sync` method was called where it would block the very loop it needs (inside bridge code)."""
