"""The outbox relay (core loop): publishes unsent outbox rows in seq order and marks each sent on its PUBACK.

At most ``window`` rows are in flight (published, not yet acknowledged). A PUBACK frees a slot at once;
the rows acknowledged are marked sent in batches (one transaction per batch, within ``FLUSH_INTERVAL_S``),
so a drain of thousands of rows costs a few dozen fsyncs rather than one each. A crash before a batch is
written means those rows go again after the restart — under the same id, which consumers dedupe.

On every new connection the relay starts again from the oldest unsent row. A PUBACK with a failure
reason code (e.g. 0x87 not authorised: the broker's ACL refused us) leaves the row unsent; the relay
pauses for ``REFUSED_RETRY_S`` and then resends everything unsent, in order.
"""

from __future__ import annotations

import logging
from typing import Callable

import sqlite_utils

from kiosk import clock as kiosk_clock
from kiosk.store import replica
from kiosk.sync import retry
from kiosk.sync.schema import MessageError, check_outgoing, decode

LOGGER = logging.getLogger(__name__)

FLUSH_INTERVAL_S = 0.2
FLUSH_BATCH = 500
REFUSED_RETRY_S = 30.0


class Relay:
    """Outbox -> broker for one bookcase. ``up(gen)``/``down()`` follow the link; ``pump()`` after every event."""

    def __init__(self, db: sqlite_utils.Database, topic: str, window: int,
                 publish: Callable[[int, str, bytes], int | None], name: str,
                 clock: Callable[[], float] = kiosk_clock.monotonic) -> None:
        self.db = db
        self.topic = topic
        self.window = window
        self.publish = publish
        self.name = name
        self.clock = clock
        self.gen: int | None = None
        self.inflight: dict[int, int] = {}     # mid -> seq
        self.cursor = 0                        # highest seq handed to this connection
        self.acked: list[int] = []             # acknowledged, not yet marked in the database
        self.acked_since = 0.0
        self.paused_until = 0.0
        self.sessions_closed = 0               # session_closed rows handed out (holdings change after them)
        self.acks = 0                          # PUBACKs received, for last-sync bookkeeping
        self.refused = 0
        self.held: set[int] = set()            # rows that fail their schema: kept, never published
        self.warned_types: set[str] = set()
        self._changes: tuple | None = None     # _version() when the backlog was last read to its end
        self.flush_failing = False

    def up(self, gen: int) -> None:
        self.flush()
        self.gen, self.inflight, self.cursor, self._changes = gen, {}, 0, None

    def down(self) -> None:
        self.flush()
        self.gen, self.inflight, self.cursor = None, {}, 0

    def pump(self) -> None:
        """Fill the window with the next unsent rows; cheap when there is nothing new."""
        if self.gen is None or self.clock() < self.paused_until:
            return
        while (room := self.window - len(self.inflight)) > 0:
            changes = self._version()
            if changes == self._changes:
                return
            rows = replica.unsent(self.db, self.cursor, room)
            if len(rows) < room:
                self._changes = changes    # read to the end: nothing more until the database changes
            for seq, type_, payload in rows:
                body = self._checked(seq, type_, payload)
                if body is not None:
                    mid = self.publish(self.gen, self.topic, body)
                    if mid is None:
                        return             # the connection is going; LinkDown follows
                    self.inflight[mid] = seq
                    if type_ == "session_closed":
                        self.sessions_closed += 1
                self.cursor = seq
            if not rows:
                return

    def published(self, gen: int, mid: int, reason_code: int, reason: str) -> bool:
        """A PUBACK. True if it was for an outbox row of the current connection."""
        if gen != self.gen:
            return False
        seq = self.inflight.pop(mid, None)
        if seq is None:
            return False
        if reason_code >= 0x80:
            self.refused += 1
            LOGGER.error("bookcase %s: the broker refused event seq %d on %s: %s; it stays in the outbox and "
                         "everything unsent goes again in %.0f s (check the broker's ACL for this bookcase)",
                         self.name, seq, self.topic, reason, REFUSED_RETRY_S)
            self.flush()
            self.inflight, self.cursor, self._changes = {}, 0, None
            self.paused_until = self.clock() + REFUSED_RETRY_S
            return True
        self.acks += 1
        if not self.acked:
            self.acked_since = self.clock()
        self.acked.append(seq)
        if len(self.acked) >= FLUSH_BATCH:
            self.flush()
        return True

    def _version(self) -> tuple[int, int]:
        # Our own writes, and (data_version) commits by any other connection, e.g. an admin tool.
        conn = self.db.conn
        return conn.total_changes, conn.execute("PRAGMA data_version").fetchone()[0]

    def flush_due(self) -> None:
        if self.acked and self.clock() - self.acked_since >= FLUSH_INTERVAL_S:
            self.flush()

    def flush(self) -> bool:
        """Mark every acknowledged row sent, in one transaction. A failure of ours (the database locked by another
        process, or full) keeps them to mark on a later try, FLUSH_INTERVAL_S on, with one log line while it
        lasts: the link's comings and goings must not wait for the database. False if they could not be marked."""
        if not self.acked:
            return True
        seqs, self.acked = self.acked, []
        try:
            replica.mark_sent(self.db, seqs, replica.now_iso())
        except Exception as exc:
            self.acked = seqs + self.acked
            if not retry.ours(exc):
                raise
            self.acked_since = self.clock()
            if not self.flush_failing:
                LOGGER.error("bookcase %s: could not mark %d published event(s) sent (%s); trying again", self.name,
                             len(seqs), exc)
            self.flush_failing = True
            return False
        if self.flush_failing:
            self.flush_failing = False
            LOGGER.info("bookcase %s: published events marked sent again", self.name)
        return True

    def _checked(self, seq: int, type_: str, payload: str) -> bytes | None:
        """The row's payload as bytes, if it matches the v1 schema (docs/design.md §6) and was recorded by this
        bookcase — else None, and it is held (it stays in the outbox, never published)."""
        try:
            # Read as every consumer reads it (kiosk.sync.schema.decode): what they would all refuse stays here.
            msg = decode(payload.encode("utf-8"), len(payload) * 4 + 1)
            known = check_outgoing(msg)
        except (ValueError, MessageError) as exc:
            return self._hold(seq, f"outbox event seq {seq} ({type_}) is not a valid v1 message and is held back "
                                   f"(it stays in the outbox for a software fix): {exc}")
        if msg["bookcase"] != self.name:
            # Every consumer would refuse it: the topic says this bookcase, the event another.
            return self._hold(seq, f"outbox event seq {seq} ({type_}) was recorded by bookcase "
                                   f"{msg['bookcase']!r}, not by this one, and is held back (it stays in the "
                                   f"outbox): was bookcase.id changed in the config with the database kept?")
        if not known and type_ not in self.warned_types:
            self.warned_types.add(type_)
            LOGGER.warning("bookcase %s: event type %r has no schema in kiosk/sync/schema.py; sent with its "
                           "envelope checked only", self.name, type_)
        return payload.encode("utf-8")

    def _hold(self, seq: int, why: str) -> None:
        if seq not in self.held:
            self.held.add(seq)
            LOGGER.error("bookcase %s: %s", self.name, why)
        return None
