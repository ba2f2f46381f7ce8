"""The bookcase's one source of time: the wall clock (aware datetimes) and a monotonic clock, real by default.

The session flow (timeouts, session and loan times, due dates), the store (every recorded time and the outbox
events' ``ts``), the outbox relay and the fleet sync take their time from here, never from ``time.time()`` or
``datetime.now()`` directly. A simulator installs another source with ``use(source)`` so that a whole fleet's
time can run faster than real time (simulators/scale: a simulated year in a benchmark run). The MQTT link's own
timers (reconnect backoff, CONNACK timeout) stay on real time: they are the network's, not the library's.

One source per process: every bookcase of a simulated fleet in one process shares the simulated time.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Protocol


class Source(Protocol):
    """Where time comes from: ``now()`` an aware local datetime, ``monotonic()`` seconds that never go back."""

    def now(self) -> datetime: ...

    def monotonic(self) -> float: ...


class RealClock:
    """The machine's clocks: the default source."""

    def now(self) -> datetime:
        return datetime.now().astimezone()

    def monotonic(self) -> float:
        return time.monotonic()


REAL = RealClock()
_source: Source = REAL


def now() -> datetime:
    """The wall clock: an aware datetime in local time (the simulated one while a simulator runs)."""
    return _source.now()


def monotonic() -> float:
    """Seconds for timeouts and intervals: never goes back (simulated seconds while a simulator runs)."""
    return _source.monotonic()


def now_iso() -> str:
    """``now()`` as the store writes it: ISO 8601 with milliseconds and the UTC offset."""
    return now().isoformat(timespec="milliseconds")


def use(source: Source | None) -> Source:
    """Take time from ``source`` from now on (None: the real clock again); returns the previous source."""
    global _source
    previous, _source = _source, source or REAL
    return previous


def current() -> Source:
    return _source
