"""A small real Ray cluster on this machine for tests: logical nodes on loopback, torn down after.

Import this module before anything imports ray: it keeps every Ray address on 127.0.0.1.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from loong_env.distributed.serve import PROXY_READY_ENV, PROXY_READY_S

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # nothing leaves the machine
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # read at ray's import: stay on loopback
# read at ray's import: workers run this interpreter, not `uv run --no-sync` in a venv-less copy of the
# checkout (which hangs every actor when the tests run under `make test`; see loong_env.distributed.cluster)
os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
# read by the Serve controller the cluster starts: a loaded machine's proxy gets 3 x 20 s to be ready, not
# 3 x 5 s (imports no ray)
os.environ.setdefault(PROXY_READY_ENV, PROXY_READY_S)
# read by every Ray process: Ray starts its workers at nice 15, so beside the suite's other workers (model
# servers, sandboxes at nice 0) a worker starting the Serve controller or proxy got almost no CPU and missed
# Serve's timeouts; the test cluster's workers compete at the same niceness as everything else
os.environ.setdefault("RAY_worker_niceness", "0")

NODE = {"num_cpus": 1, "object_store_memory": 100 * 2**20, "node_ip_address": "127.0.0.1"}


@contextmanager
def local_cluster(nodes: int = 2, *, cpus_per_node: int = 1, tries: int = 3) -> Iterator[Any]:
    """`nodes` logical Ray nodes (ray.cluster_utils.Cluster) with this process connected as the driver.

    A raylet gives its helper agents ~15 s to start; on a loaded machine they can miss it, so a failed
    start is retried (the first try warms the page cache).
    """
    import ray
    from ray.cluster_utils import Cluster

    node = {**NODE, "num_cpus": cpus_per_node}
    cluster = None
    for attempt in range(tries):
        try:
            cluster = Cluster(initialize_head=True, head_node_args={**node, "include_dashboard": False})
            for _ in range(nodes - 1):
                cluster.add_node(**node)
            break
        except Exception:
            if cluster is not None:
                cluster.shutdown()
            cluster = None
            if attempt == tries - 1:
                raise
            time.sleep(1.0)
    assert cluster is not None
    ray.init(address=cluster.address, namespace="loong-test", log_to_driver=False)
    try:
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()
