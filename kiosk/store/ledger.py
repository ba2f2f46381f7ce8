"""The bookcase's records: patrons, holdings, sessions, loans, returns and the outbox (the flow's Ledger)."""

from __future__ import annotations

import json
import logging
import sqlite3
import uuid
from pathlib import Path
from typing import Iterable

import sqlite_utils

from kiosk import clock
from kiosk.core.records import SessionRecord, Settlement
from kiosk.core.inventory import Holding
from kiosk.core.policy import Patron
from kiosk.store import replica
from kiosk.store.db import StoreError, connect, transaction

LOGGER = logging.getLogger(__name__)

EVENT_VERSION = 1


def _now() -> str:
    return clock.now_iso()          # the simulated time while a fleet simulator runs (kiosk.clock)


class Store:
    """SQLite-backed ledger. Only the core loop's thread writes; readers may use their own Store."""

    def __init__(self, path: Path | str, bookcase_id: str) -> None:
        self.path = Path(path)
        self.bookcase_id = bookcase_id
        self.db: sqlite_utils.Database = connect(self.path)

    def close(self) -> None:
        self.db.conn.close()

    # --- reference data -------------------------------------------------------------------------

    def upsert_patrons(self, patrons: Iterable[dict]) -> int:
        """Patron status from the library. Its word also restarts the patron's offline loan cap."""
        patrons = list(patrons)
        count = self._upsert("patrons", "patron_key", ("patron_class", "status", "loans_elsewhere", "card_hint"),
                             patrons, {"loans_elsewhere": 0, "card_hint": ""})
        with transaction(self.db) as conn:
            conn.executemany("UPDATE loans SET offline = 0 WHERE patron_key = ? AND offline = 1",
                             [(p["patron_key"],) for p in patrons])
        return count

    def upsert_catalogue(self, items: Iterable[dict]) -> int:
        return self._upsert("catalogue", "item_id", ("title", "author", "isbn", "clc"), items,
                            {"author": "", "isbn": "", "clc": ""})

    def _upsert(self, table: str, pk: str, columns: tuple[str, ...], rows: Iterable[dict], defaults: dict) -> int:
        now = _now()
        cols = (pk, *columns, "updated")
        sql = (f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))}) "
               f"ON CONFLICT({pk}) DO UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in cols[1:]))
        values = [tuple(row.get(c, defaults.get(c)) for c in cols[:-1]) + (now,) for row in rows]
        with transaction(self.db) as conn:
            conn.executemany(sql, values)
        return len(values)

    def place_holdings(self, door: int, items: Iterable[tuple[str, str | None]]) -> None:
        """Staff stocking: these (uid, item id) tags are in the door's compartment (only if not known yet)."""
        now = _now()
        with transaction(self.db) as conn:
            for uid, item_id in items:
                conn.execute("INSERT OR IGNORE INTO holdings (uid, door, item_id, status, origin, updated) "
                             "VALUES (?, ?, ?, 'present', 'present', ?)", (uid, door, item_id, now))
                conn.execute("INSERT OR IGNORE INTO tags (uid, item_id, usage, first_seen) VALUES (?, ?, 1, ?)",
                             (uid, item_id, now))

    # --- Ledger protocol ------------------------------------------------------------------------

    def patron(self, key: str) -> Patron | None:
        row = self.db.execute("SELECT patron_class, status, loans_elsewhere, card_hint FROM patrons "
                              "WHERE patron_key = ?", (key,)).fetchone()
        if row is None:
            return None
        return Patron(key=key, patron_class=row[0], status=row[1], loans_elsewhere=row[2] or 0,
                      card_hint=row[3] or "")

    def offline_loan_count(self, key: str) -> int:
        """Loans made here while offline since the library last confirmed the patron's status."""
        return self.db.execute("SELECT COUNT(*) FROM loans WHERE patron_key = ? AND offline = 1",
                               (key,)).fetchone()[0]

    def staff_pin_hash(self, key: str) -> str | None:
        row = self.db.execute("SELECT pin_hash FROM staff WHERE staff_key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_staff(self, key: str, pin_hash: str, name: str = "", card_hint: str = "") -> bool:
        """Register a staff card or change its PIN (and name); True if it was registered before."""
        with transaction(self.db) as conn:
            known = conn.execute("SELECT 1 FROM staff WHERE staff_key = ?", (key,)).fetchone() is not None
            conn.execute("INSERT INTO staff (staff_key, pin_hash, name, card_hint, updated) VALUES (?, ?, ?, ?, ?) "
                         "ON CONFLICT(staff_key) DO UPDATE SET pin_hash = excluded.pin_hash, "
                         "name = excluded.name, card_hint = excluded.card_hint, updated = excluded.updated",
                         (key, pin_hash, name, card_hint, _now()))
        return known

    def staff(self) -> list[dict]:
        """The staff cards: key, card hint, name, when last changed (never the PIN hash)."""
        return [dict(r) for r in self.db.query("SELECT staff_key, card_hint, name, updated FROM staff "
                                               "ORDER BY name, card_hint")]

    def remove_staff(self, key: str) -> bool:
        with transaction(self.db) as conn:
            return conn.execute("DELETE FROM staff WHERE staff_key = ?", (key,)).rowcount > 0

    def ecard_seen(self, token_id: str, expires_at: int, now: int) -> bool:
        """Remember an accepted e-card code until it expires; True if it was already used here."""
        with transaction(self.db) as conn:
            conn.execute("DELETE FROM ecard_used WHERE expires_at < ?", (now,))
            cur = conn.execute("INSERT OR IGNORE INTO ecard_used (token_id, expires_at) VALUES (?, ?)",
                               (token_id, expires_at))
            return cur.rowcount == 0

    def open_loan_count(self, key: str) -> int:
        # Loans made at other bookcases count too (kiosk.store.replica keeps them from the fleet's events).
        return self.db.execute("SELECT COUNT(*) FROM loans WHERE patron_key = ? AND returned_at IS NULL",
                               (key,)).fetchone()[0] + replica.open_remote_loans(self.db, key)

    def door_holdings(self, door: int) -> dict[str, Holding]:
        rows = self.db.execute("SELECT uid, item_id, status, origin FROM holdings WHERE door = ?", (door,))
        return {uid: Holding(uid, item_id, status, origin or status) for uid, item_id, status, origin in rows}

    def known_uids(self) -> frozenset[str]:
        return frozenset(uid for (uid,) in self.db.execute("SELECT uid FROM tags"))

    def item_ids(self, uids: Iterable[str]) -> dict[str, str | None]:
        found: dict[str, str | None] = {}
        uids = list(uids)
        for i in range(0, len(uids), 500):
            chunk = uids[i:i + 500]
            found.update(self.db.execute(
                f"SELECT uid, item_id FROM tags WHERE uid IN ({','.join('?' * len(chunk))})", chunk))
        return found

    def titles(self, item_ids: Iterable[str]) -> dict[str, str]:
        ids = list(item_ids)
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        return dict(self.db.execute(f"SELECT item_id, title FROM catalogue WHERE item_id IN ({marks})", ids))

    def open_session(self, record: SessionRecord, events: list[dict]) -> None:
        with transaction(self.db) as conn:
            conn.execute(
                "INSERT INTO sessions (id, kind, door, patron_key, card_hint, may_borrow, state, before_json, "
                "opened_at, offline) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (record.id, record.kind, record.door, record.patron_key, record.card_hint, record.may_borrow,
                 record.state, _holdings_json(record.before), record.opened_at, int(record.offline)))
            self._enqueue(conn, events)

    def set_session_state(self, session_id: str, state: str) -> None:
        with transaction(self.db) as conn:
            conn.execute("UPDATE sessions SET state = ? WHERE id = ?", (state, session_id))

    def open_sessions(self) -> list[SessionRecord]:
        rows = self.db.execute(
            "SELECT id, kind, door, state, before_json, opened_at, patron_key, card_hint, may_borrow, offline "
            "FROM sessions WHERE state != 'done' ORDER BY opened_at")
        return [SessionRecord(id=r[0], kind=r[1], door=r[2], state=r[3], before=_holdings_from_json(r[4]),
                              opened_at=r[5], patron_key=r[6], card_hint=r[7] or "", may_borrow=r[8] or 0,
                              offline=bool(r[9])) for r in rows]

    def doors_never_counted(self, doors: Iterable[int]) -> list[int]:
        counted = {k for (k,) in self.db.execute("SELECT key FROM meta WHERE key LIKE 'counted:door:%'")}
        return [d for d in doors if f"counted:door:{d}" not in counted]

    def settle(self, s: Settlement) -> None:
        record = s.session
        with transaction(self.db) as conn:
            state = conn.execute("SELECT state FROM sessions WHERE id = ?", (record.id,)).fetchone()
            if state is None or state[0] == "done":
                LOGGER.warning("session %s is already settled; ignoring a second settlement", record.id[:8])
                return
            for uid, info in s.tags.items():
                if not info.readable:
                    continue        # read again next time: the tag answered but its memory did not
                conn.execute("INSERT OR IGNORE INTO tags (uid, item_id, usage, error, first_seen) "
                             "VALUES (?, ?, ?, ?, ?)", (uid, info.item_id, info.usage, info.error, s.closed_at))
            for h in s.loans:
                self._close_open_loan(conn, h.item_id, None, s.closed_at)
                conn.execute("INSERT INTO loans (id, item_id, uid, patron_key, session_id, door, loaned_at, due_at, "
                             "offline) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                             (str(uuid.uuid4()), h.item_id, h.uid, record.patron_key, record.id, record.door,
                              s.closed_at, s.due_at, int(record.offline)))
            for h in s.returns:
                return_id = str(uuid.uuid4())
                loan_id = self._close_open_loan(conn, h.item_id, return_id, s.closed_at)
                conn.execute("INSERT INTO returns (id, item_id, uid, session_id, door, returned_at, loan_id) "
                             "VALUES (?, ?, ?, ?, ?, ?, ?)",
                             (return_id, h.item_id, h.uid, record.id, record.door, s.closed_at, loan_id))
            for h in s.missing:
                conn.execute("INSERT INTO missing (id, item_id, uid, session_id, door, noted_at) "
                             "VALUES (?, ?, ?, ?, ?, ?)",
                             (str(uuid.uuid4()), h.item_id, h.uid, record.id, record.door, s.closed_at))
            # A loan or return here ends any open loan of the same item made at another bookcase.
            replica.close_remote_loans(conn, (h.item_id for h in (*s.loans, *s.returns)), s.closed_at)
            conn.execute("DELETE FROM holdings WHERE door = ?", (record.door,))
            for h in s.after.values():
                # A tag moved here from another compartment leaves that compartment's holdings.
                conn.execute("INSERT OR REPLACE INTO holdings (uid, door, item_id, status, origin, updated) "
                             "VALUES (?, ?, ?, ?, ?, ?)",
                             (h.uid, record.door, h.item_id, h.status, h.origin, s.closed_at))
            conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                         (f"counted:door:{record.door}", s.closed_at))
            conn.execute("UPDATE sessions SET state = 'done', closed_at = ?, summary_json = ? WHERE id = ?",
                         (s.closed_at, json.dumps(s.summary), record.id))
            self._enqueue(conn, list(s.events))

    def _close_open_loan(self, conn: sqlite3.Connection, item_id: str | None, return_id: str | None,
                         at: str) -> str | None:
        row = conn.execute("SELECT id FROM loans WHERE item_id = ? AND returned_at IS NULL", (item_id,)).fetchone()
        if row is None:
            return None
        if return_id is None:
            LOGGER.warning("item %s left the bookcase while still on an earlier loan; closing that loan", item_id)
        conn.execute("UPDATE loans SET returned_at = ?, return_id = ? WHERE id = ?", (at, return_id, row[0]))
        return row[0]

    def record_events(self, events: list[dict]) -> None:
        with transaction(self.db) as conn:
            self._enqueue(conn, events)

    # --- outbox ---------------------------------------------------------------------------------

    def _enqueue(self, conn: sqlite3.Connection, events: list[dict]) -> None:
        for event in events:
            event_id = str(uuid.uuid4())
            created = _now()
            cur = conn.execute("INSERT INTO outbox (id, type, payload, created) VALUES (?, ?, '', ?)",
                               (event_id, event["type"], created))
            seq = cur.lastrowid
            payload = {"v": EVENT_VERSION, "id": event_id, "bookcase": self.bookcase_id, "seq": seq,
                       "ts": created, **event}
            conn.execute("UPDATE outbox SET payload = ? WHERE seq = ?",
                         (json.dumps(payload, ensure_ascii=False, sort_keys=True), seq))

    def outbox(self, unsent_only: bool = False) -> list[dict]:
        where = " WHERE sent IS NULL" if unsent_only else ""
        return [json.loads(p) for (p,) in self.db.execute(f"SELECT payload FROM outbox{where} ORDER BY seq")]

    def outbox_depth(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM outbox WHERE sent IS NULL").fetchone()[0]

    # --- views for the receipt, the logs and the tests ------------------------------------------

    def loans(self, open_only: bool = False) -> list[dict]:
        where = " WHERE returned_at IS NULL" if open_only else ""
        return [dict(r) for r in self.db.query(f"SELECT * FROM loans{where} ORDER BY loaned_at, item_id")]

    def returns(self) -> list[dict]:
        return [dict(r) for r in self.db.query("SELECT * FROM returns ORDER BY returned_at, item_id")]

    def missing(self) -> list[dict]:
        return [dict(r) for r in self.db.query("SELECT * FROM missing ORDER BY noted_at, uid")]

    def sessions(self) -> list[dict]:
        return [dict(r) for r in self.db.query("SELECT * FROM sessions ORDER BY opened_at")]

    def find(self, text: str, limit: int = 20) -> list[dict]:
        """Titles in this bookcase matching ``text`` (title, author or item id): item_id, title, author, door."""
        pattern = "%" + text.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        rows = self.db.execute(
            "SELECT c.item_id, c.title, c.author, h.door FROM holdings h JOIN catalogue c ON c.item_id = h.item_id "
            "WHERE h.status = 'present' AND (c.title LIKE ? ESCAPE '\\' OR c.author LIKE ? ESCAPE '\\' "
            "OR c.item_id LIKE ? ESCAPE '\\') ORDER BY c.title, h.door LIMIT ?", (pattern, pattern, pattern, limit))
        return [{"item_id": r[0], "title": r[1], "author": r[2], "door": r[3]} for r in rows]

    def where_else(self, text: str, limit: int = 20) -> list[dict]:
        """The fleet index: items at other bookcases with item id ``text`` or a title containing it:
        bookcase, name, item_id, title, door (from their retained holdings messages)."""
        return replica.where_else(self.db, text, limit)

    def holdings(self, door: int | None = None) -> list[dict]:
        if door is None:
            return [dict(r) for r in self.db.query("SELECT * FROM holdings ORDER BY door, uid")]
        return [dict(r) for r in self.db.query("SELECT * FROM holdings WHERE door = ? ORDER BY uid", [door])]


def _holdings_json(before: dict[str, Holding]) -> str:
    return json.dumps([[h.uid, h.item_id, h.status, h.origin] for h in before.values()])


def _holdings_from_json(text: str) -> dict[str, Holding]:
    try:
        return {row[0]: Holding(*row) for row in json.loads(text)}
    except (ValueError, TypeError, IndexError) as exc:
        raise StoreError(f"a session's saved before-inventory is damaged ({exc})") from None
