"""`loong serve`: run the local model server in the foreground so notebooks and other tools can share it.

$ loong serve --model qwen2.5-coder-0.5b --port 8080
base_url: http://127.0.0.1:8080/v1
model:    qwen2.5-coder-0.5b
export LOONG_BASE_URL=http://127.0.0.1:8080/v1 LOONG_MODEL=qwen2.5-coder-0.5b
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import Any

from loong_env import local


def register(subparsers: Any) -> None:
    """Add the `serve` command to the `loong` CLI."""
    parser = subparsers.add_parser(
        "serve",
        help="serve the local model (OpenAI-compatible) until interrupted",
        description="Serve a local GGUF model with llama.cpp on 127.0.0.1 (OpenAI-compatible API).",
    )
    choice = parser.add_mutually_exclusive_group()
    choice.add_argument(
        "--model",
        default=local.DEFAULT_MODEL,
        help=f"named model ({', '.join(sorted(local.MODELS))}); default {local.DEFAULT_MODEL}",
    )
    choice.add_argument("--model-path", help="any local .gguf file instead of a named model")
    parser.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0 = any free port)")
    parser.add_argument("--n-parallel", type=int, default=4, help="parallel request slots (default 4)")
    parser.add_argument(
        "--n-ctx", type=int, default=None, help="total context, split across slots (2048/slot)"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="CPU threads (default $LOONG_LOCAL_THREADS or half the CPUs)",
    )
    parser.add_argument("--alias", default=None, help="model id the API reports (default: the model name)")
    parser.add_argument("--verbose", action="store_true", help="show llama.cpp's own log")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Start the server, print where it listens, block until SIGINT/SIGTERM, then stop it cleanly."""
    server = local.LocalServer(
        args.model_path or args.model,
        n_parallel=args.n_parallel,
        n_ctx=args.n_ctx,
        threads=args.threads,
        port=args.port,
        alias=args.alias,
        verbose=args.verbose,
    )
    try:
        server.start_sync()
    except local.LocalModelError as exc:
        print(f"loong serve: {exc}", file=sys.stderr)
        return 1
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        print(f"base_url: {server.base_url}")
        print(f"model:    {server.model}  ({server.model_path})")
        print(
            f"slots:    {server.n_parallel} x {server.n_ctx // server.n_parallel} tokens, "
            f"{server.threads} threads"
        )
        print(f"export LOONG_BASE_URL={server.base_url} LOONG_MODEL={server.model}", flush=True)
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        server.stop_sync()
        print("stopped", flush=True)
    return 0
