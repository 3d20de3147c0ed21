"""Scale-out on a Ray cluster: generation, seed validation and reward serving, each over Ray actors.

    from loong_env.distributed import RayOptions, run_generation_ray
    summary = await run_generation_ray("graph_discrete_math", out="out/gdm", n=1000,
                                       base_url="http://vllm:8000/v1", model="Qwen/Qwen2.5-7B-Instruct",
                                       ray=RayOptions(address="auto", workers=16))

Names load on first use (so `loong --help` stays fast), and nothing imports ray until a cluster is
needed (install it with the `ray` extra). See docs/ray.md.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "ClusterError": "cluster",
    "ClusterInfo": "cluster",
    "RayOptions": "cluster",
    "connect": "cluster",
    "disconnect": "cluster",
    "RayExecutor": "generation",
    "RayGenerationSummary": "generation",
    "run_generation_ray": "generation",
    "NoveltyPool": "pool",
    "PooledKeepRule": "pool",
    "validate_seeds_ray": "validation",
}

__all__ = [
    "ClusterError",
    "ClusterInfo",
    "NoveltyPool",
    "PooledKeepRule",
    "RayExecutor",
    "RayGenerationSummary",
    "RayOptions",
    "connect",
    "disconnect",
    "run_generation_ray",
    "validate_seeds_ray",
]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'loong_env.distributed' has no attribute {name!r}")
    return getattr(importlib.import_module(f"loong_env.distributed.{_WHERE[name]}"), name)
