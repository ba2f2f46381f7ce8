"""The journal's event life: received (or held) -> sending -> applied | informational | rejected, and refusals.

Every event a bookcase publishes is written here before the broker hears our PUBACK, once (idempotent on its
id: a second copy counts as a duplicate). Loans and returns then wait their turn per item — (ts_utc, bookcase,
seq) order — and per bookcase (a seq after a gap is held until the gap fills, or ``hold_s`` passes). A worker
claims the next one (state "sending", with its owner and a lease) *before* it speaks SIP2 to the ILS, so a crash
or a lost answer leaves a trace that the next attempt honours: it asks the ILS what happened before it retries.
Other event types (alarms, session_closed, …) are informational at once, kept for the operators' console.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from gateway.journal.backends import Backend, Tx
from kiosk.store.replica import utc

LOGGER = logging.getLogger(__name__)

TRANSACTIONS = ("loan", "return")
PENDING = ("received", "held", "sending")
DONE = ("applied", "informational", "rejected", "refused")
GAP, WAIT_LOAN, ILS_DOWN, RETRY = "gap", "loan", "ils", "retry"   # why an event is held
# Events that need a person (the console's review queue, beside the ILS's rejections): tags the count was not
# sure of, books gone after a forced door, things that are not library books, loans beyond a patron's limit.
NEEDS_A_PERSON = frozenset({"uncertain_tag", "item_missing", "foreign_object"})
ALARMS_FOR_REVIEW = frozenset({"over_limit", "taken_without_card"})
SUPERSEDED = "superseded"
# A late loan whose item was lent again since (its bookcase was offline; the book came back elsewhere and went out
# again): SIP2 cannot put a loan into the past while the book is out, so it waits, done for the bookcase (acked),
# and goes back in line when a return of its item is applied — then it is lent and returned at its own times.
DEFERRED = "deferred"
# The sip_log's mark of an attempt that left no log of its own (a gateway died while sending it).
TAKEOVER = "takeover"
# A late loan that attempt may have lent and returned, or not sent at all: the ILS has the item in either way.
UNSURE = "not known whether it reached the ILS"
# A patron's checked_epoch when a loan or return touched them and the ILS has not been asked since: before every
# real time and before a never-asked import (NULL), so the sweep asks these first.
ASK_SOON = -1.0
WALK_LIMIT = 5000
Calls = Sequence[tuple[str, "bool | None", "str | None", "str | None"]]   # (command, ok, screen message, error)


def now_iso() -> str:
    return datetime.now().astimezone().isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class Incoming:
    """One message off the event topic, checked: ``event`` if valid, else ``reason``/``detail`` (MessageError)."""
    topic: str
    bookcase: str | None                 # as the topic says
    payload: bytes
    event: dict | None = None
    reason: str | None = None
    detail: str = ""
    envelope: dict | None = None         # a refused message's id/seq/ts, when it has a readable one


@dataclass(frozen=True)
class Recorded:
    status: str                          # "new", "duplicate" or "refused"
    event_id: str | None = None


@dataclass(frozen=True)
class Claimed:
    id: str
    bookcase: str
    seq: int
    ts: str
    ts_utc: str
    type: str
    item: str
    patron: str | None
    event: dict
    previous: str                        # the state it was claimed from: "sending" means a gateway died mid-way
    attempts: int
    uncertain: bool                      # an earlier request's outcome is unknown: ask the ILS first
    received_epoch: float
    hold_reason: str | None
    before: "Neighbour | None" = None    # the item's last applied loan or return before this event
    later: "Neighbour | None" = None     # ... and its latest one after it: this event is late
    next: "Neighbour | None" = None      # ... and its first one after it (a late loan's own return)
    ils_patron: str | None = None        # the ILS's id of the event's patron key (None: not in the patron map)


@dataclass(frozen=True)
class Neighbour:
    """An item's applied loan or return just before or after another event of it."""
    id: str
    type: str
    state: str
    bookcase: str
    ts: str
    patron: str | None


@dataclass(frozen=True)
class Outcome:
    state: str                           # applied | informational | rejected
    reason: str | None = None            # words for the ack and the console
    screen_message: str | None = None    # what the ILS said (AF)
    due: str | None = None               # the ILS's due date for a loan, YYYY-MM-DD
    note: str | None = None
    review: bool = False                 # staff should look, though nothing was refused (the note says why)


class JournalCore:
    """Inbound recording and the appliers' claims; the backend gives connections and transactions."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    def close(self) -> None:
        self.backend.close()

    def describe(self) -> str:
        return self.backend.describe()

    def _write(self, fn, *, tries: int = 8):
        """Run ``fn(tx)`` in a write transaction, again after a transient failure (lock, deadlock, lost link)."""
        for attempt in range(tries):
            try:
                with self.backend.tx() as tx:
                    return fn(tx)
            except self.backend.transient as exc:
                if attempt == tries - 1:
                    raise
                LOGGER.debug("journal: transaction failed (%s); trying again", exc)
                time.sleep(min(0.01 * 2 ** attempt, 1.0))
        raise AssertionError("unreachable")

    def _read(self, fn, *, tries: int = 8):
        """Run ``fn(tx)`` in a read transaction (SQLite: deferred, so it never waits for a writer)."""
        for attempt in range(tries):
            try:
                with self.backend.read() as tx:
                    return fn(tx)
            except self.backend.transient as exc:
                if attempt == tries - 1:
                    raise
                LOGGER.debug("journal: read failed (%s); trying again", exc)
                time.sleep(min(0.01 * 2 ** attempt, 1.0))
        raise AssertionError("unreachable")

    # --- inbound -------------------------------------------------------------------------------------

    def record(self, batch: list[Incoming], gateway: str, hold_s: float) -> list[Recorded]:
        """Write a batch of inbound messages in one transaction; the outcomes in the batch's order."""
        return self._write(lambda tx: self._record(tx, batch, gateway, hold_s))

    def _record(self, tx: Tx, batch: list[Incoming], gateway: str, hold_s: float) -> list[Recorded]:
        now, at = time.time(), now_iso()
        out: list[Recorded | None] = [None] * len(batch)
        rows: dict[str, list[tuple[int, dict, Incoming]]] = {}
        for i, msg in enumerate(batch):
            ev = msg.event if msg.event is not None else msg.envelope
            if ev is None:
                tx.execute("INSERT INTO refused (received_at, topic, bookcase, reason, detail, excerpt, received_by) "
                           "VALUES (?, ?, ?, ?, ?, ?, ?)",
                           (at, _storable(msg.topic[:300]), _storable(msg.bookcase), msg.reason or "invalid",
                            _storable(msg.detail[:500]), _storable(msg.payload[:300].decode("utf-8", "replace")),
                            gateway))
                out[i] = Recorded("refused")
            else:
                rows.setdefault(ev["bookcase"], []).append((i, ev, msg))
        # Bookcases in a fixed order: two gateways writing the same bookcases lock their rows alike.
        for bookcase in sorted(rows):
            entries = sorted(rows[bookcase], key=lambda e: e[1]["seq"])
            tx.execute("INSERT INTO bookcases (bookcase, contiguous_seq, last_seen) VALUES (?, 0, ?) "
                       "ON CONFLICT (bookcase) DO UPDATE SET last_seen = excluded.last_seen", (bookcase, at))
            new_txn: list[tuple[str, int]] = []
            for i, ev, msg in entries:
                out[i] = self._insert(tx, ev, msg, gateway, now, at)
                if out[i].status == "new" and msg.event is not None and ev["type"] in TRANSACTIONS:
                    new_txn.append((ev["id"], ev["seq"]))
            contiguous = self._advance(tx, bookcase)
            for event_id, seq in new_txn:
                if seq > contiguous:
                    tx.execute("UPDATE events SET state = 'held', hold_until = ?, hold_reason = ? "
                               "WHERE id = ? AND state = 'received'", (now + hold_s, GAP, event_id))
        return out  # type: ignore[return-value]

    def _insert(self, tx: Tx, ev: dict, msg: Incoming, gateway: str, now: float, at: str) -> Recorded:
        refused = msg.event is None
        txn = not refused and ev["type"] in TRANSACTIONS
        state = "refused" if refused else "received" if txn else "informational"
        try:
            ts_utc = utc(ev["ts"])
        except (ValueError, OverflowError, TypeError):
            ts_utc = "0000"
        payload = _storable(msg.payload.decode("utf-8", "replace")) if refused else json.dumps(ev, ensure_ascii=False)
        review = "open" if not refused and (ev["type"] in NEEDS_A_PERSON or (
            ev["type"] == "alarm" and ev.get("alarm") in ALARMS_FOR_REVIEW)) else None
        cur = tx.execute(
            "INSERT INTO events (id, bookcase, seq, ts, ts_utc, type, item, patron, payload, state, reason, "
            "received_at, received_epoch, received_by, done_at, done_epoch, review) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
            (ev["id"], ev["bookcase"], ev["seq"], str(ev.get("ts", ""))[:40], ts_utc, str(ev.get("type", "?"))[:40],
             _text(ev.get("item")), _text(ev.get("patron")), payload[:100_000], state,
             _storable((msg.reason + (f": {msg.detail}" if msg.detail else ""))[:500]) if refused else None,
             at, now, gateway, None if txn else at, None if txn else now, review))
        if cur.rowcount == 0:
            tx.execute("UPDATE events SET duplicates = duplicates + 1 WHERE id = ?", (ev["id"],))
            return Recorded("duplicate", ev["id"])
        return Recorded("refused" if refused else "new", ev["id"])

    def _advance(self, tx: Tx, bookcase: str, at_least: int = 0) -> int:
        """Move the bookcase's contiguous seq over every seq now in the journal; release what the gap held."""
        row = tx.execute("SELECT contiguous_seq FROM bookcases WHERE bookcase = ?", (bookcase,)).fetchone()
        start = contiguous = max(row[0], at_least)
        while True:
            seqs = [s for (s,) in tx.execute("SELECT seq FROM events WHERE bookcase = ? AND seq > ? ORDER BY seq "
                                             "LIMIT ?", (bookcase, contiguous, WALK_LIMIT))]
            before = contiguous
            for s in seqs:
                if s != contiguous + 1:
                    break
                contiguous = s
            if contiguous == before or len(seqs) < WALK_LIMIT:
                break
        if contiguous != row[0]:
            tx.execute("UPDATE bookcases SET contiguous_seq = ? WHERE bookcase = ?", (contiguous, bookcase))
        if contiguous > start or at_least:
            tx.execute("UPDATE events SET state = 'received', hold_until = NULL, hold_reason = NULL "
                       "WHERE bookcase = ? AND state = 'held' AND hold_reason = ? AND seq <= ?",
                       (bookcase, GAP, contiguous))
        return contiguous

    def forgive_gaps(self) -> int:
        """Bookcases whose gap outlived ``hold_s``: carry on past it (the missing events, if they come, are late
        events of their items). Returns how many bookcases moved on."""
        now = time.time()

        def run(tx: Tx) -> int:
            rows = tx.execute("SELECT bookcase, MAX(seq) FROM events WHERE state = 'held' AND hold_reason = ? "
                              "AND hold_until <= ? GROUP BY bookcase", (GAP, now)).fetchall()
            for bookcase, seq in sorted(rows):
                tx.execute("SELECT contiguous_seq FROM bookcases WHERE bookcase = ?" +
                           (" FOR UPDATE" if self.backend.kind == "postgresql" else ""), (bookcase,))
                moved = self._advance(tx, bookcase, at_least=seq)
                LOGGER.warning("bookcase %s: events before seq %d never arrived within the hold time; "
                               "carrying on from seq %d", bookcase, seq, moved)
            return len(rows)
        return self._write(run)

    # --- the appliers ---------------------------------------------------------------------------------

    _CLAIM = ("SELECT e.id, e.bookcase, e.seq, e.ts, e.ts_utc, e.type, e.item, e.patron, e.payload, e.state, "
              "e.attempts, e.uncertain, e.received_epoch, e.hold_reason FROM events e "
              "WHERE e.state IN ('received', 'held', 'sending') "
              "AND ((e.state <> 'sending' AND (e.hold_until IS NULL OR e.hold_until <= ?)) "
              "     OR (e.state = 'sending' AND e.lease_until < ?)) "
              "AND NOT EXISTS (SELECT 1 FROM events o WHERE o.item = e.item AND o.id <> e.id AND "
              "   (o.state = 'sending' OR (e.state <> 'sending' AND o.state IN ('received', 'held') "
              "    AND (o.ts_utc, o.bookcase, o.seq) < (e.ts_utc, e.bookcase, e.seq)))) "
              "ORDER BY e.ts_utc, e.bookcase, e.seq LIMIT 1")

    def claim(self, owner: str, lease_s: float) -> Claimed | None:
        """The next loan or return whose turn it is, now "sending" and ours for ``lease_s``; None if none is."""
        def run(tx: Tx) -> Claimed | None:
            now = time.time()
            row = tx.execute(self._CLAIM + self.backend.skip_locked, (now, now)).fetchone()
            if row is None:
                return None
            tx.execute("UPDATE events SET state = 'sending', owner = ?, lease_until = ?, attempts = attempts + 1, "
                       "uncertain = CASE WHEN state = 'sending' THEN 1 ELSE uncertain END, hold_until = NULL "
                       "WHERE id = ?", (owner, now + lease_s, row[0]))
            patron = tx.execute("SELECT ils_id FROM patrons WHERE key = ? AND removed = 0",
                                (row[7],)).fetchone() if row[7] else None
            ev = Claimed(id=row[0], bookcase=row[1], seq=row[2], ts=row[3], ts_utc=row[4], type=row[5],
                         item=row[6], patron=row[7], event=json.loads(row[8]), previous=row[9],
                         attempts=row[10] + 1, uncertain=bool(row[11]) or row[9] == "sending",
                         received_epoch=row[12], hold_reason=row[13], ils_patron=patron[0] if patron else None)
            if row[9] == "sending":
                # Its last owner died (or lost its lease) mid-request: what that attempt sent is not known.
                tx.execute("INSERT INTO sip_log (event_id, at, gateway, command, item, ok, screen_message, detail) "
                           "VALUES (?, ?, ?, ?, ?, NULL, NULL, ?)", (ev.id, now_iso(), owner, TAKEOVER, ev.item,
                                                                  "taken over: its last owner stopped while sending"))
            return replace(ev, before=self._neighbour(tx, ev, after=False), later=self._neighbour(tx, ev, after=True),
                           next=self._neighbour(tx, ev, after=True, first=True))
        return self._write(run)

    def has_work(self) -> bool:
        """Cheap: is any loan or return past its hold (it may still wait for an earlier one of its item)?"""
        now = time.time()
        return self._read(lambda tx: tx.execute(
            "SELECT 1 FROM events WHERE state IN ('received', 'held', 'sending') AND ((state <> 'sending' AND "
            "(hold_until IS NULL OR hold_until <= ?)) OR (state = 'sending' AND lease_until < ?)) LIMIT 1",
            (now, now)).fetchone() is not None)

    def next_wake(self) -> float | None:
        """When the next hold or lease ends (Unix seconds), if any."""
        row = self._read(lambda tx: tx.execute(
            "SELECT MIN(CASE WHEN state = 'sending' THEN lease_until ELSE hold_until END) FROM events "
            "WHERE state IN ('received', 'held', 'sending')").fetchone())
        return row[0] if row else None

    def renew(self, event_id: str, owner: str, lease_s: float) -> bool:
        """Just before a request goes out: the event is still ours, for ``lease_s`` more."""
        return self._write(lambda tx: tx.execute(
            "UPDATE events SET lease_until = ? WHERE id = ? AND owner = ? AND state = 'sending'",
            (time.time() + lease_s, event_id, owner)).rowcount == 1)

    def release(self, ev: Claimed, owner: str, *, hold_s: float, reason: str, uncertain: bool,
                state: str = "received", calls: Calls = ()) -> None:
        """Back to waiting (``state`` "received" or "held") for ``hold_s``; ``uncertain``: ask the ILS first."""
        def run(tx: Tx) -> None:
            tx.execute("UPDATE events SET state = ?, owner = NULL, lease_until = NULL, hold_until = ?, hold_reason = ?, "
                       "uncertain = ? WHERE id = ? AND owner = ? AND state = 'sending'",
                       (state, time.time() + hold_s, reason, int(uncertain), ev.id, owner))
            self._log_calls(tx, ev, owner, calls)
        self._write(run)

    def expire_own(self, gateway: str) -> int:
        """At start: events an earlier run of this gateway left "sending" are taken over now, not after the lease."""
        return self._write(lambda tx: tx.execute(
            "UPDATE events SET lease_until = 0 WHERE state = 'sending' AND owner LIKE ?", (gateway + "#%",)).rowcount)

    def _log_calls(self, tx: Tx, ev: Claimed, owner: str, calls: Calls) -> None:
        at = now_iso()
        for command, ok, screen, detail in calls:
            tx.execute("INSERT INTO sip_log (event_id, at, gateway, command, item, ok, screen_message, detail) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (ev.id, at, owner, command, ev.item,
                                                           None if ok is None else int(ok), _cut(screen), _cut(detail)))

    def finish(self, ev: Claimed, owner: str, outcome: Outcome, gateway: str, calls: Calls = (),
               touched: Iterable[str] = ()) -> bool:
        """Record the outcome and the SIP2 exchanges; the ack is due. False if the event was no longer ours (its
        lease had run out and another gateway took it over). ``touched``: patron keys whose ILS status the event
        may have changed, marked to be asked about (ASK_SOON) in the same transaction, so a gateway killed before
        it asked, or an ILS gone before it answered, still leaves them first in line."""
        def run(tx: Tx) -> bool:
            now, at = time.time(), now_iso()
            review_row = tx.execute("SELECT review FROM events WHERE id = ?", (ev.id,)).fetchone()
            review = review_row[0] if review_row else None
            if outcome.state == "rejected" or outcome.review:
                review = "open"
            elif review == "retrying":
                review = "resolved"
            cur = tx.execute(
                "UPDATE events SET state = ?, reason = ?, screen_message = ?, due = ?, note = ?, done_at = ?, "
                "done_epoch = ?, acked_at = NULL, ack_owner = NULL, ack_lease = NULL, owner = NULL, "
                "lease_until = NULL, uncertain = 0, hold_until = NULL, hold_reason = NULL, review = ?, "
                "resolved_by = CASE WHEN ? = 'resolved' AND review = 'retrying' THEN 'retry' ELSE resolved_by END, "
                "resolved_at = CASE WHEN ? = 'resolved' AND review = 'retrying' THEN ? ELSE resolved_at END "
                "WHERE id = ? AND owner = ? AND state = 'sending'",
                (outcome.state, _cut(outcome.reason), _cut(outcome.screen_message), outcome.due, _cut(outcome.note),
                 at, now, review, review, review, at, ev.id, owner))
            self._log_calls(tx, ev, owner, calls)
            if cur.rowcount != 1:
                return False
            if outcome.state == "rejected":
                tx.execute("INSERT INTO reviews (event_id, at, action, who, note) VALUES (?, ?, 'rejected', ?, ?)",
                           (ev.id, at, gateway, _cut(outcome.screen_message or outcome.reason)))
            elif outcome.review:
                tx.execute("INSERT INTO reviews (event_id, at, action, who, note) VALUES (?, ?, 'flagged', ?, ?)",
                           (ev.id, at, gateway, _cut(outcome.note)))
            for key in sorted(set(touched)):
                tx.execute("UPDATE patrons SET checked_epoch = ? WHERE key = ?", (ASK_SOON, key))
            # A return held for this item's loan looks again now.
            tx.execute("UPDATE events SET hold_until = ? WHERE item = ? AND state = 'held' AND hold_reason = ?",
                       (now, ev.item, WAIT_LOAN))
            if ev.type == "return" and outcome.state == "applied":
                # The item is back at the ILS: its deferred late loans go back in line (oldest first, before any
                # later event of the item), to be lent and returned at their own times.
                tx.execute("UPDATE events SET state = 'received', reason = NULL, done_at = NULL, done_epoch = NULL, "
                           "hold_until = NULL WHERE item = ? AND state = 'informational' AND reason = ?",
                           (ev.item, DEFERRED))
            return True
        return self._write(run)

    @staticmethod
    def _neighbour(tx: Tx, ev: Claimed, after: bool, first: bool = False) -> Neighbour | None:
        """The item's loan or return the ILS has (applied, or informational but not superseded or deferred) just
        before ``ev``, or after it: the latest one, or with ``first`` the first one."""
        op = ">" if after else "<"
        order = "" if first else " DESC"
        sql = ("SELECT id, type, state, bookcase, ts, patron FROM events WHERE item = ? AND type IN ('loan', 'return') "
               "AND state IN ('applied', 'informational') AND (reason IS NULL OR reason NOT IN (?, ?)) "
               f"AND (ts_utc, bookcase, seq) {op} (?, ?, ?) "
               f"ORDER BY ts_utc{order}, bookcase{order}, seq{order} LIMIT 1")
        row = tx.execute(sql, (ev.item, SUPERSEDED, DEFERRED, ev.ts_utc, ev.bookcase, ev.seq)).fetchone()
        return Neighbour(*row) if row else None

    def event(self, event_id: str) -> dict | None:
        """One event's journal row, as a dict (for the CLI and tests)."""
        def run(tx: Tx) -> dict | None:
            cur = tx.execute("SELECT * FROM events WHERE id = ?", (event_id,))
            row = cur.fetchone()
            return dict(zip([d[0] for d in cur.description], row)) if row else None
        return self._read(run)

    def events(self, where: str = "1 = 1", params: tuple = ()) -> list[dict]:
        def run(tx: Tx) -> list[dict]:
            cur = tx.execute(f"SELECT * FROM events WHERE {where} ORDER BY received_epoch, bookcase, seq", params)
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row)) for row in cur.fetchall()]
        return self._read(run)

    def sip_log(self, event_id: str | None = None) -> list[dict]:
        def run(tx: Tx) -> list[dict]:
            cur = tx.execute("SELECT * FROM sip_log" + (" WHERE event_id = ?" if event_id else "") + " ORDER BY n",
                             (event_id,) if event_id else ())
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row)) for row in cur.fetchall()]
        return self._read(run)


def _storable(text: str | None) -> str | None:
    """Text from a message that was refused, as both journals can store it: PostgreSQL's text holds no NUL."""
    return None if text is None else text.replace("\x00", "\\x00")


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _cut(text: str | None, n: int = 500) -> str | None:
    return None if text is None else text[:n]
