"""Errors of exporting and publishing datasets."""

from __future__ import annotations

from loong_env.errors import LoongError


class ExportError(LoongError):
    """An output folder could not be exported or pushed; the message says which folder and why."""
