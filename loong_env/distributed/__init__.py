"""Scale-out on a Ray cluster: generation, seed validation and reward serving, each over Ray actors.

    from loong_env.distributed import RayOptions, run_generation_ray
    summary = await run_generation_ray("graph_discrete_math", out="out/gdm", n=1000,
                                       base_url="http://vllm:8000/v1", model="Qwen/Qwen2.5-7B-Instruct",
                                       ray=RayOptions(address="auto", workers=16))

Nothing here imports ray until it is used (install it with the `ray` extra). See docs/ray.md.
"""

from loong_env.distributed.cluster import ClusterError, ClusterInfo, RayOptions, connect, disconnect
from loong_env.distributed.generation import RayGenerationSummary, run_generation_ray
from loong_env.distributed.pool import NoveltyPool, PooledKeepRule
from loong_env.distributed.validation import validate_seeds_ray

__all__ = [
    "ClusterError",
    "ClusterInfo",
    "NoveltyPool",
    "PooledKeepRule",
    "RayGenerationSummary",
    "RayOptions",
    "connect",
    "disconnect",
    "run_generation_ray",
    "validate_seeds_ray",
]
