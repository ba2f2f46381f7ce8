"""Inbound messages that failed because of this bookcase, not because of what they are.

The rule of replication in (docs/design.md §6): a message that cannot be applied because of what it *is* — off its
schema, or anything else about it that makes applying it fail — is refused, counted and acknowledged at once:
left unacknowledged it would come back after every reconnect and, once ``RECEIVE_MAXIMUM`` of them were held,
stop every other message. Only a failure of *ours* (the database locked or damaged, a full disk, no memory)
leaves a message unacknowledged, and then only for ``MAX_ATTEMPTS`` tries ``RETRY_S`` apart (doubling), after
which it is parked in the database for staff and acknowledged. The decision is made in one place,
``FleetSync._received``.

Tries are counted in memory, per topic and payload (a SHA-256 of both: a redelivery after a reconnect has a new
packet id but counts on). Not in the database, on purpose: the failures counted are the database's own, so a
count written there would fail the same way and the tries might never end. A daemon restart starts the count
again: a message is tried at most ``MAX_ATTEMPTS`` times per run of the daemon, and parked about 15 s after its
first failure in that run (tries 1, 2, 4 and 8 s apart).
"""

from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import dataclass

from kiosk.sync.events import Received

MAX_ATTEMPTS = 5
RETRY_S = 1.0
MAX_PENDING = 256          # far above the broker's receive maximum: older entries go first


def ours(exc: BaseException) -> bool:
    """A failure of this bookcase (retry later), as opposed to one caused by the message itself."""
    return isinstance(exc, (sqlite3.OperationalError, OSError, MemoryError)) or type(exc) is sqlite3.DatabaseError


@dataclass
class Pending:
    event: Received
    attempts: int
    first_seen: str
    due: float
    error: str


class Retries:
    """The messages waiting for another try; the core loop calls ``failed`` and, from ``pump``, ``due``."""

    def __init__(self) -> None:
        self._pending: dict[bytes, Pending] = {}

    @staticmethod
    def _key(event: Received) -> bytes:
        return hashlib.sha256(event.topic.encode("utf-8", "replace") + b"\0" + event.payload).digest()

    def failed(self, event: Received, error: str, now: float, now_iso: str) -> Pending:
        """Count one more failed try of ``event`` (a redelivery replaces the copy kept) and schedule the next."""
        key = self._key(event)
        entry = self._pending.pop(key, None)
        if entry is None:
            entry = Pending(event, 0, now_iso, now, error)
            while len(self._pending) >= MAX_PENDING:
                self._pending.pop(next(iter(self._pending)))
        entry.event, entry.error = event, error
        entry.attempts += 1
        entry.due = now + RETRY_S * 2 ** min(entry.attempts - 1, 6)
        self._pending[key] = entry
        return entry

    def forget(self, event: Received) -> None:
        self._pending.pop(self._key(event), None)

    def due(self, now: float) -> list[Received]:
        """Messages whose next try is due, oldest first; each is tried again by the caller."""
        return [p.event for p in list(self._pending.values()) if p.due <= now]

    def __len__(self) -> int:
        return len(self._pending)
