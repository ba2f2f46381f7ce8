"""The journal's views for people: the review queue (staff retry or resolve a rejection), acks due, status.

Each staff action is kept in ``reviews`` with who and when; a patron's key is shown shortened, never a card.
"""

from __future__ import annotations

import json
import time

from gateway.journal.backends import Tx
from gateway.journal.core import ASK_SOON, JournalCore, now_iso


class ReviewError(ValueError):
    """A review action that cannot be done; the message says why."""


class ReviewJournal(JournalCore):

    # --- the review queue ------------------------------------------------------------------------------

    def review_list(self, everything: bool = False) -> list[dict]:
        """Rejected events still to be looked at (``everything``: resolved ones too), oldest first, with history."""
        where = "review IS NOT NULL" if everything else "review IN ('open', 'retrying')"

        def run(tx: Tx) -> list[dict]:
            cur = tx.execute("SELECT id, bookcase, seq, ts, type, item, patron, state, reason, screen_message, "
                             "attempts, review, resolved_by, resolved_at, resolution, done_at, note, payload "
                             "FROM events "
                             f"WHERE {where} ORDER BY done_epoch, id")
            names = [d[0] for d in cur.description]
            out = [dict(zip(names, row)) for row in cur.fetchall()]
            for item in out:
                item["patron"] = (item["patron"] or "")[:8] + ("…" if item["patron"] else "")
                item["history"] = [{"at": a, "action": b, "who": c, "note": d} for a, b, c, d in tx.execute(
                    "SELECT at, action, who, note FROM reviews WHERE event_id = ? ORDER BY n", (item["id"],))]
            return out
        return self._read(run)

    def _find(self, tx: Tx, event_id: str) -> tuple[str, str, str | None]:
        rows = tx.execute("SELECT id, state, review FROM events WHERE id = ? OR id LIKE ?",
                          (event_id, event_id + "%")).fetchall()
        if not rows:
            raise ReviewError(f"no event {event_id!r} in the journal")
        if len(rows) > 1:
            raise ReviewError(f"{event_id!r} is the start of {len(rows)} event ids: give more of it")
        return rows[0]

    def review_retry(self, event_id: str, who: str, note: str = "") -> str:
        """Send a rejected event to the ILS again (staff fixed the cause). Returns the full event id."""
        def run(tx: Tx) -> str:
            full, state, review = self._find(tx, event_id)
            if state != "rejected":
                raise ReviewError(f"event {full} is {state}, not rejected: nothing to retry")
            tx.execute("UPDATE events SET state = 'received', review = 'retrying', hold_until = NULL, "
                       "hold_reason = NULL, uncertain = 0, done_at = NULL, done_epoch = NULL WHERE id = ?", (full,))
            tx.execute("INSERT INTO reviews (event_id, at, action, who, note) VALUES (?, ?, 'retry', ?, ?)",
                       (full, now_iso(), who, note or None))
            return full
        return self._write(run)

    def review_resolve(self, event_id: str, who: str, note: str) -> str:
        """Close a rejection by hand (e.g. corrected at the desk), with a note saying how."""
        if not note.strip():
            raise ReviewError("say how it was resolved (--note): the next person to look will want to know")

        def run(tx: Tx) -> str:
            full, state, review = self._find(tx, event_id)
            if review not in ("open", "retrying"):
                raise ReviewError(f"event {full} is not in the review queue ({state}"
                                  f"{', ' + review if review else ''})")
            at = now_iso()
            tx.execute("UPDATE events SET review = 'resolved', resolved_by = ?, resolved_at = ?, resolution = ? "
                       "WHERE id = ?", (who, at, note, full))
            tx.execute("INSERT INTO reviews (event_id, at, action, who, note) VALUES (?, ?, 'resolve', ?, ?)",
                       (full, at, who, note))
            return full
        return self._write(run)

    # --- acks ------------------------------------------------------------------------------------------

    def claim_acks(self, owner: str, limit: int, lease_s: float = 30.0) -> list[dict]:
        """Finished events whose ack is due, ours for ``lease_s``, grouped by bookcase."""
        def run(tx: Tx) -> list[dict]:
            now = time.time()
            cur = tx.execute(
                "SELECT e.id, e.bookcase, e.seq, e.type, e.state, e.reason, e.due FROM events e "
                "WHERE e.acked_at IS NULL AND e.done_epoch IS NOT NULL AND (e.ack_lease IS NULL OR e.ack_lease < ?) "
                "ORDER BY e.bookcase, e.done_epoch LIMIT ?" + self.backend.skip_locked, (now, limit))
            names = [d[0] for d in cur.description]
            rows = [dict(zip(names, r)) for r in cur.fetchall()]
            for r in rows:
                tx.execute("UPDATE events SET ack_owner = ?, ack_lease = ? WHERE id = ?", (owner, now + lease_s,
                                                                                          r["id"]))
            return rows
        return self._write(run)

    def mark_acked(self, ids: list[str], owner: str) -> None:
        def run(tx: Tx) -> None:
            at = now_iso()
            for event_id in ids:
                tx.execute("UPDATE events SET acked_at = ?, ack_owner = NULL, ack_lease = NULL "
                           "WHERE id = ? AND ack_owner = ?", (at, event_id, owner))
        self._write(run)

    def release_acks(self, ids: list[str], owner: str) -> None:
        self._write(lambda tx: [tx.execute("UPDATE events SET ack_lease = NULL, ack_owner = NULL WHERE id = ? AND "
                                           "ack_owner = ?", (i, owner)) for i in ids])

    # --- status ----------------------------------------------------------------------------------------

    def heartbeat(self, gateway: str, started_at: str, version: str, info: dict) -> None:
        self._write(lambda tx: tx.execute(
            "INSERT INTO gateways (id, started_at, heartbeat_at, heartbeat_epoch, version, info) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET started_at = excluded.started_at, "
            "heartbeat_at = excluded.heartbeat_at, heartbeat_epoch = excluded.heartbeat_epoch, "
            "version = excluded.version, info = excluded.info",
            (gateway, started_at, now_iso(), time.time(), version, json.dumps(info, sort_keys=True))))

    def backlog(self) -> dict:
        """Loans and returns not yet applied: how many, and how long the oldest has waited."""
        def run(tx: Tx) -> dict:
            counts = dict(tx.execute("SELECT state, COUNT(*) FROM events WHERE state IN ('received', 'held', "
                                     "'sending') GROUP BY state").fetchall())
            oldest = tx.execute("SELECT MIN(received_epoch) FROM events WHERE state IN ('received', 'held', "
                                "'sending')").fetchone()[0]
            unacked = tx.execute("SELECT COUNT(*) FROM events WHERE acked_at IS NULL AND done_epoch IS NOT NULL"
                                 ).fetchone()[0]
            review = tx.execute("SELECT COUNT(*) FROM events WHERE review IN ('open', 'retrying')").fetchone()[0]
            return {"depth": sum(counts.values()), "received": counts.get("received", 0),
                    "held": counts.get("held", 0), "sending": counts.get("sending", 0),
                    "oldest_age_s": round(time.time() - oldest, 1) if oldest else None,
                    "acks_due": unacked, "review_open": review}
        return self._read(run)

    def status(self) -> dict:
        """Everything `citybook-gateway status` shows."""
        def run(tx: Tx) -> dict:
            states = dict(tx.execute("SELECT state, COUNT(*) FROM events GROUP BY state").fetchall())
            gateways = [{"id": g, "started_at": s, "heartbeat_at": h, "heartbeat_age_s": round(time.time() - e, 1),
                         "version": v, **json.loads(i or "{}")} for g, s, h, e, v, i in tx.execute(
                "SELECT id, started_at, heartbeat_at, heartbeat_epoch, version, info FROM gateways ORDER BY id")]
            patrons = tx.execute("SELECT COUNT(*), COALESCE(SUM(dirty), 0), COALESCE(SUM(CASE WHEN checked_epoch = ? "
                                 "THEN 1 ELSE 0 END), 0) FROM patrons WHERE removed = 0", (ASK_SOON,)).fetchone()
            return {"journal": self.describe(), "events": states,
                    "refused_unreadable": tx.execute("SELECT COUNT(*) FROM refused").fetchone()[0],
                    "bookcases": tx.execute("SELECT COUNT(*) FROM bookcases").fetchone()[0],
                    "patrons": {"keys": patrons[0], "to_publish": int(patrons[1]), "to_ask": int(patrons[2])},
                    "gateways": gateways}
        out = self._read(run)
        out["backlog"] = self.backlog()
        return out
