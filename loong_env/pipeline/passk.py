"""pass@k: the chance that at least one of k samples is correct, estimated without bias from n >= k samples.

With c correct among n, pass@k = 1 - C(n-c, k) / C(n, k) (Chen et al., 2021), computed as a product so
it stays exact-ish for large n instead of dividing huge binomials.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from statistics import fmean

from loong_env.errors import ConfigError


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k for one problem with c of n samples correct (1 <= k <= n)."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ConfigError(f"pass@k needs 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    miss = 1.0
    for i in range(n - c + 1, n + 1):  # C(n-c, k) / C(n, k) = prod_{i=n-c+1}^{n} (1 - k / i)
        miss *= 1.0 - k / i
    return 1.0 - miss


def pass_at_ks(n: int, c: int) -> dict[int, float]:
    """pass@k for every k from 1 to n."""
    return {k: pass_at_k(n, c, k) for k in range(1, n + 1)}


def mean_pass_at(per_problem: Iterable[Mapping[int, float]]) -> dict[int, float]:
    """Overall pass@k: the mean over problems, for every k that all of them report."""
    tables = [dict(t) for t in per_problem if t]
    if not tables:
        return {}
    ks = sorted(set.intersection(*(set(t) for t in tables)))
    return {k: fmean(t[k] for t in tables) for k in ks}
