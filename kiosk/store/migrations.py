"""Schema migrations, in order; migration N brings the database to PRAGMA user_version N.

Plain SQL: each runs inside the migrating transaction, so a crash mid-migration leaves the old schema.
"""

from __future__ import annotations

import sqlite_utils

V1_INITIAL = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE catalogue (item_id TEXT PRIMARY KEY, title TEXT NOT NULL, author TEXT NOT NULL DEFAULT '',
                        updated TEXT);
-- What each tag's memory said, by UID: read once, never again.
CREATE TABLE tags (uid TEXT PRIMARY KEY, item_id TEXT, usage INTEGER, error TEXT, first_seen TEXT);
CREATE TABLE holdings (uid TEXT PRIMARY KEY, door INTEGER NOT NULL, item_id TEXT,
                       status TEXT NOT NULL CHECK (status IN ('present', 'uncertain')),
                       origin TEXT, updated TEXT NOT NULL);
CREATE INDEX holdings_door ON holdings(door);
CREATE INDEX holdings_item ON holdings(item_id);
CREATE TABLE patrons (patron_key TEXT PRIMARY KEY, patron_class TEXT NOT NULL, status TEXT NOT NULL,
                      loans_elsewhere INTEGER NOT NULL DEFAULT 0, card_hint TEXT, updated TEXT);
CREATE TABLE sessions (id TEXT PRIMARY KEY, kind TEXT NOT NULL, door INTEGER NOT NULL, patron_key TEXT,
                       card_hint TEXT, may_borrow INTEGER, state TEXT NOT NULL, before_json TEXT NOT NULL,
                       opened_at TEXT NOT NULL, closed_at TEXT, summary_json TEXT);
CREATE INDEX sessions_open ON sessions(state) WHERE state != 'done';
CREATE TABLE loans (id TEXT PRIMARY KEY, item_id TEXT NOT NULL, uid TEXT, patron_key TEXT NOT NULL,
                    session_id TEXT NOT NULL REFERENCES sessions(id), door INTEGER NOT NULL,
                    loaned_at TEXT NOT NULL, due_at TEXT NOT NULL, returned_at TEXT, return_id TEXT);
-- One open loan per item, and one loan of an item per session: a replayed settlement cannot double it.
CREATE UNIQUE INDEX loans_open_item ON loans(item_id) WHERE returned_at IS NULL;
CREATE UNIQUE INDEX loans_session_item ON loans(session_id, item_id);
CREATE INDEX loans_patron ON loans(patron_key) WHERE returned_at IS NULL;
CREATE TABLE returns (id TEXT PRIMARY KEY, item_id TEXT NOT NULL, uid TEXT,
                      session_id TEXT NOT NULL REFERENCES sessions(id), door INTEGER NOT NULL,
                      returned_at TEXT NOT NULL, loan_id TEXT);
CREATE UNIQUE INDEX returns_session_item ON returns(session_id, item_id);
CREATE TABLE missing (id TEXT PRIMARY KEY, item_id TEXT, uid TEXT NOT NULL,
                      session_id TEXT NOT NULL REFERENCES sessions(id), door INTEGER, noted_at TEXT NOT NULL);
CREATE UNIQUE INDEX missing_session_uid ON missing(session_id, uid);
CREATE TABLE outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, type TEXT NOT NULL,
                     payload TEXT NOT NULL, created TEXT NOT NULL, sent TEXT);
CREATE INDEX outbox_unsent ON outbox(seq) WHERE sent IS NULL;
CREATE TABLE inbox (id TEXT PRIMARY KEY, topic TEXT, received TEXT NOT NULL);
"""

V2_PATRONS_STAFF = """
-- Staff who may restock: keyed like patrons (HMAC of the card), with a salted PIN hash.
CREATE TABLE staff (staff_key TEXT PRIMARY KEY, pin_hash TEXT NOT NULL, name TEXT NOT NULL DEFAULT '',
                    updated TEXT);
-- E-card tokens already used here, kept until they expire: a replayed QR code is refused.
CREATE TABLE ecard_used (token_id TEXT PRIMARY KEY, expires_at INTEGER NOT NULL);
CREATE INDEX ecard_used_expiry ON ecard_used(expires_at);
-- Loans made while the bookcase could not reach the library count against the offline cap (offline = 1)
-- until the library next confirms the patron's status.
ALTER TABLE loans ADD COLUMN offline INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN offline INTEGER NOT NULL DEFAULT 0
"""

V3_FLEET = """
-- Loans made at other bookcases, from their event streams: open until a return anywhere closes them.
CREATE TABLE remote_loans (event_id TEXT PRIMARY KEY, bookcase TEXT NOT NULL, item_id TEXT NOT NULL,
                           patron_key TEXT NOT NULL, loaned_at TEXT NOT NULL, loaned_utc TEXT NOT NULL,
                           due_at TEXT, returned_utc TEXT, closed_by TEXT);
CREATE INDEX remote_loans_open_patron ON remote_loans(patron_key) WHERE returned_utc IS NULL;
CREATE INDEX remote_loans_item ON remote_loans(item_id, loaned_utc);
-- Returns made at other bookcases: a loan event that arrives after its return is closed at once.
CREATE TABLE remote_returns (event_id TEXT PRIMARY KEY, bookcase TEXT NOT NULL, item_id TEXT NOT NULL,
                             returned_utc TEXT NOT NULL);
CREATE INDEX remote_returns_item ON remote_returns(item_id, returned_utc);
-- What the other bookcases hold now (their retained holdings messages): the fleet's title index.
CREATE TABLE remote_holdings (bookcase TEXT NOT NULL, item_id TEXT NOT NULL, title TEXT, door INTEGER,
                              PRIMARY KEY (bookcase, item_id));
CREATE INDEX remote_holdings_item ON remote_holdings(item_id);
CREATE TABLE peers (bookcase TEXT PRIMARY KEY, name TEXT, holdings_ts TEXT, holdings_count INTEGER,
                    updated TEXT);
-- What the library's gateway answered for each of our events: applied, or rejected and why.
ALTER TABLE outbox ADD COLUMN gateway TEXT;
CREATE INDEX inbox_received ON inbox(received)
"""


V4_SEARCH = """
-- Find a book (kiosk.search): what the catalogue and the fleet's holdings say of each book, and each
-- bookcase's place, for the nearest-first answer.
ALTER TABLE catalogue ADD COLUMN isbn TEXT NOT NULL DEFAULT '';
ALTER TABLE catalogue ADD COLUMN clc TEXT NOT NULL DEFAULT '';
ALTER TABLE remote_holdings ADD COLUMN title_id INTEGER;
CREATE INDEX remote_holdings_title ON remote_holdings(title_id);
ALTER TABLE peers ADD COLUMN latitude REAL;
ALTER TABLE peers ADD COLUMN longitude REAL;
ALTER TABLE peers ADD COLUMN address TEXT;
ALTER TABLE peers ADD COLUMN distance_m REAL;
-- One row per title known here, with how many other bookcases hold it and how far the nearest is.
CREATE TABLE search_titles (id INTEGER PRIMARY KEY, title TEXT NOT NULL UNIQUE, author TEXT NOT NULL DEFAULT '',
                            isbn TEXT NOT NULL DEFAULT '', clc TEXT NOT NULL DEFAULT '',
                            holders INTEGER NOT NULL DEFAULT 0, nearest_m REAL);
CREATE INDEX search_titles_isbn ON search_titles(isbn) WHERE isbn != '';
CREATE INDEX search_titles_clc ON search_titles(clc, holders);
-- Pinyin keys, no copy of the text: "head" from a title's or an author's start, "rest" from inside a title.
CREATE VIRTUAL TABLE search_head USING fts5(k, content='', detail=none, prefix='1 2 3');
CREATE VIRTUAL TABLE search_rest USING fts5(k, content='', detail=none, prefix='1 2 3');
-- Catalogue titles waiting for their keys (the core loop computes them: kiosk.search.index.refresh).
CREATE TABLE search_pending (title TEXT PRIMARY KEY);
INSERT OR IGNORE INTO search_pending (title) SELECT title FROM catalogue;
INSERT OR IGNORE INTO search_pending (title) SELECT DISTINCT title FROM remote_holdings WHERE title IS NOT NULL;
CREATE INDEX loans_loaned_at ON loans(loaned_at)
"""
# Triggers hold a ";" of their own: statements of their own, after the script.
V4_TRIGGERS = (
    "CREATE TRIGGER catalogue_search_insert AFTER INSERT ON catalogue "
    "BEGIN INSERT OR IGNORE INTO search_pending (title) VALUES (new.title); END",
    "CREATE TRIGGER catalogue_search_update AFTER UPDATE OF title, author, isbn, clc ON catalogue "
    "BEGIN INSERT OR IGNORE INTO search_pending (title) VALUES (new.title); END",
)


def _run(script: str, *whole: str):
    def apply(db: sqlite_utils.Database) -> None:
        # executescript() would COMMIT first; run statement by statement inside our transaction.
        for statement in script.split(";"):
            if statement.strip():
                db.conn.execute(statement)
        for statement in whole:
            db.conn.execute(statement)
    return apply


V5_PARKED = """
-- Inbound messages this bookcase could not apply, after several tries, because of a fault of its own (the
-- database locked, a full disk): kept for staff (kiosk sync status) instead of blocking the link forever.
CREATE TABLE parked_messages (id INTEGER PRIMARY KEY, topic TEXT NOT NULL, payload BLOB NOT NULL,
                              error TEXT NOT NULL, attempts INTEGER NOT NULL, first_seen TEXT NOT NULL,
                              parked_at TEXT NOT NULL);
-- A staff card's hint (****0018), so `kiosk staff list` can name the cards without storing their numbers.
ALTER TABLE staff ADD COLUMN card_hint TEXT NOT NULL DEFAULT ''
"""


MIGRATIONS = [_run(V1_INITIAL), _run(V2_PATRONS_STAFF), _run(V3_FLEET), _run(V4_SEARCH, *V4_TRIGGERS),
              _run(V5_PARKED)]
