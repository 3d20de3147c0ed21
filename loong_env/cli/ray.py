"""The `--ray [ADDRESS]` option, the same on every command that can run on a Ray cluster."""

from __future__ import annotations

from typing import Any


def add_ray_option(parser: Any, doing: str) -> None:
    """Add `--ray [ADDRESS]` to an argparse parser or group; `doing` says what moves onto the cluster."""
    parser.add_argument(
        "--ray",
        nargs="?",
        const="",
        default=None,
        metavar="ADDRESS",
        help=f"{doing} (needs the `ray` extra): ADDRESS is 'auto', 'host:6379' or 'ray://host:10001'; "
        "without it, $RAY_ADDRESS, else a local Ray instance on loopback",
    )
