"""What happens when, in simulated time: a heap of actions the fleet's driver runs in order."""

from __future__ import annotations

import heapq
import itertools
import logging
from typing import Any, Callable

from simulators.scale.simclock import SimClock

LOGGER = logging.getLogger(__name__)


class Scheduler:
    """``at(t, fn, *args)`` runs ``fn(*args)`` once simulated time reaches ``t``; ``run_due(t)`` runs every action
    up to ``t`` in time order, the clock set to each one's time as it runs. An action that raises is logged and
    counted: one bad step must not stop a fleet run."""

    def __init__(self, clock: SimClock) -> None:
        self.clock = clock
        self._heap: list[tuple[float, int, Callable[..., Any], tuple]] = []
        self._n = itertools.count()
        self.errors = 0

    def at(self, t: float, fn: Callable[..., Any], *args: Any) -> None:
        heapq.heappush(self._heap, (max(t, self.clock.t), next(self._n), fn, args))

    def after(self, delay_s: float, fn: Callable[..., Any], *args: Any) -> None:
        self.at(self.clock.t + delay_s, fn, *args)

    def next_time(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    def run_due(self, until: float, limit: int = 10_000) -> int:
        """Run the actions due by ``until`` (at most ``limit`` of them); returns how many ran."""
        ran = 0
        while self._heap and self._heap[0][0] <= until and ran < limit:
            t, _, fn, args = heapq.heappop(self._heap)
            self.clock.advance_to(t)
            ran += 1
            try:
                fn(*args)
            except Exception:
                self.errors += 1
                LOGGER.exception("fleet: the simulated action %s failed; the run carries on",
                                 getattr(fn, "__qualname__", fn))
        return ran

    def __len__(self) -> int:
        return len(self._heap)
