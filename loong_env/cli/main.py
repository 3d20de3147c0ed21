"""`loong ...`: the command line. Each command lives in its own module and registers itself here."""

from __future__ import annotations

import argparse
import importlib
import sys

# name -> module exposing `register(subparsers)`; each module adds its parser and sets `func=`.
COMMANDS = {
    "seeds": "loong_env.cli.seeds",
    "generate": "loong_env.cli.generate",
    "cot": "loong_env.cli.cot",
    "serve": "loong_env.cli.serve",
    "serve-reward": "loong_env.cli.serve_reward",
    "report": "loong_env.cli.report",
    "export": "loong_env.cli.export",
    "calibrate": "loong_env.cli.calibrate",
    "demo": "loong_env.cli.demo",
    "eval": "loong_env.cli.eval",
}


def build_parser() -> argparse.ArgumentParser:
    """One parser for all commands, so `loong --help` lists everything."""
    parser = argparse.ArgumentParser(
        prog="loong",
        description="Grow verifiable reasoning problems from hand-checked seeds; serve them as an RL env.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMANDS.values():
        importlib.import_module(module_name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `loong` script and of `python -m loong_env`."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
