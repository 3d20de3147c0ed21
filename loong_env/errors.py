"""Exceptions loong_env raises on purpose, under one base class so callers can catch them all."""

from __future__ import annotations


class LoongError(Exception):
    """Base of every error loong_env raises on purpose; catch this to handle them all."""


class EnvError(LoongError):
    """The environment was used out of order or with an action it cannot place."""


class NotResetError(EnvError):
    """step() was called before reset(): there is no batch to answer yet."""


class UnknownIndexError(EnvError, IndexError):
    """An action names an index that is not in the current batch."""


class AlreadySteppedError(EnvError):
    """An action answers an index that was already stepped in this batch."""


class PluginError(LoongError):
    """A verifier plug-in in the top-level verifiers/ folder is missing or malformed."""
