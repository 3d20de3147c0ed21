"""`loong serve-reward`: run the HTTP reward server for RL trainers (OpenRLHF's protocol and our JSON API).

$ export LOONG_REWARD_API_KEY=...            # needed to bind anything but loopback
$ loong serve-reward --host 0.0.0.0 --port 5000
OpenRLHF:  --reward.remote_url http://loong:$LOONG_REWARD_API_KEY@HOST:5000/get_reward
our API:   POST http://HOST:5000/v1/score  with  Authorization: Bearer $LOONG_REWARD_API_KEY
"""

from __future__ import annotations

import argparse
import shlex
import sys
from typing import Any

from loong_env.cli.ray import add_ray_option
from loong_env.errors import ConfigError
from loong_env.integrations.reward_auth import API_KEY_ENV, resolve_api_key
from loong_env.integrations.reward_scoring import ScoringConfig

_DEFAULTS = ScoringConfig()


def register(subparsers: Any) -> None:
    """Add the `serve-reward` command to the `loong` CLI."""
    parser = subparsers.add_parser(
        "serve-reward",
        help="serve rewards over HTTP (OpenRLHF /get_reward, and /v1/score)",
        description=(
            "Score LLM answers with loong_env's verifiers over HTTP. Endpoints: POST /get_reward (OpenRLHF's "
            "remote reward protocol: query, prompts, labels -> rewards), POST /v1/score (typed JSON API, "
            "docs at /docs), GET /health. Overload answers 429/503 instead of hanging. "
            "Needs the `server` extra: pip install 'loong-env[server]'."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="interface to bind (0.0.0.0 for every interface: needs an API key, or --insecure)",
    )
    parser.add_argument("--port", type=int, default=8000, help="TCP port")
    parser.add_argument(
        "--workers", type=int, default=1, help="uvicorn worker processes (each scores on its own)"
    )
    parser.add_argument(
        "--max-batch", type=int, default=_DEFAULTS.max_batch, help="items per request (more: 413)"
    )
    parser.add_argument(
        "--max-pending",
        type=int,
        default=_DEFAULTS.max_pending_items,
        help="items admitted at once per worker (more: 429)",
    )
    parser.add_argument(
        "--concurrency", type=int, default=_DEFAULTS.max_concurrency, help="verifications running at once"
    )
    parser.add_argument(
        "--timeout", type=float, default=_DEFAULTS.request_timeout_s, help="seconds per request (then 503)"
    )
    parser.add_argument(
        "--max-body-mb", type=float, default=32.0, help="request body limit in MiB (more: 413)"
    )
    parser.add_argument(
        "--format-weight", type=float, default=0.0, help="reward bonus for one \\boxed{} answer (or code)"
    )
    parser.add_argument(
        "--no-route",
        action="store_true",
        help="judge every answer with the boxed verifier (no code, no plug-ins)",
    )
    guard = parser.add_argument_group("who may call, and what it may install")
    guard.add_argument(
        "--api-key",
        default=None,
        help=f"callers must send 'Authorization: Bearer KEY' (default: ${API_KEY_ENV}; prefer the "
        "variable, a flag shows in `ps`)",
    )
    guard.add_argument(
        "--insecure",
        action="store_true",
        help="serve a non-loopback interface without an API key (anyone who reaches it may call)",
    )
    guard.add_argument(
        "--allow-requirements",
        action="append",
        default=[],
        metavar="'REQ REQ ...'",
        help="a requirement set items may name besides their domain's, e.g. 'sympy==1.14.0 numpy==2.2.6' "
        "(repeat for more sets; installed on first use)",
    )
    ray = parser.add_argument_group("Ray Serve (needs the `ray` extra; see docs/ray.md)")
    add_ray_option(ray, "serve from Ray Serve replicas instead of uvicorn workers")
    ray.add_argument("--replicas", type=int, default=1, help="fixed number of replicas")
    ray.add_argument("--autoscale", metavar="MIN:MAX", help="scale replicas with the load instead")
    ray.add_argument("--replica-cpus", type=float, default=1.0, help="CPUs Ray reserves per replica")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Validate the settings, print where to point trainers, then serve until interrupted."""
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401

        from loong_env.integrations.reward_server import ServerConfig, serve
    except ImportError as exc:
        print(
            f"loong serve-reward needs the `server` extra ({exc.name} is missing): "
            "pip install 'loong-env[server]' or uv sync --extra server",
            file=sys.stderr,
        )
        return 1
    from pydantic import ValidationError

    try:
        api_key = resolve_api_key(args.api_key)
        config = ServerConfig(
            host=args.host,
            port=args.port,
            workers=args.workers,
            max_body_bytes=int(args.max_body_mb * 2**20),
            api_key=api_key,
            insecure=args.insecure,
            scoring=ScoringConfig(
                max_batch=args.max_batch,
                max_pending_items=args.max_pending,
                max_concurrency=args.concurrency,
                request_timeout_s=args.timeout,
                format_weight=args.format_weight,
                route=not args.no_route,
                allowed_requirements=[shlex.split(s) for s in args.allow_requirements],
            ),
        )
    except ValidationError as exc:
        problems = (f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors())
        print(f"loong serve-reward: {'; '.join(problems)}", file=sys.stderr)
        return 2
    except ConfigError as exc:
        print(f"loong serve-reward: {exc}", file=sys.stderr)
        return 2
    if args.ray is not None:
        from loong_env.cli.ray import serve_rewards_on_ray

        return serve_rewards_on_ray(config, args)
    host = "HOST" if args.host in ("0.0.0.0", "::") else args.host
    base, authed = f"http://{host}:{args.port}", f"http://{host}:{args.port}"
    if api_key is not None:  # never print the key itself
        authed = f"http://loong:${API_KEY_ENV}@{host}:{args.port}"
    print(f"OpenRLHF:  --reward.remote_url {authed}/get_reward   (older releases: --remote_rm_url)")
    auth = f"  with  Authorization: Bearer ${API_KEY_ENV}" if api_key is not None else ""
    print(f"our API:   POST {base}/v1/score{auth}   (docs: {base}/docs)")
    print(f"health:    GET  {base}/health", flush=True)
    serve(config)
    return 0
