"""The private patron map in the journal: patron key -> ILS patron id, and the status the bookcases should know.

A row is ``dirty`` while what the bookcases were last sent (retained ``central/patron/<key>``) differs from it;
the publisher claims dirty rows, publishes, and clears the flag only if the row did not change meanwhile.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from gateway.journal.backends import Tx
from gateway.journal.core import JournalCore, now_iso


@dataclass(frozen=True)
class PatronRow:
    key: str
    ils_id: str
    patron_class: str
    status: str
    loans_elsewhere: int
    removed: bool = False


@dataclass(frozen=True)
class ImportCounts:
    added: int = 0
    changed: int = 0
    unchanged: int = 0
    removed: int = 0


_COLS = "key, ils_id, class, status, loans_elsewhere, removed"


class PatronJournal(JournalCore):

    def import_patrons(self, rows: list[PatronRow], full: bool) -> ImportCounts:
        """Upsert the library's export; with ``full``, patrons it no longer lists become "expired" (removed)."""
        def run(tx: Tx) -> ImportCounts:
            at = now_iso()
            existing = {r[0]: PatronRow(r[0], r[1], r[2], r[3], r[4], bool(r[5]))
                        for r in tx.execute(f"SELECT {_COLS} FROM patrons").fetchall()}
            added = changed = unchanged = removed = 0
            seen = set()
            for row in rows:
                seen.add(row.key)
                old = existing.get(row.key)
                if old is None:
                    tx.execute("INSERT INTO patrons (key, ils_id, class, status, loans_elsewhere, updated_at, dirty) "
                               "VALUES (?, ?, ?, ?, ?, ?, 1)", (row.key, row.ils_id, row.patron_class, row.status,
                                                                row.loans_elsewhere, at))
                    added += 1
                elif old == row:
                    unchanged += 1
                else:
                    tx.execute("UPDATE patrons SET ils_id = ?, class = ?, status = ?, loans_elsewhere = ?, removed = 0, "
                               "updated_at = ?, dirty = 1 WHERE key = ?",
                               (row.ils_id, row.patron_class, row.status, row.loans_elsewhere, at, row.key))
                    changed += 1
            if full:
                for key, old in existing.items():
                    if key not in seen and not old.removed:
                        tx.execute("UPDATE patrons SET status = 'expired', removed = 1, updated_at = ?, dirty = 1 "
                                   "WHERE key = ?", (at, key))
                        removed += 1
            return ImportCounts(added, changed, unchanged, removed)
        return self._write(run)

    def patron(self, key: str) -> PatronRow | None:
        row = self._read(lambda tx: tx.execute(f"SELECT {_COLS} FROM patrons WHERE key = ?", (key,)).fetchone())
        return PatronRow(row[0], row[1], row[2], row[3], row[4], bool(row[5])) if row else None

    def keys_of(self, ils_id: str) -> list[str]:
        return [k for (k,) in self._read(lambda tx: tx.execute(
            "SELECT key FROM patrons WHERE ils_id = ? ORDER BY key", (ils_id,)).fetchall())]

    def patrons(self) -> list[PatronRow]:
        return [PatronRow(r[0], r[1], r[2], r[3], r[4], bool(r[5])) for r in self._read(
            lambda tx: tx.execute(f"SELECT {_COLS} FROM patrons ORDER BY key").fetchall())]

    def update_patron(self, key: str, status: str, loans_elsewhere: int) -> bool:
        """What the ILS now says of one key's patron; True if it changed (and is due for publishing)."""
        def run(tx: Tx) -> bool:
            cur = tx.execute("UPDATE patrons SET status = ?, loans_elsewhere = ?, updated_at = ?, dirty = 1 "
                             "WHERE key = ? AND removed = 0 AND (status <> ? OR loans_elsewhere <> ?)",
                             (status, loans_elsewhere, now_iso(), key, status, loans_elsewhere))
            tx.execute("UPDATE patrons SET checked_epoch = ? WHERE key = ?", (time.time(), key))
            return cur.rowcount == 1
        return self._write(run)

    def due_refresh(self, older_than_s: float, limit: int) -> list[str]:
        """ILS patron ids not asked about for ``older_than_s``, the longest-unasked first (those a loan or return
        touched and nobody asked about since before all)."""
        cutoff = time.time() - older_than_s
        return [r[0] for r in self._read(lambda tx: tx.execute(
            "SELECT ils_id FROM patrons WHERE removed = 0 AND (checked_epoch IS NULL OR checked_epoch < ?) "
            "GROUP BY ils_id ORDER BY MIN(COALESCE(checked_epoch, 0)) LIMIT ?", (cutoff, limit)).fetchall())]

    def claim_dirty(self, owner: str, limit: int, lease_s: float = 30.0) -> list[PatronRow]:
        """Patron rows to publish, ours for ``lease_s`` (another gateway skips them meanwhile)."""
        def run(tx: Tx) -> list[PatronRow]:
            now = time.time()
            rows = tx.execute(f"SELECT {_COLS} FROM patrons WHERE dirty = 1 AND (publish_lease IS NULL OR "
                              f"publish_lease < ?) ORDER BY key LIMIT ?"
                              + (" FOR UPDATE SKIP LOCKED" if self.backend.kind == "postgresql" else ""),
                              (now, limit)).fetchall()
            for r in rows:
                tx.execute("UPDATE patrons SET publish_owner = ?, publish_lease = ? WHERE key = ?",
                           (owner, now + lease_s, r[0]))
            return [PatronRow(r[0], r[1], r[2], r[3], r[4], bool(r[5])) for r in rows]
        return self._write(run)

    def mark_published(self, rows: list[PatronRow], owner: str) -> None:
        """Published and acknowledged by the broker: clean, unless the row changed in the meantime."""
        def run(tx: Tx) -> None:
            at = now_iso()
            for r in rows:
                tx.execute("UPDATE patrons SET dirty = CASE WHEN class = ? AND status = ? AND loans_elsewhere = ? "
                           "THEN 0 ELSE dirty END, published = ?, published_at = ?, publish_owner = NULL, "
                           "publish_lease = NULL WHERE key = ? AND publish_owner = ?",
                           (r.patron_class, r.status, r.loans_elsewhere, f"{r.patron_class}|{r.status}|"
                            f"{r.loans_elsewhere}", at, r.key, owner))
        self._write(run)

    def release_published(self, rows: list[PatronRow], owner: str) -> None:
        self._write(lambda tx: [tx.execute("UPDATE patrons SET publish_owner = NULL, publish_lease = NULL "
                                           "WHERE key = ? AND publish_owner = ?", (r.key, owner)) for r in rows])

    def open_bookcase_loans(self, key: str) -> int:
        """Loans made at a bookcase by this patron key, applied, and not ended by a later loan or return."""
        return self._read(lambda tx: tx.execute(
            "SELECT COUNT(*) FROM events e WHERE e.type = 'loan' AND e.patron = ? AND e.state = 'applied' "
            "AND NOT EXISTS (SELECT 1 FROM events l WHERE l.item = e.item AND l.type IN ('loan', 'return') "
            "AND l.state IN ('applied', 'informational') AND (l.ts_utc, l.bookcase, l.seq) > "
            "(e.ts_utc, e.bookcase, e.seq))", (key,)).fetchone()[0])
