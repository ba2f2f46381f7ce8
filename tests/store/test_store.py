"""The SQLite store: pragmas, migrations, outbox numbering, and atomic settlements."""

import sqlite3
import threading

import pytest

from kiosk.core.inventory import Holding
from kiosk.core.records import SessionRecord, Settlement
from kiosk.store.db import StoreError, connect, schema_version
from kiosk.store.ledger import Store
from kiosk.store.migrations import MIGRATIONS


def test_pragmas_and_schema(tmp_path):
    store = Store(tmp_path / "k.sqlite3", "T-1")
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.db.execute("PRAGMA synchronous").fetchone()[0] == 2          # FULL
    assert schema_version(store.db) == len(MIGRATIONS)
    assert {"catalogue", "holdings", "patrons", "sessions", "loans", "returns", "outbox", "inbox", "tags"} <= set(
        store.db.table_names())
    store.close()
    # Reopening does not migrate again.
    store = Store(tmp_path / "k.sqlite3", "T-1")
    assert schema_version(store.db) == len(MIGRATIONS)
    store.close()


def test_newer_schema_is_refused_with_a_clear_message(tmp_path):
    path = tmp_path / "k.sqlite3"
    Store(path, "T-1").close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(StoreError, match="newer than this software"):
        Store(path, "T-1")


def test_not_a_database(tmp_path):
    path = tmp_path / "k.sqlite3"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="cannot open"):
        Store(path, "T-1")


def test_outbox_events_carry_the_envelope_in_seq_order(tmp_path):
    store = Store(tmp_path / "k.sqlite3", "T-1")
    store.record_events([{"type": "alarm", "alarm": "door_forced", "door": 1}, {"type": "refusal", "reason": "x"}])
    store.record_events([{"type": "alarm", "alarm": "door_held_open", "door": 2}])
    events = store.outbox()
    assert [e["seq"] for e in events] == [1, 2, 3]
    assert len({e["id"] for e in events}) == 3
    assert all(e["v"] == 1 and e["bookcase"] == "T-1" and "T" in e["ts"] for e in events)
    assert store.outbox_depth() == 3
    store.close()


def _settlement(record, loans, closed="2026-11-25T10:00:00+08:00"):
    return Settlement(session=record, closed_at=closed, due_at="2026-12-25", loans=tuple(loans), returns=(),
                      missing=(), after={}, tags={}, events=({"type": "loan", "item": "MH1"},), summary={})


def test_settlement_is_all_or_nothing(tmp_path):
    store = Store(tmp_path / "k.sqlite3", "T-1")
    record = SessionRecord("s1", "patron", 1, "scanning", {}, "2026-11-25T10:00:00+08:00", patron_key="p")
    store.open_session(record, [])
    # An item listed twice violates the one-loan-per-session rule half way through: nothing is kept.
    with pytest.raises(sqlite3.IntegrityError):
        store.settle(_settlement(record, [Holding("U1", "MH1"), Holding("U1b", "MH1")]))
    assert store.loans() == [] and store.outbox() == [] and len(store.open_sessions()) == 1
    store.settle(_settlement(record, [Holding("U1", "MH1")]))
    store.settle(_settlement(record, [Holding("U1", "MH1")]))     # a second settlement is ignored
    assert len(store.loans()) == 1 and len(store.outbox()) == 1 and store.open_sessions() == []
    store.close()


def _open_at_once(path, openers: int = 6) -> list[BaseException]:
    """Open ``path`` from several connections released together; what they raised."""
    errors: list[BaseException] = []
    start = threading.Barrier(openers)

    def open_it() -> None:
        try:
            start.wait(10)
            connect(path).conn.close()
        except BaseException as exc:  # noqa: BLE001 - collected, and asserted by the caller
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(openers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return errors


def test_processes_opening_a_new_database_at_once_migrate_it_once(tmp_path):
    # The daemon starting while `kiosk ledger` (or a test) opens the same new file: each has its own
    # connection; the second to take the write lock finds the work done instead of failing on CREATE TABLE,
    # and the ones racing to switch the new file to WAL wait instead of failing "database is locked".
    # Without the wait the race is lost about one round in ten, so twenty rounds.
    for round_ in range(20):
        path = tmp_path / f"kiosk-{round_}.sqlite3"
        assert _open_at_once(path) == [], f"round {round_}"
        db = connect(path)
        try:
            assert schema_version(db) == len(MIGRATIONS)
            assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        finally:
            db.conn.close()
