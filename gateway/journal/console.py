"""The journal's part for the operators' console: staff accounts, sessions, the audit log, alarms and figures.

Accounts keep an argon2 hash (kiosk never sees them); a session's cookie token is stored as its SHA-256, so a copy
of the journal opens no session. Every staff action goes to ``console_audit`` (who, when, what, on what).
Alarms are the bookcases' ``alarm`` events: open until an ``alarm_cleared`` of the same kind and door comes from
the same bookcase; an operator's acknowledgement is recorded beside, it does not clear the alarm.
"""

from __future__ import annotations

import json
import time

from gateway.journal.backends import Tx
from gateway.journal.core import JournalCore, now_iso

ROLES = ("viewer", "operator")


def _rows(cur) -> list[dict]:
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row)) for row in cur.fetchall()]


def _masked(patron: str | None) -> str:
    return (patron or "")[:6] + "…" if patron else ""


class ConsoleJournal(JournalCore):

    # --- accounts and sessions -------------------------------------------------------------------------------

    def user_set(self, name: str, password_hash: str, role: str) -> bool:
        """Add a staff account or change its password and role; True if it existed."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}")

        def run(tx: Tx) -> bool:
            known = tx.execute("SELECT 1 FROM console_users WHERE name = ?", (name,)).fetchone() is not None
            tx.execute("INSERT INTO console_users (name, password_hash, role, created_at) VALUES (?, ?, ?, ?) "
                       "ON CONFLICT (name) DO UPDATE SET password_hash = excluded.password_hash, role = excluded.role, "
                       "disabled = 0", (name, password_hash, role, now_iso()))
            if known:       # a new password ends every session of the account
                tx.execute("DELETE FROM console_sessions WHERE name = ?", (name,))
            return known
        return self._write(run)

    def user_remove(self, name: str) -> bool:
        def run(tx: Tx) -> bool:
            tx.execute("DELETE FROM console_sessions WHERE name = ?", (name,))
            return tx.execute("DELETE FROM console_users WHERE name = ?", (name,)).rowcount > 0
        return self._write(run)

    def user(self, name: str) -> dict | None:
        rows = self._read(lambda tx: _rows(tx.execute(
            "SELECT name, password_hash, role, created_at, disabled FROM console_users WHERE name = ?", (name,))))
        return rows[0] if rows else None

    def users(self) -> list[dict]:
        return self._read(lambda tx: _rows(tx.execute(
            "SELECT name, role, created_at, disabled FROM console_users ORDER BY name")))

    def session_open(self, token_hash: str, name: str, csrf: str, ttl_s: float) -> None:
        now = time.time()
        self._write(lambda tx: (
            tx.execute("DELETE FROM console_sessions WHERE expires_epoch < ?", (now,)),
            tx.execute("INSERT INTO console_sessions (token_hash, name, csrf, created_epoch, expires_epoch) "
                       "VALUES (?, ?, ?, ?, ?)", (token_hash, name, csrf, now, now + ttl_s))))

    def session(self, token_hash: str) -> dict | None:
        """The live session of ``token_hash``: name, role, csrf; None if unknown, expired or its account gone."""
        rows = self._read(lambda tx: _rows(tx.execute(
            "SELECT s.name, u.role, s.csrf FROM console_sessions s JOIN console_users u ON u.name = s.name "
            "WHERE s.token_hash = ? AND s.expires_epoch > ? AND u.disabled = 0", (token_hash, time.time()))))
        return rows[0] if rows else None

    def session_close(self, token_hash: str) -> None:
        self._write(lambda tx: tx.execute("DELETE FROM console_sessions WHERE token_hash = ?", (token_hash,)))

    def audit(self, who: str, action: str, target: str = "", detail: str = "") -> None:
        self._write(lambda tx: tx.execute(
            "INSERT INTO console_audit (at, who, action, target, detail) VALUES (?, ?, ?, ?, ?)",
            (now_iso(), who, action, target[:200] or None, detail[:1000] or None)))

    def audit_log(self, limit: int = 100) -> list[dict]:
        return self._read(lambda tx: _rows(tx.execute(
            "SELECT at, who, action, target, detail FROM console_audit ORDER BY n DESC LIMIT ?", (limit,))))

    # --- alarms ----------------------------------------------------------------------------------------------

    def alarms(self, bookcase: str | None = None, limit: int = 200, open_only: bool = False) -> list[dict]:
        """Alarms newest first: kind, door, when, whether still open (no later clear) and who acknowledged it."""
        where, params = ("AND e.bookcase = ? ", (bookcase,)) if bookcase else ("", ())

        def run(tx: Tx) -> list[dict]:
            rows = _rows(tx.execute(
                "SELECT e.id, e.bookcase, e.ts, e.ts_utc, e.type, e.payload, a.who AS acked_by, a.at AS acked_at "
                "FROM events e LEFT JOIN alarm_acks a ON a.event_id = e.id "
                f"WHERE e.type IN ('alarm', 'alarm_cleared') {where}ORDER BY e.ts_utc, e.seq", params))
            open_: dict[tuple, dict] = {}
            out: list[dict] = []
            for row in rows:
                body = json.loads(row.pop("payload"))
                key = (row["bookcase"], body.get("alarm"), body.get("door"))
                if row["type"] == "alarm_cleared":
                    cleared = open_.pop(key, None)
                    if cleared is not None:
                        cleared["open"], cleared["cleared_at"] = False, row["ts"]
                    continue
                alarm = {**row, "alarm": body.get("alarm", "?"), "door": body.get("door"), "open": True,
                         "cleared_at": None, "detail": {k: v for k, v in body.items() if k in (
                             "device", "message", "seconds", "free_mb", "tries")}}
                open_[key] = alarm
                out.append(alarm)
            out.reverse()
            if open_only:
                out = [a for a in out if a["open"]]
            return out[:limit]
        return self._read(run)

    def alarm_ack(self, event_id: str, who: str, note: str = "") -> bool:
        """Acknowledge an alarm; False if there is no such alarm."""
        def run(tx: Tx) -> bool:
            if tx.execute("SELECT 1 FROM events WHERE id = ? AND type = 'alarm'", (event_id,)).fetchone() is None:
                return False
            tx.execute("INSERT INTO alarm_acks (event_id, who, at, note) VALUES (?, ?, ?, ?) "
                       "ON CONFLICT (event_id) DO NOTHING", (event_id, who, now_iso(), note or None))
            return True
        return self._write(run)

    # --- figures ---------------------------------------------------------------------------------------------

    def day_counts(self, since: str, since_utc: str | None = None) -> list[dict]:
        """Loans and returns per bookcase per day (the bookcase's local date) from ``since`` (YYYY-MM-DD);
        ``since_utc`` (that day's start in UTC, as ``ts_utc`` is written) lets the index find them."""
        return self._read(lambda tx: _rows(tx.execute(
            "SELECT bookcase, substr(ts, 1, 10) AS day, "
            "SUM(CASE WHEN type = 'loan' THEN 1 ELSE 0 END) AS loans, "
            "SUM(CASE WHEN type = 'return' THEN 1 ELSE 0 END) AS returns "
            "FROM events WHERE type IN ('loan', 'return') AND ts_utc >= ? AND substr(ts, 1, 10) >= ? "
            "GROUP BY bookcase, substr(ts, 1, 10) ORDER BY day, bookcase", (since_utc or "", since))))

    def hour_counts(self, since: str, since_utc: str | None = None) -> list[dict]:
        """Loans and returns by hour of the day (local), over every bookcase, from ``since``."""
        return self._read(lambda tx: _rows(tx.execute(
            "SELECT substr(ts, 12, 2) AS hour, COUNT(*) AS n FROM events WHERE type IN ('loan', 'return') "
            "AND ts_utc >= ? AND substr(ts, 1, 10) >= ? GROUP BY substr(ts, 12, 2) ORDER BY hour",
            (since_utc or "", since))))

    def sessions_of(self, bookcase: str, limit: int = 30) -> list[dict]:
        """A bookcase's recent closed sessions: when, door, kind, the patron's key masked, loans/returns/missing."""
        def run(tx: Tx) -> list[dict]:
            rows = _rows(tx.execute(
                "SELECT ts, payload FROM events WHERE bookcase = ? AND type = 'session_closed' "
                "ORDER BY ts_utc DESC, seq DESC LIMIT ?", (bookcase, limit)))
            out = []
            for row in rows:
                body = json.loads(row["payload"])
                out.append({"ts": row["ts"], "door": body.get("door"), "kind": body.get("kind", "?"),
                            "patron": _masked(body.get("patron")), "loans": body.get("loans", 0),
                            "returns": body.get("returns", 0), "missing": body.get("missing", 0)})
            return out
        return self._read(run)

    def last_seen(self) -> dict[str, str]:
        """When the journal last heard from each bookcase."""
        return dict(self._read(lambda tx: tx.execute("SELECT bookcase, last_seen FROM bookcases").fetchall()))
