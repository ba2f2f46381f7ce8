"""The bookcase's side of the ack: the ILS's due date in an ack result becomes the loan's due date."""

from __future__ import annotations

import uuid
from collections import Counter

from kiosk.store.ledger import Store
from kiosk.sync import schema
from kiosk.sync.replication import APPLIED, Replicator
from kiosk.sync.topics import Topics

P = "b" * 32


def test_an_ack_with_the_ils_due_date_sets_the_loan_s_due_date(tmp_path):
    store = Store(tmp_path / "k.sqlite3", "MH-A")
    session = str(uuid.uuid4())
    store.db.execute("INSERT INTO sessions (id, kind, door, state, before_json, opened_at) "
                     "VALUES (?, 'patron', 1, 'done', '[]', '2026-12-01T09:00:00+08:00')", (session,))
    store.db.execute("INSERT INTO loans (id, item_id, patron_key, session_id, door, loaned_at, due_at) VALUES "
                     "(?, 'MH20200001', ?, ?, 1, '2026-12-01T09:00:00+08:00', '2026-12-31')",
                     (str(uuid.uuid4()), P, session))
    store.record_events([{"type": "loan", "session": session, "door": 1, "item": "MH20200001", "patron": P,
                          "due": "2026-12-31"}, {"type": "alarm", "alarm": "door_held_open", "door": 1}])
    loan_event, alarm_event = store.outbox()
    ack = {"v": 1, "id": str(uuid.uuid4()), "ts": "2026-12-03T10:00:00+08:00", "type": "ack", "bookcase": "MH-A",
           "results": [{"event": loan_event["id"], "seq": loan_event["seq"], "status": "applied", "due": "2026-12-29"},
                       {"event": alarm_event["id"], "seq": alarm_event["seq"], "status": "applied",
                        "due": "2027-02-02"}]}
    topics = Topics("citybook/v1/minhang/", "MH-A")
    replicator = Replicator(store, topics, 256 * 1024, Counter())
    assert replicator.receive(topics.ack(), schema.encode(ack)) == APPLIED
    [loan] = store.loans()
    assert loan["due_at"] == "2026-12-29"
    assert [r[0] for r in store.db.execute("SELECT gateway FROM outbox ORDER BY seq")] == ["applied", "applied"]
    store.close()


def test_an_ack_without_a_due_date_leaves_the_bookcase_s_own(tmp_path):
    assert schema.check_message("ack", {"v": 1, "id": str(uuid.uuid4()), "ts": "2026-12-03T10:00:00+08:00",
                                        "type": "ack", "bookcase": "MH-A", "results": []})
    bad = {"v": 1, "id": str(uuid.uuid4()), "ts": "2026-12-03T10:00:00+08:00", "type": "ack", "bookcase": "MH-A",
           "results": [{"event": str(uuid.uuid4()), "status": "applied", "due": "29/12/2026"}]}
    try:
        schema.check_message("ack", bad)
    except schema.MessageError as exc:
        assert exc.reason == "invalid" and "due" in str(exc)
    else:
        raise AssertionError("a due date that is not YYYY-MM-DD passed the schema")
