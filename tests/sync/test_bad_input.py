"""Every kind of bad input, published by a real MQTT client: refused, counted in state, never applied, no crash."""

from __future__ import annotations

import json
import logging
import uuid

import pytest

from kiosk.core.policy import patron_key
from kiosk.sync import schema
from simulators.fleet.bookcases import SECRET
from tests.scenarios.harness import ADULT, BLOCKED, wait_for
from tests.sync.fleet import ROOT_TOPIC, FleetCase, Watcher, mqtt_section, publish

KEY = patron_key(SECRET, ADULT)


def loan(bookcase: str = "MH-X", **changes) -> dict:
    event = {"v": 1, "id": str(uuid.uuid4()), "bookcase": bookcase, "seq": 7, "ts": "2026-11-25T10:00:00.000+08:00",
             "type": "loan", "session": str(uuid.uuid4()), "door": 1, "item": "MH20209001", "uid": "E004A1B2C3D4E5F6",
             "patron": KEY, "due": "2026-12-25"}
    event.update(changes)
    return {k: v for k, v in event.items() if v is not None}


def patron_status(key: str = KEY, **changes) -> dict:
    return {"v": 1, "id": str(uuid.uuid4()), "ts": "2026-11-25T10:00:00.000+08:00", "type": "patron_status",
            "patron": key, "patron_class": "adult", "status": "active", "loans_elsewhere": 2, **changes}


EVENT = ROOT_TOPIC + "bookcase/MH-X/event"
BAD = [
    ("not_json", EVENT, b'{"v": 1, "type": "loan", '),
    ("not_json", EVENT, b"\xff\xfe\x00 not utf-8"),
    ("not_object", EVENT, b"[1, 2, 3]"),
    ("unknown_version", EVENT, loan(v=2)),
    ("unknown_type", EVENT, loan(type="teleport")),
    ("invalid", EVENT, loan(item=None)),
    ("invalid", EVENT, loan(patron="0018")),
    ("invalid", EVENT, loan(ts="2026-11-25t10:00:00z")),
    ("invalid", EVENT, loan(ts="0001-01-01T00:00:00+14:00")),     # reads, but cannot be moved to UTC
    ("too_large", EVENT, loan(padding="书" * 4000)),
    ("wrong_sender", EVENT, loan(bookcase="MH-Y")),
    ("wrong_sender", ROOT_TOPIC + "bookcase/MH-X/holdings",
     {"v": 1, "id": str(uuid.uuid4()), "bookcase": "MH-Y", "ts": "2026-11-25T10:00:00+08:00", "type": "holdings",
      "items": [{"item": "MH20209001"}]}),
    ("wrong_sender", ROOT_TOPIC + f"central/patron/{KEY}", patron_status("f" * 32)),
    ("invalid", ROOT_TOPIC + f"central/patron/{KEY}", patron_status(status="vip")),
    ("wrong_sender", ROOT_TOPIC + "central/ack/MH-B",
     {"v": 1, "id": str(uuid.uuid4()), "ts": "2026-11-25T10:00:00+08:00", "type": "ack", "bookcase": "MH-Z",
      "results": []}),
]


@pytest.fixture
def case(tmp_path, broker):
    b = FleetCase(tmp_path / "b", "MH-B", mqtt_section(broker.port, max_payload_kb=8), first_item=101)
    watcher = Watcher(broker.port, (ROOT_TOPIC + "bookcase/MH-B/state",))
    try:
        b.start()
        wait_for(lambda: b.app.sync.online, 20, "the bookcase online")
        yield b, watcher
    finally:
        b.stop()
        watcher.close()


def test_bad_messages_are_refused_and_counted(case, broker, caplog):
    b, watcher = case
    caplog.set_level(logging.WARNING, logger="kiosk.sync")
    patron_before = b.view.patron(KEY)
    for _, topic, payload in BAD:
        assert publish(broker.port, topic, payload) is not None
    # A good message behind them: once it is applied, every bad one before it has been dealt with.
    good = loan()
    publish(broker.port, EVENT, good)
    publish(broker.port, EVENT, good)          # the same event again: a duplicate, not a second loan
    wait_for(lambda: b.counters().get("duplicates") == 1, 20, "the good loan and its duplicate")

    expected: dict[str, int] = {}
    for reason, _, _ in BAD:
        expected["bad_" + reason] = expected.get("bad_" + reason, 0) + 1
    state = wait_for(lambda: (s := watcher.last("bookcase/MH-B/state")) and
                     all(s["counters"].get(k) == n for k, n in expected.items()) and s, 20, "the counters in state")
    assert state["online"] is True and state["counters"]["events_applied"] == 1
    assert [r["event_id"] for r in b.remote_loans()] == [good["id"]]
    assert b.view.patron(KEY) == patron_before and b.view.patron("f" * 32) is None
    # Each refusal is logged for the operator: where it came from, why, and that it was not applied.
    refusals = [r.getMessage() for r in caplog.records if "refused a message on" in r.getMessage()]
    assert len(refusals) == len(BAD)
    for (reason, topic, _), line in zip(BAD, refusals):
        assert topic in line and schema.REASONS[reason] in line and "not applied" in line
    assert not [r for r in caplog.records if r.exc_info], "a bad message raised instead of being refused"
    assert b.view.db.execute("SELECT COUNT(*) FROM remote_holdings").fetchone()[0] == 0
    assert b.app is not None and b.thread.is_alive()
    assert b.session(ADULT, 1, take=[b.items(1)[0]])["state"] == "done"     # and it still lends


def test_central_patron_status_and_gateway_acks(case, broker):
    b, watcher = case
    blocked_key = patron_key(SECRET, BLOCKED)
    # The library unblocks a patron and says she has 4 loans at its desks (not at any bookcase).
    publish(broker.port, ROOT_TOPIC + f"central/patron/{blocked_key}",
            patron_status(blocked_key, status="active", loans_elsewhere=4), retain=True)
    wait_for(lambda: b.view.patron(blocked_key).status == "active", 20, "the patron cache to follow the library")
    assert b.view.patron(blocked_key).loans_elsewhere == 4
    b.choose(2)
    b.sim.scan(BLOCKED)
    snap = wait_for(lambda: b.app.snapshot if b.app.snapshot.state != "idle" else None, 10, "the card answered")
    assert snap.reason == "welcome" and snap.may_borrow == 15 - 4
    wait_for(lambda: b.seen_open(2), 10, "the door")
    b.sim.close(2)

    # The gateway answers for two of B's events: one applied, one rejected.
    wait_for(lambda: b.depth() == 0, 20, "B's outbox to drain")
    first, second = b.view.outbox()[:2]
    ack = {"v": 1, "id": str(uuid.uuid4()), "ts": "2026-11-25T10:00:00+08:00", "type": "ack", "bookcase": "MH-B",
           "results": [{"event": first["id"], "seq": first["seq"], "status": "applied"},
                       {"event": second["id"], "seq": second["seq"], "status": "rejected",
                        "reason": "item not in the ILS"}]}
    publish(broker.port, ROOT_TOPIC + "central/ack/MH-B", json.dumps(ack))
    wait_for(lambda: b.counters().get("gateway_rejected") == 1, 20, "the ack to be recorded")
    rows = dict(b.view.db.execute("SELECT id, gateway FROM outbox WHERE gateway IS NOT NULL").fetchall())
    assert rows == {first["id"]: "applied", second["id"]: "rejected: item not in the ILS"}
    assert b.counters()["gateway_applied"] == 1
