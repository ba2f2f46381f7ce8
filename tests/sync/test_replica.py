"""The fleet's records in the store: remote loans in any order, returns anywhere, the inbox, holdings, the index."""

from __future__ import annotations

import uuid

import pytest

from kiosk.store import replica
from kiosk.store.ledger import Store

P = "b" * 32


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "k.sqlite3", "MH-B")
    yield s
    s.close()


def ev(type_: str, item: str, ts: str, bookcase: str = "MH-A", **fields) -> dict:
    return {"v": 1, "id": str(uuid.uuid4()), "bookcase": bookcase, "seq": 1, "ts": ts, "type": type_,
            "item": item, **fields}


def apply(store: Store, event: dict) -> bool:
    effect = replica.remote_loan if event["type"] == "loan" else replica.remote_return
    return replica.apply_once(store.db, event["id"], "t", lambda conn: effect(conn, event))


def local_loan(store: Store, item: str, at: str) -> None:
    session = str(uuid.uuid4())
    store.db.execute("INSERT INTO sessions (id, kind, door, state, before_json, opened_at) "
                     "VALUES (?, 'patron', 1, 'done', '[]', ?)", (session, at))
    store.db.execute("INSERT INTO loans (id, item_id, patron_key, session_id, door, loaned_at, due_at) "
                     "VALUES (?, ?, ?, ?, 1, ?, '2027-01-01')", (str(uuid.uuid4()), item, P, session, at))


def open_remote(store: Store) -> list[str]:
    return [r[0] for r in store.db.execute("SELECT item_id FROM remote_loans WHERE returned_utc IS NULL")]


def test_a_remote_loan_counts_until_a_return_anywhere(store):
    loan = ev("loan", "MH1", "2026-11-25T10:00:00.000+08:00", patron=P, due="2026-12-25")
    assert apply(store, loan)
    assert store.open_loan_count(P) == 1
    assert not apply(store, loan)                     # the same event again: a no-op
    assert store.open_loan_count(P) == 1
    apply(store, ev("return", "MH1", "2026-11-26T10:00:00+08:00", bookcase="MH-C"))
    assert store.open_loan_count(P) == 0


def test_a_return_that_arrives_before_its_loan_closes_it_at_once(store):
    apply(store, ev("return", "MH1", "2026-11-26T02:00:00.000Z", bookcase="MH-C"))
    apply(store, ev("loan", "MH1", "2026-11-26T09:00:00.000+08:00", patron=P, due="2026-12-25"))   # 01:00 UTC
    assert open_remote(store) == [] and store.open_loan_count(P) == 0
    # A loan after that return stays open.
    apply(store, ev("loan", "MH1", "2026-11-26T11:00:00.000+08:00", patron=P, due="2026-12-25"))
    assert open_remote(store) == ["MH1"]


def test_a_return_elsewhere_closes_the_loan_made_here(store):
    local_loan(store, "MH7", "2026-11-25T10:00:00.000+08:00")
    assert store.open_loan_count(P) == 1
    ret = ev("return", "MH7", "2026-11-25T12:00:00.000+08:00")
    apply(store, ret)
    (row,) = store.loans()
    assert row["returned_at"] == ret["ts"] and row["return_id"] == ret["id"]
    assert store.open_loan_count(P) == 0


def test_an_older_return_elsewhere_does_not_close_a_newer_loan_here(store):
    local_loan(store, "MH7", "2026-11-25T10:00:00.000+08:00")
    apply(store, ev("return", "MH7", "2026-11-25T09:00:00.000+08:00"))
    assert store.loans(open_only=True)


def test_a_loan_or_return_here_ends_the_remote_loan(store):
    apply(store, ev("loan", "MH1", "2026-11-25T10:00:00.000+08:00", patron=P, due="2026-12-25"))
    with store.db.conn:
        assert replica.close_remote_loans(store.db.conn, ["MH1", None, "MH9"], "2026-11-25T11:00:00.000+08:00") == 1
    assert open_remote(store) == []


def test_a_later_loan_elsewhere_ends_an_earlier_one(store):
    apply(store, ev("loan", "MH1", "2026-11-25T10:00:00+08:00", patron=P, due="2026-12-25"))
    apply(store, ev("loan", "MH1", "2026-11-27T10:00:00+08:00", bookcase="MH-C", patron="c" * 32, due="2026-12-27"))
    assert store.open_loan_count(P) == 0 and store.open_loan_count("c" * 32) == 1


def test_holdings_replace_only_with_newer_and_feed_the_index(store):
    store.upsert_catalogue([{"item_id": "MH3", "title": "我心归处是敦煌"}])
    msg = {"bookcase": "MH-A", "name": "康城社区", "ts": "2026-11-25T10:00:00+08:00",
           "items": [{"item": "MH3", "door": 2}, {"item": "MH4", "title": "繁花_上", "door": 1}]}
    with store.db.conn:
        assert replica.replace_holdings(store.db.conn, msg)
        assert not replica.replace_holdings(store.db.conn, {**msg, "ts": "2026-11-25T09:00:00+08:00", "items": []})
    (hit,) = store.where_else("敦煌")
    assert hit == {"bookcase": "MH-A", "name": "康城社区", "item_id": "MH3", "title": "我心归处是敦煌", "door": 2}
    assert [h["item_id"] for h in store.where_else("MH4")] == ["MH4"]
    assert [h["item_id"] for h in store.where_else("花_上")] == ["MH4"]
    assert store.where_else("%") == [] and store.where_else("花x上") == [] and store.where_else("MH") == []


def test_prune_forgets_old_inbox_ids_and_closed_loans(store):
    apply(store, ev("loan", "MH1", "2020-01-01T10:00:00+08:00", patron=P, due="2020-02-01"))
    apply(store, ev("return", "MH1", "2020-01-02T10:00:00+08:00"))
    store.db.execute("UPDATE inbox SET received = '2020-01-03T00:00:00.000+08:00'")
    assert replica.prune(store.db, "2021-01-01T00:00:00.000+08:00") == 4
    assert store.db.execute("SELECT COUNT(*) FROM remote_loans").fetchone()[0] == 0
