"""One run's skeleton: its durable store and live metrics close together, with one status, whatever happens.

Every long run (generation, on this process or on Ray; the CoT pipeline) has the same shape: open the
output folder and the metrics file, do the work, and on the way out (done, stopped, Ctrl-C, an error)
close both with the same status. The frame owns that shape so each run writes only its work:

    async with RunFrame(store, metrics, store_info=..., end_info=...) as frame:
        ...                        # the work
        frame.status = "done"      # else the run ended "interrupted"
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, Self

from loong_env.runs.metrics import MetricsWriter


class Store(Protocol):
    """A durable output folder: closing it records how the run ended."""

    def close(self, status: str, /, **info: Any) -> None: ...


class RunFrame:
    """Closes a run's store and its metrics with one status, the metrics even when the store fails."""

    def __init__(
        self,
        store: Store,
        metrics: MetricsWriter,
        *,
        store_info: Callable[[], dict[str, Any]] = dict,
        end_info: Callable[[], dict[str, Any]] = dict,
    ) -> None:
        self.store = store
        self.metrics = metrics
        self.status = "interrupted"  # what a run that never says otherwise ended as
        self._store_info = store_info
        self._end_info = end_info

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            self.store.close(self.status, **self._store_info())
        finally:
            self.metrics.close(self.status, **self._end_info())
