"""The options several commands share (the model endpoint), defined once so their help and defaults agree."""

from __future__ import annotations

import argparse
from typing import Any


def add_endpoint_options(parser: Any, *, role: str = "") -> None:
    """`--model`, `--base-url`, `--api-key` (or `--<role>-model`, ...): any OpenAI-compatible endpoint.

    `parser` is an ArgumentParser or an argument group. With a `role` (e.g. "solver") the options are
    prefixed and default to None, meaning "the same as the unprefixed ones".
    """
    prefix = f"--{role}-" if role else "--"
    same = " (default: the same as --{})" if role else ""
    what = f"the {role}'s " if role else ""
    parser.add_argument(
        f"{prefix}model",
        default=None,
        help=f"{what}model id (remote) or local model name / GGUF path" + same.format("model"),
    )
    parser.add_argument(
        f"{prefix}base-url",
        default=None,
        help=f"{what}OpenAI-compatible server"
        + (same.format("base-url") if role else "; default: the embedded local model"),
    )
    parser.add_argument(
        f"{prefix}api-key",
        default=None,
        help=f"{what}API key"
        + (same.format("api-key") if role else " (default: $LOONG_API_KEY / $OPENAI_API_KEY)"),
    )


def endpoint(args: argparse.Namespace, role: str = "") -> dict[str, Any]:
    """The endpoint options of `role` as LLMClient keyword arguments, falling back to the plain ones."""
    key = f"{role}_" if role else ""
    return {
        name: getattr(args, f"{key}{name}", None) or getattr(args, name, None)
        for name in ("base_url", "model", "api_key")
    }
