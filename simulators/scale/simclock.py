"""Simulated time for a whole fleet in one process: a kiosk.clock source that moves only when the driver says.

``t`` counts simulated seconds since ``start`` (an aware datetime in the library's time zone). The driver moves
it forward with ``advance_to``; it never goes back. Every bookcase of the process reads it through kiosk.clock
(``use(clock)``): session times, outbox ``ts``, due dates, timeouts, the relay's and the sync's intervals.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

LIBRARY_TZ = ZoneInfo("Asia/Shanghai")
MONOTONIC_BASE_S = 1_000_000.0      # monotonic() starts here: far from 0, like a machine that has been up a while


class SimClock:
    """``now()``/``monotonic()`` for kiosk.clock; ``advance_to(t)`` moves simulated time forward."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("the simulated start time needs a time zone (the library's: Asia/Shanghai)")
        self.start = start
        self.t = 0.0

    def now(self) -> datetime:
        return self.start + timedelta(seconds=self.t)

    def monotonic(self) -> float:
        return MONOTONIC_BASE_S + self.t

    def at(self, t: float) -> datetime:
        """The wall-clock time of simulated second ``t``."""
        return self.start + timedelta(seconds=t)

    def seconds(self, when: datetime) -> float:
        """Simulated seconds of ``when`` (any time zone) since the start."""
        return (when - self.start).total_seconds()

    def advance_to(self, t: float) -> None:
        if t > self.t:
            self.t = t
