"""Reaching a Ray cluster: an existing one by address, or a small local one started for this process.

`connect(address)` is the one door every `--ray` path goes through. `address=None` joins the cluster named
by $RAY_ADDRESS, else starts a local Ray instance that listens on loopback only; any other value is passed
to `ray.init` (`"auto"`, `"host:6379"`, `"ray://host:10001"`). Ray is imported here, never at package import.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from loong_env.errors import LoongError

# Ray reads this once, at import: with it, a Ray instance started here binds and advertises 127.0.0.1
# instead of the machine's public interface (nothing of a local run is reachable from the network).
LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
# A Ray instance started here sends no usage statistics anywhere (Ray's default is to report them).
USAGE_STATS_ENV = "RAY_USAGE_STATS_ENABLED"
# Ray's default, when the driver was started by `uv run`, is to start every worker with the same `uv run`
# in a copy of the working directory. Without the project's .venv in that copy (Ray never ships it) and with
# `--no-sync` (our Makefile's way), uv makes an empty venv there, the workers die at `import ray` and every
# actor waits forever. Our workers run the driver's own interpreter instead; set it to 1 to get Ray's way.
UV_HOOK_ENV = "RAY_ENABLE_UV_RUN_RUNTIME_ENV"
# A raylet waits ~15 s for its helper agents; under heavy CPU load they can miss that, so a local start
# is tried this many times (the first try also warms the page cache for the next).
LOCAL_START_TRIES = 3


class ClusterError(LoongError):
    """Ray is missing, the cluster cannot be reached or started, or it keeps losing workers; says which."""


class RayOptions(BaseModel):
    """Where a Ray run goes and how wide it is (generation and validation alike)."""

    model_config = ConfigDict(extra="forbid")

    address: str | None = Field(
        default=None,
        description="Cluster to join ('auto', 'host:6379', 'ray://host:10001'); None: "
        "$RAY_ADDRESS, else a local instance on loopback.",
    )
    workers: int = Field(2, ge=1, description="Worker actors; each runs `concurrency` attempts at once.")
    worker_cpus: float = Field(1.0, gt=0, description="CPUs Ray reserves per worker (sandbox runs use them).")
    sandbox_workers: int = Field(1, ge=1, description="Warm sandbox processes per worker.")
    max_worker_failures: int | None = Field(
        default=None, ge=0, description="Worker deaths tolerated before the run stops (default 3 per worker)."
    )
    local_cpus: int | None = Field(default=None, description="CPUs of a local instance (default: all).")

    @property
    def failure_limit(self) -> int:
        return 3 * self.workers if self.max_worker_failures is None else self.max_worker_failures


class ClusterInfo(BaseModel):
    """The cluster a run uses: its address, live nodes and CPUs, and whether this process started it."""

    address: str
    nodes: int
    cpus: float
    started_here: bool


def require_ray(*, loopback: bool = False) -> Any:
    """The `ray` module, or a ClusterError that says how to install it.

    `loopback=True` (a local instance is about to start) keeps that instance on 127.0.0.1 (when ray has
    not been imported yet in this process) and turns Ray's usage statistics off for it.
    """
    os.environ.setdefault(UV_HOOK_ENV, "0")  # read at ray's import (see UV_HOOK_ENV)
    if loopback:
        os.environ.setdefault(USAGE_STATS_ENV, "0")  # read when the instance starts
        if "ray" not in sys.modules:
            os.environ.setdefault(LOOPBACK_ENV, "0")
    try:
        import ray
    except ImportError as exc:
        raise ClusterError(
            f"running on Ray needs the `ray` extra ({exc.name} is missing): pip install 'loong-env[ray]' "
            "or uv sync --extra ray"
        ) from exc
    return ray


def connect(
    address: str | None = None,
    *,
    num_cpus: int | None = None,
    object_store_mb: int = 200,
    namespace: str = "loong",
    log_to_driver: bool = False,
) -> ClusterInfo:
    """Join a running cluster, or start a local one; reuse the connection this process already has.

    `num_cpus` and `object_store_mb` size a local instance only (a joined cluster has its own sizes).
    """
    address = address or os.environ.get("RAY_ADDRESS") or None
    ray = require_ray(loopback=address is None)
    started_here = False
    if not ray.is_initialized():
        common = {"namespace": namespace, "log_to_driver": log_to_driver, "include_dashboard": False}
        if address is None:
            _start_local(ray, num_cpus=num_cpus, object_store_mb=object_store_mb, **common)
            started_here = True
        else:
            try:
                ray.init(address=address, **common)
            except Exception as exc:  # ConnectionError, RuntimeError, ray's own: all mean "not reachable"
                raise ClusterError(
                    f"cannot reach the Ray cluster at {address!r}: {type(exc).__name__}: {exc}"[:500]
                ) from exc
    return describe(started_here=started_here)


def _start_local(ray: Any, *, num_cpus: int | None, object_store_mb: int, **common: Any) -> None:
    last: Exception | None = None
    for _ in range(LOCAL_START_TRIES):
        try:
            ray.init(
                num_cpus=num_cpus,
                object_store_memory=object_store_mb * 2**20,
                _node_ip_address="127.0.0.1",
                **common,
            )
            return
        except Exception as exc:  # noqa: BLE001 - ray raises a bare Exception when a node misses its start-up
            last = exc
            ray.shutdown()
            time.sleep(1.0)
    raise ClusterError(
        f"could not start a local Ray instance in {LOCAL_START_TRIES} tries (last: {last}); the machine "
        "may be overloaded, or start one yourself with `ray start --head` and pass --ray auto"
    ) from last


def describe(*, started_here: bool = False) -> ClusterInfo:
    """Address, live node count and CPUs of the cluster this process is connected to."""
    import ray

    nodes = [n for n in ray.nodes() if n.get("Alive")]
    address = ray.get_runtime_context().gcs_address
    cpus = float(ray.cluster_resources().get("CPU", 0.0))
    return ClusterInfo(address=address, nodes=len(nodes), cpus=cpus, started_here=started_here)


def disconnect(info: ClusterInfo) -> None:
    """Shut down a local instance this process started; leave a joined cluster running."""
    import ray

    if info.started_here and ray.is_initialized():
        ray.shutdown()
