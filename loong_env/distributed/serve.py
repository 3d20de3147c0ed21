"""The reward server as a Ray Serve application: the same FastAPI app and API, on replicas that autoscale.

Each replica builds `loong_env.integrations.reward_server.create_app(config)` (its own RewardScorer and
verifiers), so `POST /get_reward`, `POST /v1/score` and `GET /health` answer exactly as `loong
serve-reward` does; Ray Serve's proxy spreads requests over the replicas and adds or removes replicas
with the load when `autoscale` is set.

    url = serve_rewards(ServerConfig(), ServeOptions(autoscale=(1, 8)), address="auto")
"""

from __future__ import annotations

import os
import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from loong_env.errors import ConfigError
from loong_env.integrations.reward_server import ServerConfig

# Serve's controller gives a starting proxy 3 readiness checks of this many seconds, then kills it and starts
# another. Ray's 5 s is too short for a proxy importing its web stack on a loaded machine; the controller
# reads this when it starts, so it holds for an instance started from this process (and its tests).
PROXY_READY_ENV = "RAY_SERVE_PROXY_READY_CHECK_TIMEOUT_S"
PROXY_READY_S = "20"
# How long `serve_rewards` waits, once the replicas run, for a proxy to be healthy.
PROXY_WAIT_S = 180.0


class ServeOptions(BaseModel):
    """How many replicas serve rewards, how they scale, and where the proxies listen."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field("loong-reward", description="Serve application (and deployment) name.")
    replicas: int = Field(1, ge=1, description="Fixed replica count (ignored when autoscale is set).")
    autoscale: tuple[int, int] | None = Field(
        default=None, description="(min, max) replicas, scaled by load."
    )
    target_ongoing_requests: float = Field(4.0, gt=0, description="Per replica: above this, add replicas.")
    max_ongoing_requests: int = Field(32, ge=1, description="Per replica: more wait in the proxy's queue.")
    replica_cpus: float = Field(1.0, ge=0, description="CPUs Ray reserves per replica (verification is CPU).")
    host: str = Field("127.0.0.1", description="Proxy interface (0.0.0.0 for every interface).")
    port: int = Field(8000, ge=0, le=65535)
    route_prefix: str = "/"
    proxy_location: Literal["EveryNode", "HeadOnly"] = "EveryNode"

    @model_validator(mode="after")
    def _check_autoscale(self) -> ServeOptions:
        if self.autoscale is not None and not 0 <= self.autoscale[0] <= self.autoscale[1] >= 1:
            raise ConfigError(
                f"autoscale must be (min, max) with 0 <= min <= max and max >= 1, got {self.autoscale}"
            )
        return self

    def deployment_options(self) -> dict[str, Any]:
        """The keyword arguments of `serve.deployment` these options mean."""
        options: dict[str, Any] = {
            "name": self.name,
            "max_ongoing_requests": self.max_ongoing_requests,
            "ray_actor_options": {"num_cpus": self.replica_cpus},
        }
        if self.autoscale is None:
            options["num_replicas"] = self.replicas
        else:
            low, high = self.autoscale
            options["autoscaling_config"] = {
                "min_replicas": low,
                "max_replicas": high,
                "initial_replicas": max(low, 1),
                "target_ongoing_requests": self.target_ongoing_requests,
            }
        return options


def reward_application(config: ServerConfig | None = None, options: ServeOptions | None = None) -> Any:
    """The Serve application (bound deployment) of the reward server; deploy it with `serve.run`."""
    from loong_env.distributed.cluster import require_ray

    serve = require_ray().serve
    opts = options or ServeOptions()

    @serve.deployment(**opts.deployment_options())
    @serve.ingress()
    class RewardReplica:
        """One replica: the reward server's own ASGI app, built when the replica starts."""

        def __init__(self, config_json: str) -> None:
            self.config = ServerConfig.model_validate_json(config_json)

        def __serve_build_asgi_app__(self) -> Any:
            from loong_env.integrations.reward_server import create_app

            return create_app(self.config)

    return RewardReplica.bind((config or ServerConfig()).model_dump_json())


def serve_rewards(
    config: ServerConfig | None = None, options: ServeOptions | None = None, *, address: str | None = None
) -> str:
    """Deploy the reward server on the cluster (started or joined, see `connect`); returns its base URL.

    Returns once the replicas are up; the application keeps running after this process lets go of the
    cluster only if the cluster outlives it (a joined one does; a local one started here does not).
    """
    from loong_env.distributed.cluster import connect
    from loong_env.integrations.reward_auth import check_bind, warn_if_open

    opts = options or ServeOptions()
    cfg = config or ServerConfig()
    check_bind(opts.host, api_key=cfg.key(), insecure=cfg.insecure)  # the proxy is what listens
    warn_if_open(opts.host, opts.port, api_key=cfg.key())
    os.environ.setdefault(PROXY_READY_ENV, PROXY_READY_S)
    connect(address)
    from ray import serve

    _start_serve(serve, opts)
    serve.run(reward_application(cfg, opts), name=opts.name, route_prefix=opts.route_prefix)
    host = "127.0.0.1" if opts.host in ("0.0.0.0", "::") else opts.host
    _wait_for_proxy(serve)
    return f"http://{host}:{opts.port}{opts.route_prefix.rstrip('/')}"


def _start_serve(serve: Any, opts: ServeOptions) -> None:
    """Start Serve, or join it; a first proxy that dies or is late starting is the controller's to replace.

    `serve.start` waits on the first proxy actor only: when the controller kills a slow one and starts
    another, it raises although Serve is fine. Joining again returns at once; `_wait_for_proxy` then waits
    for the proxy that replaced it.
    """
    import ray

    http = {"host": opts.host, "port": opts.port}
    try:
        serve.start(proxy_location=opts.proxy_location, http_options=http)
    except (ray.exceptions.ActorDiedError, TimeoutError):
        serve.start(proxy_location=opts.proxy_location, http_options=http)


def _wait_for_proxy(serve: Any, timeout_s: float = PROXY_WAIT_S) -> None:
    """Return once a proxy is healthy and none is still starting, so the URL works on its first request.

    Asks Serve's controller rather than the URL, which a driver outside the cluster may not reach.
    """
    from loong_env.distributed.cluster import ClusterError

    deadline = time.monotonic() + timeout_s
    states: list[str] = []
    while time.monotonic() < deadline:
        states = [str(getattr(state, "value", state)) for state in serve.status().proxies.values()]
        if "HEALTHY" in states and "STARTING" not in states:
            return
        time.sleep(0.5)
    raise ClusterError(
        f"no Ray Serve proxy became healthy within {timeout_s:.0f} s (proxies: {states or 'none'}); "
        "see `serve status` and the proxies' logs in the Ray session's logs/serve/ folder"
    )


def stop_rewards(name: str = "loong-reward") -> None:
    """Remove the reward application (its replicas stop; Serve's proxy and controller stay)."""
    from ray import serve

    serve.delete(name)
