"""The fleet's records in the bookcase database: outbox marking, inbound messages applied once, remote loans,
the other bookcases' holdings, and sync counters. Writers run on the core loop only (docs/design.md §3).

Loans made at other bookcases live in ``remote_loans``; a loan is open until a later event on the same item
ends it, wherever that happens: a return at any bookcase, a loan of the item anywhere, or a loan or return
here (``close_remote_loans``, called by ``Store.settle`` inside the settlement's transaction). Events from
different bookcases may arrive in any order, so each apply also looks for what already happened later.
Times are compared in UTC.
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
from datetime import datetime, timezone
from typing import Callable, Iterable

import sqlite_utils

from kiosk import clock
from kiosk.search import index as search_index
from kiosk.store.db import transaction

LOGGER = logging.getLogger(__name__)

LOCAL = "here"      # closed_by for a remote loan ended by a loan or return at this bookcase
ISBN = re.compile(r"[0-9Xx-]{10,17}")   # what the holdings message carries (kiosk.sync.schema)


def now_iso() -> str:
    return clock.now_iso()


def utc(ts: str) -> str:
    """An ISO 8601 time as a UTC string that sorts correctly (a time without offset is taken as local)."""
    dt = datetime.fromisoformat(ts)
    if dt.tzinfo is None:
        dt = dt.astimezone()
    return dt.astimezone(timezone.utc).isoformat(timespec="milliseconds")


# --- outbox ---------------------------------------------------------------------------------------

def unsent(db: sqlite_utils.Database, after_seq: int, limit: int) -> list[tuple[int, str, str]]:
    """Unsent outbox rows after ``after_seq``, in seq order: (seq, type, payload)."""
    return db.execute("SELECT seq, type, payload FROM outbox WHERE sent IS NULL AND seq > ? ORDER BY seq LIMIT ?",
                      (after_seq, limit)).fetchall()


def mark_sent(db: sqlite_utils.Database, seqs: list[int], at: str) -> None:
    """Rows the broker acknowledged (PUBACK), in one transaction."""
    with transaction(db) as conn:
        for i in range(0, len(seqs), 500):
            chunk = seqs[i:i + 500]
            conn.execute(f"UPDATE outbox SET sent = ? WHERE seq IN ({','.join('?' * len(chunk))}) AND sent IS NULL",
                         (at, *chunk))


def outbox_depth(db: sqlite_utils.Database) -> int:
    return db.execute("SELECT COUNT(*) FROM outbox WHERE sent IS NULL").fetchone()[0]


def oldest_unsent(db: sqlite_utils.Database) -> str | None:
    """When the oldest event still waiting for the broker was recorded (None: the outbox is empty)."""
    row = db.execute("SELECT created FROM outbox WHERE sent IS NULL ORDER BY seq LIMIT 1").fetchone()
    return row[0] if row else None


# --- the inbox: each inbound message applied at most once ----------------------------------------

def apply_once(db: sqlite_utils.Database, message_id: str, topic: str,
               effect: Callable[[sqlite3.Connection], None]) -> bool:
    """Run ``effect`` and record ``message_id`` in one transaction; False (and no effect) if seen before."""
    with transaction(db) as conn:
        if conn.execute("INSERT OR IGNORE INTO inbox (id, topic, received) VALUES (?, ?, ?)",
                        (message_id, topic, now_iso())).rowcount == 0:
            return False
        effect(conn)
    return True


def park(db: sqlite_utils.Database, topic: str, payload: bytes, error: str, attempts: int, first_seen: str) -> None:
    """Keep an inbound message that could not be applied for staff to look at (``kiosk sync status``)."""
    with transaction(db) as conn:
        conn.execute("INSERT INTO parked_messages (topic, payload, error, attempts, first_seen, parked_at) "
                     "VALUES (?, ?, ?, ?, ?, ?)", (topic, payload, error[:500], attempts, first_seen, now_iso()))


def parked(db: sqlite_utils.Database) -> list[dict]:
    """Parked inbound messages, oldest first (without their payloads)."""
    return [dict(r) for r in db.query("SELECT id, topic, error, attempts, first_seen, parked_at, "
                                      "length(payload) AS size FROM parked_messages ORDER BY id")]


def parked_messages(db: sqlite_utils.Database) -> list[tuple[int, str, bytes]]:
    """Parked inbound messages with their payloads, oldest first: (id, topic, payload)."""
    return [(i, t, bytes(p)) for i, t, p in db.execute("SELECT id, topic, payload FROM parked_messages ORDER BY id")]


def unpark(db: sqlite_utils.Database, parked_id: int) -> None:
    """A parked message dealt with (applied, a duplicate, or refused) leaves the list."""
    with transaction(db) as conn:
        conn.execute("DELETE FROM parked_messages WHERE id = ?", (parked_id,))


def prune(db: sqlite_utils.Database, before: str) -> int:
    """Forget inbox ids, remote returns and closed remote loans older than ``before`` (ISO time)."""
    cutoff = utc(before)
    with transaction(db) as conn:
        n = conn.execute("DELETE FROM inbox WHERE received < ?", (before,)).rowcount
        n += conn.execute("DELETE FROM remote_returns WHERE returned_utc < ?", (cutoff,)).rowcount
        n += conn.execute("DELETE FROM remote_loans WHERE returned_utc IS NOT NULL AND returned_utc < ?",
                          (cutoff,)).rowcount
    return n


# --- effects of the other bookcases' events ------------------------------------------------------

def _local_times(conn: sqlite3.Connection, item: str) -> list[str]:
    """UTC times of every loan and return of ``item`` at this bookcase."""
    rows = conn.execute("SELECT loaned_at FROM loans WHERE item_id = ? UNION ALL "
                        "SELECT returned_at FROM returns WHERE item_id = ?", (item, item))
    return [utc(t) for (t,) in rows if t]


def remote_loan(conn: sqlite3.Connection, event: dict) -> str:
    """A loan made at another bookcase. Returns what it changed, in words for the log."""
    item, at, at_utc = event["item"], event["ts"], utc(event["ts"])
    later = [t for (t,) in conn.execute(
        "SELECT returned_utc FROM remote_returns WHERE item_id = ? AND returned_utc > ? UNION ALL "
        "SELECT loaned_utc FROM remote_loans WHERE item_id = ? AND loaned_utc > ?", (item, at_utc, item, at_utc))]
    later += [t for t in _local_times(conn, item) if t > at_utc]
    ended = min(later) if later else None
    conn.execute("INSERT OR IGNORE INTO remote_loans (event_id, bookcase, item_id, patron_key, loaned_at, "
                 "loaned_utc, due_at, returned_utc, closed_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                 (event["id"], event["bookcase"], item, event["patron"], at, at_utc, event.get("due"), ended,
                  "later event" if ended else None))
    # The item was evidently back on a shelf before this loan: earlier loans of it have ended.
    conn.execute("UPDATE remote_loans SET returned_utc = ?, closed_by = ? WHERE item_id = ? AND returned_utc IS NULL "
                 "AND loaned_utc < ? AND event_id != ?", (at_utc, event["id"], item, at_utc, event["id"]))
    closed_here = _close_local_loan(conn, item, at, at_utc, event["id"])
    if ended:
        return f"loan of {item} at {event['bookcase']} recorded, already ended by a later event"
    if closed_here:
        return f"loan of {item} at {event['bookcase']} recorded; it ends the loan of that item made here"
    return f"loan of {item} at {event['bookcase']} recorded: it counts against the patron's limit here"


def remote_return(conn: sqlite3.Connection, event: dict) -> str:
    """A return at another bookcase: ends the item's open loan, made here or anywhere else."""
    item, at, at_utc = event["item"], event["ts"], utc(event["ts"])
    conn.execute("INSERT OR IGNORE INTO remote_returns (event_id, bookcase, item_id, returned_utc) VALUES (?, ?, ?, ?)",
                 (event["id"], event["bookcase"], item, at_utc))
    n = conn.execute("UPDATE remote_loans SET returned_utc = ?, closed_by = ? WHERE item_id = ? "
                     "AND returned_utc IS NULL AND loaned_utc <= ?", (at_utc, event["id"], item, at_utc)).rowcount
    if _close_local_loan(conn, item, at, at_utc, event["id"]):
        return f"return of {item} at {event['bookcase']} closed the loan made here"
    if n:
        return f"return of {item} at {event['bookcase']} closed its loan from another bookcase"
    return f"return of {item} at {event['bookcase']} noted (no open loan of it known here)"


def _close_local_loan(conn: sqlite3.Connection, item: str, at: str, at_utc: str, event_id: str) -> bool:
    row = conn.execute("SELECT id, loaned_at FROM loans WHERE item_id = ? AND returned_at IS NULL", (item,)).fetchone()
    if row is None or utc(row[1]) > at_utc:
        return False
    conn.execute("UPDATE loans SET returned_at = ?, return_id = ? WHERE id = ?", (at, event_id, row[0]))
    return True


def close_remote_loans(conn: sqlite3.Connection, item_ids: Iterable[str | None], at: str) -> int:
    """A loan or return of these items here ends their open loans made at other bookcases before ``at``."""
    at_utc, n = utc(at), 0
    for item in {i for i in item_ids if i}:
        n += conn.execute("UPDATE remote_loans SET returned_utc = ?, closed_by = ? WHERE item_id = ? "
                          "AND returned_utc IS NULL AND loaned_utc <= ?", (at_utc, LOCAL, item, at_utc)).rowcount
    return n


def open_remote_loans(db: sqlite_utils.Database, patron_key: str) -> int:
    return db.execute("SELECT COUNT(*) FROM remote_loans WHERE patron_key = ? AND returned_utc IS NULL",
                      (patron_key,)).fetchone()[0]


# --- holdings, patrons and the gateway's answers ---------------------------------------------------

def replace_holdings(conn: sqlite3.Connection, msg: dict) -> bool:
    """Another bookcase's retained holdings; False if an older message than the one we have."""
    bookcase, ts = msg["bookcase"], utc(msg["ts"])
    row = conn.execute("SELECT holdings_ts FROM peers WHERE bookcase = ?", (bookcase,)).fetchone()
    if row and row[0] and row[0] > ts:
        return False
    before = search_index.titles_of(conn, bookcase)
    conn.execute("DELETE FROM remote_holdings WHERE bookcase = ?", (bookcase,))
    conn.executemany("INSERT OR REPLACE INTO remote_holdings (bookcase, item_id, title, door) VALUES (?, ?, ?, ?)",
                     [(bookcase, i["item"], i.get("title"), i.get("door")) for i in msg["items"]])
    conn.execute("INSERT INTO peers (bookcase, name, holdings_ts, holdings_count, updated) VALUES (?, ?, ?, ?, ?) "
                 "ON CONFLICT(bookcase) DO UPDATE SET name = excluded.name, holdings_ts = excluded.holdings_ts, "
                 "holdings_count = excluded.holdings_count, updated = excluded.updated",
                 (bookcase, msg.get("name"), ts, len(msg["items"]), now_iso()))
    search_index.holdings_changed(conn, msg, before)      # the find-a-book index, in the same transaction
    return True


def upsert_patron(conn: sqlite3.Connection, msg: dict) -> None:
    """The library's word on a patron (the cache row Store.upsert_patrons writes; the card hint is kept)."""
    conn.execute("INSERT INTO patrons (patron_key, patron_class, status, loans_elsewhere, card_hint, updated) "
                 "VALUES (?, ?, ?, ?, '', ?) ON CONFLICT(patron_key) DO UPDATE SET "
                 "patron_class = excluded.patron_class, status = excluded.status, "
                 "loans_elsewhere = excluded.loans_elsewhere, updated = excluded.updated",
                 (msg["patron"], msg["patron_class"], msg["status"], msg["loans_elsewhere"], now_iso()))


def gateway_results(conn: sqlite3.Connection, results: list[dict]) -> tuple[int, int, list[str]]:
    """Record the gateway's answer on each outbox row: (applied, rejected, words for each rejection)."""
    applied, rejected, why = 0, 0, []
    for r in results:
        verdict = "applied" if r["status"] != "rejected" else "rejected: " + (r.get("reason") or "no reason given")
        conn.execute("UPDATE outbox SET gateway = ? WHERE id = ?", (verdict, r["event"]))
        if r.get("due") and r["status"] != "rejected":
            _library_due(conn, r["event"], r["due"])
        if r["status"] == "rejected":
            rejected += 1
            why.append(f"event {r['event'][:8]} (seq {r.get('seq', '?')}): {r.get('reason') or 'no reason given'}")
        else:
            applied += 1
    return applied, rejected, why


def _library_due(conn: sqlite3.Connection, event_id: str, due: str) -> None:
    """The library system's due date for one of our loans (it sets its own, e.g. for a loan replayed late)."""
    row = conn.execute("SELECT payload FROM outbox WHERE id = ? AND type = 'loan'", (event_id,)).fetchone()
    if row is None:
        return
    loan = json.loads(row[0])
    if conn.execute("UPDATE loans SET due_at = ? WHERE session_id = ? AND item_id = ? AND due_at != ?",
                    (due, loan.get("session"), loan.get("item"), due)).rowcount:
        LOGGER.info("the library set the due date of %s to %s", loan.get("item"), due)


# --- what the other bookcases hold ---------------------------------------------------------------

def where_else(db: sqlite_utils.Database, text: str, limit: int = 20) -> list[dict]:
    """Items at other bookcases whose item id is ``text`` or whose title contains it."""
    pattern = "%" + text.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    rows = db.execute(
        "SELECT h.bookcase, p.name, h.item_id, COALESCE(h.title, c.title, ''), h.door FROM remote_holdings h "
        "LEFT JOIN peers p ON p.bookcase = h.bookcase LEFT JOIN catalogue c ON c.item_id = h.item_id "
        "WHERE h.item_id = ? OR COALESCE(h.title, c.title, '') LIKE ? ESCAPE '\\' "
        "ORDER BY 4, h.bookcase, h.item_id LIMIT ?", (text.strip(), pattern, limit))
    return [{"bookcase": r[0], "name": r[1] or "", "item_id": r[2], "title": r[3], "door": r[4]} for r in rows]


def local_holdings(db: sqlite_utils.Database) -> list[dict]:
    """What this bookcase holds now, for its retained holdings message."""
    rows = db.execute("SELECT h.item_id, c.title, h.door, c.author, c.isbn, c.clc FROM holdings h LEFT JOIN "
                      "catalogue c ON c.item_id = h.item_id WHERE h.status = 'present' AND h.item_id IS NOT NULL "
                      "ORDER BY h.door, h.item_id")
    return [{"item": i, **({"title": t} if t else {}), "door": d,
             **{k: v for k, v in (("author", a), ("isbn", s if s and ISBN.fullmatch(s) else None), ("clc", c)) if v}}
            for i, t, d, a, s, c in rows]


# --- counters and the last sync, kept in meta ----------------------------------------------------

def load_meta(db: sqlite_utils.Database) -> tuple[dict[str, int], str | None]:
    rows = dict(db.execute("SELECT key, value FROM meta WHERE key IN ('sync:counters', 'sync:last_sync')"))
    try:
        counters = json.loads(rows.get("sync:counters") or "{}")
    except ValueError:
        counters = {}
    return {k: int(v) for k, v in counters.items() if isinstance(v, int)}, rows.get("sync:last_sync")


def save_meta(db: sqlite_utils.Database, counters: dict[str, int], last_sync: str | None) -> None:
    with transaction(db) as conn:
        conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('sync:counters', ?)",
                     (json.dumps(counters, sort_keys=True),))
        if last_sync:
            conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('sync:last_sync', ?)", (last_sync,))


def status(db: sqlite_utils.Database) -> dict:
    """Sync status for `kiosk sync status`: outbox, gateway answers, counters, other bookcases, remote loans."""
    counters, last_sync = load_meta(db)
    oldest = oldest_unsent(db)
    gateway = dict(db.execute("SELECT CASE WHEN gateway LIKE 'rejected%' THEN 'rejected' ELSE gateway END AS g, "
                              "COUNT(*) FROM outbox WHERE gateway IS NOT NULL GROUP BY g"))
    peers = [{"bookcase": r[0], "name": r[1] or "", "holdings": r[2], "holdings_ts": r[3]} for r in db.execute(
        "SELECT bookcase, name, holdings_count, holdings_ts FROM peers ORDER BY bookcase")]
    return {"outbox_depth": outbox_depth(db), "oldest_unsent": oldest, "last_sync": last_sync,
            "sent": db.execute("SELECT COUNT(*) FROM outbox WHERE sent IS NOT NULL").fetchone()[0],
            "gateway": gateway, "counters": counters, "peers": peers, "parked": parked(db),
            "remote_loans_open": db.execute(
                "SELECT COUNT(*) FROM remote_loans WHERE returned_utc IS NULL").fetchone()[0]}
