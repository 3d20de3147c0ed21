"""`loong export OUT_DIR DEST`: a generation or CoT output folder as a dataset with its Hugging Face card."""

from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console


def register(subparsers: Any) -> None:
    """Add the `export` command."""
    p = subparsers.add_parser(
        "export",
        help="export a generation or CoT output folder as a dataset with a Hub dataset card",
        description="Write OUT_DIR's kept items to DEST (a generation run as seed domain folders that "
        "`load_seeds` reads; a CoT run as a `datasets` folder) and DEST/README.md: the dataset version (a "
        "content hash of the kept items), models, generator and keep-rule config, seed ids, the seed "
        "library's version and the measured keep precision when given.",
    )
    p.add_argument("out_dir", metavar="OUT_DIR", help="a `loong generate` or `loong cot` output folder")
    p.add_argument("dest", metavar="DEST", help="the export folder to write")
    p.add_argument("--keep-precision", type=float, default=None, help="measured keep precision (0..1)")
    p.add_argument("--title", default=None, help="the card's title")
    p.add_argument("--seeds-root", default=None, help="seed library the run grew from (default: configured)")
    p.add_argument("--overwrite", action="store_true", help="replace DEST if it is not empty")
    p.add_argument("--push", default=None, metavar="REPO_ID", help="then upload DEST as this Hub dataset")
    p.add_argument("--public", action="store_true", help="with --push: a public repo (default: private)")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    """Export (and push); print the card's essentials; exit 2 on an export error."""
    from loong_env.publish import ExportError, export, push_to_hub

    console = Console()
    try:
        card = export(
            args.out_dir,
            args.dest,
            seeds_root=args.seeds_root,
            keep_precision=args.keep_precision,
            title=args.title,
            overwrite=args.overwrite,
        )
        console.print(
            f"exported {card.items} {card.kind} items to {args.dest}, dataset version {card.dataset_version}",
            highlight=False,
        )
        if args.push:
            url = push_to_hub(args.dest, args.push, private=not args.public)
            console.print(f"pushed to {args.push}: {url}", highlight=False)
    except ExportError as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False)
        return 2
    return 0
