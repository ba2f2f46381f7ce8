"""Schema migrations, in order; migration N brings the database to PRAGMA user_version N."""

from __future__ import annotations

import sqlite_utils


def _v1_initial(db: sqlite_utils.Database) -> None:
    db["meta"].create({"key": str, "value": str}, pk="key")
    db["catalogue"].create({"item_id": str, "title": str, "author": str, "updated": str}, pk="item_id",
                           not_null={"title"}, defaults={"author": ""})
    # What each tag's memory said, by UID: read once, never again.
    db["tags"].create({"uid": str, "item_id": str, "usage": int, "error": str, "first_seen": str}, pk="uid")
    db["holdings"].create({"uid": str, "door": int, "item_id": str, "status": str, "origin": str,
                           "updated": str}, pk="uid", not_null={"door", "status", "updated"})
    db["holdings"].create_index(["door"])
    db["holdings"].create_index(["item_id"])
    db["patrons"].create({"patron_key": str, "patron_class": str, "status": str, "loans_elsewhere": int,
                          "card_hint": str, "updated": str}, pk="patron_key",
                         not_null={"patron_class", "status"}, defaults={"loans_elsewhere": 0})
    db["sessions"].create({"id": str, "kind": str, "door": int, "patron_key": str, "card_hint": str,
                           "may_borrow": int, "state": str, "before_json": str, "opened_at": str,
                           "closed_at": str, "summary_json": str}, pk="id",
                          not_null={"kind", "door", "state", "before_json", "opened_at"})
    db.execute("CREATE INDEX sessions_open ON sessions(state) WHERE state != 'done'")
    db["loans"].create({"id": str, "item_id": str, "uid": str, "patron_key": str, "session_id": str,
                        "door": int, "loaned_at": str, "due_at": str, "returned_at": str, "return_id": str},
                       pk="id", not_null={"item_id", "patron_key", "session_id", "loaned_at", "due_at"},
                       foreign_keys=[("session_id", "sessions", "id")])
    # One open loan per item; one loan of an item per session: a replayed settlement cannot double it.
    db.execute("CREATE UNIQUE INDEX loans_open_item ON loans(item_id) WHERE returned_at IS NULL")
    db.execute("CREATE UNIQUE INDEX loans_session_item ON loans(session_id, item_id)")
    db["loans"].create_index(["patron_key"])
    db["returns"].create({"id": str, "item_id": str, "uid": str, "session_id": str, "door": int,
                          "returned_at": str, "loan_id": str}, pk="id",
                         not_null={"item_id", "session_id", "returned_at"},
                         foreign_keys=[("session_id", "sessions", "id")])
    db.execute("CREATE UNIQUE INDEX returns_session_item ON returns(session_id, item_id)")
    db["missing"].create({"id": str, "item_id": str, "uid": str, "session_id": str, "door": int,
                          "noted_at": str}, pk="id", not_null={"uid", "session_id", "noted_at"})
    db.execute("CREATE UNIQUE INDEX missing_session_uid ON missing(session_id, uid)")
    db.execute("""CREATE TABLE outbox (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        type TEXT NOT NULL,
        payload TEXT NOT NULL,
        created TEXT NOT NULL,
        sent TEXT)""")
    db.execute("CREATE INDEX outbox_unsent ON outbox(seq) WHERE sent IS NULL")
    db["inbox"].create({"id": str, "topic": str, "received": str}, pk="id", not_null={"received"})


MIGRATIONS = [_v1_initial]
