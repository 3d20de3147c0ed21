"""The `--ray [ADDRESS]` option, the same on every command that can run on a Ray cluster, and its screens."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from loong_env.integrations.reward_server import ServerConfig


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


def serve_rewards_on_ray(config: ServerConfig, args: Any) -> int:
    """`loong serve-reward --ray`: deploy, say where to point trainers, serve until Ctrl-C, then remove it."""
    import time

    from loong_env.distributed.serve import ServeOptions, serve_rewards, stop_rewards

    low_high = None
    if args.autoscale:
        try:
            low, high = (int(part) for part in args.autoscale.split(":"))
        except ValueError:
            print(
                f"loong serve-reward: --autoscale wants MIN:MAX (two whole numbers), got {args.autoscale!r}"
            )
            return 2
        low_high = (low, high)
    options = ServeOptions(
        replicas=args.replicas,
        autoscale=low_high,
        replica_cpus=args.replica_cpus,
        host=config.host,
        port=config.port,
    )
    url = serve_rewards(config, options, address=args.ray or None)
    scale = f"autoscaling {low_high[0]}..{low_high[1]}" if low_high else f"{options.replicas} replica(s)"
    print(f"Ray Serve, {scale}")
    print(f"OpenRLHF:  --reward.remote_url {url}/get_reward   (older releases: --remote_rm_url)")
    print(f"our API:   POST {url}/v1/score   (docs: {url}/docs)", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        stop_rewards(options.name)
    return 0
