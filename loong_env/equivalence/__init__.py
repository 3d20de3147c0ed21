"""Are two answers the same? Numbers, LaTeX, sympy, literals, intervals and units, each check time-bounded.

Public API: `compare(candidate, reference, *, tolerance=None) -> Comparison`.
"""

from __future__ import annotations

from loong_env.equivalence.core import Comparison, compare, warm_up

__all__ = ["Comparison", "compare", "warm_up"]
