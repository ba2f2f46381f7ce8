"""The journal's schema, in versions; ``schema_version`` holds the newest applied. One text for both databases:
``{serial}`` and ``{real}`` become each one's auto-numbered key and floating point column.

Times: ``*_at`` columns are ISO 8601 text for people; ``*_epoch``, ``hold_until`` and ``lease_until`` are Unix
seconds for the gateway's own arithmetic. ``ts_utc`` is the event's time in UTC as sortable text: each item's
events are applied in (ts_utc, bookcase, seq) order.
"""

from __future__ import annotations

import logging

from gateway.journal.backends import Backend, JournalError, Tx

LOGGER = logging.getLogger(__name__)

V1 = """
CREATE TABLE events (
    id TEXT PRIMARY KEY, bookcase TEXT NOT NULL, seq BIGINT NOT NULL, ts TEXT NOT NULL, ts_utc TEXT NOT NULL,
    type TEXT NOT NULL, item TEXT, patron TEXT, payload TEXT NOT NULL,
    -- received | held | sending | applied | informational | rejected | refused
    state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, uncertain INTEGER NOT NULL DEFAULT 0,
    hold_until {real}, hold_reason TEXT, owner TEXT, lease_until {real},
    reason TEXT, screen_message TEXT, due TEXT, note TEXT,
    received_at TEXT NOT NULL, received_epoch {real} NOT NULL, received_by TEXT, done_at TEXT, done_epoch {real},
    acked_at TEXT, ack_owner TEXT, ack_lease {real}, duplicates INTEGER NOT NULL DEFAULT 0,
    -- the review queue: open for a rejection, resolved by staff
    review TEXT, resolved_by TEXT, resolved_at TEXT, resolution TEXT
);
CREATE INDEX events_todo ON events (ts_utc, bookcase, seq) WHERE state IN ('received', 'held', 'sending');
CREATE INDEX events_item ON events (item, ts_utc, bookcase, seq);
CREATE INDEX events_bookcase_seq ON events (bookcase, seq);
CREATE INDEX events_unacked ON events (bookcase, done_epoch) WHERE acked_at IS NULL AND done_epoch IS NOT NULL;
CREATE INDEX events_patron ON events (patron) WHERE type = 'loan';
CREATE INDEX events_review ON events (review) WHERE review IS NOT NULL;
CREATE INDEX events_type_time ON events (type, received_epoch);
-- Messages on the event topic that are no event at all (not JSON, no id): kept for the operators.
CREATE TABLE refused (n {serial}, received_at TEXT NOT NULL, topic TEXT NOT NULL, bookcase TEXT,
                      reason TEXT NOT NULL, detail TEXT, excerpt TEXT, received_by TEXT);
-- Per bookcase: every seq up to contiguous_seq is in the journal (later ones wait for a gap to fill).
CREATE TABLE bookcases (bookcase TEXT PRIMARY KEY, contiguous_seq BIGINT NOT NULL, last_seen TEXT);
-- Every SIP2 request the gateway made, and what the ILS answered (ok NULL: no answer).
CREATE TABLE sip_log (n {serial}, event_id TEXT, at TEXT NOT NULL, gateway TEXT, command TEXT NOT NULL,
                      item TEXT, ok INTEGER, screen_message TEXT, detail TEXT);
CREATE INDEX sip_log_event ON sip_log (event_id);
-- Staff's actions on the review queue, and the rejections that put events there.
CREATE TABLE reviews (n {serial}, event_id TEXT NOT NULL, at TEXT NOT NULL, action TEXT NOT NULL,
                      who TEXT NOT NULL, note TEXT);
CREATE INDEX reviews_event ON reviews (event_id);
-- The private patron map: patron key (HMAC of a card number or UID) -> the ILS's patron id, the status the
-- bookcases should know, whether it changed since it was last published (dirty), and what was.
CREATE TABLE patrons (key TEXT PRIMARY KEY, ils_id TEXT NOT NULL, class TEXT NOT NULL, status TEXT NOT NULL,
                      loans_elsewhere INTEGER NOT NULL DEFAULT 0, removed INTEGER NOT NULL DEFAULT 0,
                      updated_at TEXT NOT NULL, checked_epoch {real}, dirty INTEGER NOT NULL DEFAULT 1,
                      published TEXT, published_at TEXT, publish_owner TEXT, publish_lease {real});
CREATE INDEX patrons_ils ON patrons (ils_id);
CREATE INDEX patrons_dirty ON patrons (key) WHERE dirty = 1;
CREATE INDEX patrons_checked ON patrons (checked_epoch);
-- Each gateway process: its heartbeat and what it knows of the ILS and the broker.
CREATE TABLE gateways (id TEXT PRIMARY KEY, started_at TEXT NOT NULL, heartbeat_at TEXT NOT NULL,
                       heartbeat_epoch {real} NOT NULL, version TEXT, info TEXT)
"""

V2_CONSOLE = """
-- The operators' console: staff accounts (argon2 hashes), their sessions (the cookie's token is kept hashed),
-- what each of them did, and who acknowledged which alarm.
CREATE TABLE console_users (name TEXT PRIMARY KEY, password_hash TEXT NOT NULL, role TEXT NOT NULL,
                            created_at TEXT NOT NULL, disabled INTEGER NOT NULL DEFAULT 0);
CREATE TABLE console_sessions (token_hash TEXT PRIMARY KEY, name TEXT NOT NULL, csrf TEXT NOT NULL,
                               created_epoch {real} NOT NULL, expires_epoch {real} NOT NULL);
CREATE TABLE console_audit (n {serial}, at TEXT NOT NULL, who TEXT NOT NULL, action TEXT NOT NULL,
                            target TEXT, detail TEXT);
CREATE TABLE alarm_acks (event_id TEXT PRIMARY KEY, who TEXT NOT NULL, at TEXT NOT NULL, note TEXT);
CREATE INDEX events_alarms ON events (bookcase, type, received_epoch) WHERE type IN ('alarm', 'alarm_cleared');
CREATE INDEX events_type_ts ON events (type, ts_utc)
"""

MIGRATIONS = [V1, V2_CONSOLE]


def migrate(backend: Backend) -> int:
    """Bring the journal to the newest version, each version in its own transaction; returns that version."""
    with backend.tx() as tx:
        backend.migration_lock(tx)
        tx.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        if tx.execute("SELECT version FROM schema_version").fetchone() is None:
            tx.execute("INSERT INTO schema_version (version) VALUES (0)")
    latest = len(MIGRATIONS)
    for version in range(1, latest + 1):
        with backend.tx() as tx:
            backend.migration_lock(tx)
            current = _version(tx)
            if current > latest:
                raise JournalError(f"{backend.describe()}: schema version {current} is newer than this gateway "
                                   f"understands ({latest}); install the newer gateway or restore a backup")
            if current >= version:
                continue
            for statement in MIGRATIONS[version - 1].split(";"):
                if statement.strip():
                    tx.execute(statement.format(serial=backend.serial, real=backend.real))
            tx.execute("UPDATE schema_version SET version = ?", (version,))
        LOGGER.info("%s migrated to schema version %d", backend.describe(), version)
    return latest


def _version(tx: Tx) -> int:
    return tx.execute("SELECT version FROM schema_version").fetchone()[0]
