"""Poison messages over a real Mosquitto: hundreds of them, of every kind and on every topic a bookcase reads, never
hold back a valid loan from another bookcase — while the daemon runs, and across a restart after a SIGKILL, when the
broker sends again whatever was not acknowledged and everything queued while the bookcase was down.

Before the fix sixteen of them (the broker's receive maximum for a bookcase) were left unacknowledged, filled every
slot and stopped the fleet, restart or not. Deadlines here are generous; the time itself is measured by
bench/sync.py (c), never asserted.
"""

from __future__ import annotations

import json
import threading
import uuid

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.scenarios.harness import wait_for
from tests.sync.fleet import ROOT_TOPIC, FleetCase, Watcher, mqtt_section, publish
from tests.sync.test_bad_input import EVENT, KEY, loan, patron_status

SURROGATE = b'"\\ud800"'
HOLDINGS = ROOT_TOPIC + "bookcase/MH-X/holdings"
PATRON = ROOT_TOPIC + f"central/patron/{KEY}"
ACK = ROOT_TOPIC + "central/ack/MH-B"
CONTENT = ROOT_TOPIC + "central/content"


def raw(msg: dict, **values: bytes) -> bytes:
    """``msg`` as JSON bytes with some values replaced by raw JSON text (escapes, NaN: as written)."""
    body = json.dumps({**msg, **{k: f"@{k}@" for k in values}})
    for key, value in values.items():
        body = body.replace(f'"@{key}@"', value.decode())
    return body.encode()


def _holdings(**changes) -> dict:
    return {"v": 1, "id": str(uuid.uuid4()), "bookcase": "MH-X", "ts": "2026-11-25T10:00:00+08:00",
            "type": "holdings", "items": [{"item": "MH20209001", "title": "三体"}], **changes}


def _ack(**changes) -> dict:
    return {"v": 1, "id": str(uuid.uuid4()), "ts": "2026-11-25T10:00:00+08:00", "type": "ack", "bookcase": "MH-B",
            "results": [], **changes}


# Loan events that cannot be applied because of what they are: an unhashable type, lone surrogates (in a value, a
# key, nested), a NUL, a bookcase id "..", wrong types, not JSON, not UTF-8, not an object, too large, NaN, a sequence
# number beyond any journal's column, another sender.
POISON = [
    raw(loan(), type=b'["loan"]'), raw(loan(), type=b'{"loan": 1}'), raw(loan(), item=SURROGATE),
    raw(loan(), patron=SURROGATE), b'{"v": 1, "\\udfff": 2}', raw(loan(), door=b'{"deep": [["\\udc00"]]}'),
    json.dumps(loan(bookcase="..")).encode(), json.dumps(loan(v=[1])).encode(), json.dumps(loan(seq={"a": 1})).encode(),
    b"\xff\xfe", b"[]", b"null", json.dumps(loan(door=True)).encode(), json.dumps(loan(ts=["2026"])).encode(),
    b'{"v":1}' * 2000, raw(loan(), door=b"NaN"), json.dumps(loan(seq=2 ** 70)).encode(),
    json.dumps(loan(bookcase="MH-Y")).encode(), b'{"v": 1, "type": "loan", ', raw(loan(), item=b'"MH\\u0000"'),
]
# The same on the other topics a bookcase reads: holdings, a patron's status, its acks, the content announcement.
POISON_ANYWHERE = [(EVENT, p) for p in POISON] + [
    (HOLDINGS, raw(_holdings(), type=b'["holdings"]')), (HOLDINGS, raw(_holdings(), name=SURROGATE)),
    (HOLDINGS, raw(_holdings(), latitude=b"NaN")), (HOLDINGS, json.dumps(_holdings(items={"a": 1})).encode()),
    (HOLDINGS, json.dumps(_holdings(bookcase="MH-Y")).encode()),
    (PATRON, json.dumps(patron_status(status=["active"])).encode()), (PATRON, raw(patron_status(),
                                                                                  patron_class=SURROGATE)),
    (PATRON, json.dumps(patron_status(loans_elsewhere=2 ** 70)).encode()),
    (PATRON, json.dumps(patron_status("f" * 32)).encode()),
    (ACK, json.dumps(_ack(results=[{"event": ["x"], "status": "applied"}])).encode()),
    (ACK, json.dumps(_ack(bookcase="..")).encode()), (ACK, raw(_ack(), results=b'[{"\\ud800": 1}]')),
    (CONTENT, json.dumps({"v": 1, "version": "1"}).encode()), (CONTENT, b'{"v": [1], "version": 2}'),
    (CONTENT, b"not json"),
]


def publish_all(port: int, messages: list[tuple[str, bytes]]) -> None:
    """Publish every message at QoS 1 over one connection, in order, and wait until the broker has taken each."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"poisoner-{uuid.uuid4().hex[:8]}",
                         protocol=mqtt.MQTTv5)
    acked, done = [0], threading.Event()

    def on_publish(c, u, mid, rc, props) -> None:
        acked[0] += 1
        if acked[0] == len(messages):
            done.set()

    client.on_publish = on_publish
    client.connect("127.0.0.1", port, keepalive=10)
    client.loop_start()
    try:
        wait_for(client.is_connected, 10, "the publisher to connect")
        for topic, payload in messages:
            client.publish(topic, payload, qos=1)
        assert done.wait(60), f"the broker took {acked[0]} of {len(messages)} messages"
    finally:
        client.disconnect()
        client.loop_stop()


def poison(n: int) -> list[tuple[str, bytes]]:
    return [POISON_ANYWHERE[i % len(POISON_ANYWHERE)] for i in range(n)]


def _refused(counters: dict) -> int:
    return sum(n for k, n in counters.items() if k.startswith("bad_"))


@pytest.fixture
def bookcase(tmp_path, broker):
    b = FleetCase(tmp_path / "b", "MH-B", mqtt_section(broker.port, max_payload_kb=8), first_item=101)
    try:
        b.start()
        wait_for(lambda: b.app.sync.online, 20, "the bookcase online")
        yield b
    finally:
        b.stop()


def test_hundreds_of_poison_messages_then_a_valid_loan_is_applied(bookcase, broker):
    b = bookcase
    publish_all(broker.port, poison(300))
    good = loan()
    publish(broker.port, EVENT, good)
    wait_for(lambda: [r["event_id"] for r in b.remote_loans()] == [good["id"]], 60,
             "the valid loan behind 300 poison messages")
    wait_for(lambda: _refused(b.counters()) == 300, 30, "every poison message counted")
    counters = b.counters()
    assert counters.get("patrons_applied", 0) == counters.get("holdings_applied", 0) == 0
    assert counters.get("apply_failed", 0) == 0 and len(b.app.sync.retries) == 0
    for kind in ("bad_unknown_type", "bad_bad_text", "bad_invalid", "bad_not_json", "bad_wrong_sender",
                 "bad_too_large", "bad_not_object"):
        assert counters.get(kind, 0) > 0, kind
    # A restart: nothing was left unacknowledged, so nothing comes back to block the link.
    b.stop_thread()
    b.start_thread()
    wait_for(lambda: b.app.sync.online, 20, "the bookcase online again")
    after = loan(item="MH20209002")
    publish(broker.port, EVENT, after)
    wait_for(lambda: len(b.remote_loans()) == 2, 60, "a valid loan after the restart")
    assert {r["event_id"] for r in b.remote_loans()} == {good["id"], after["id"]}
    assert _refused(b.counters()) == 300                  # none came back


def test_poison_redelivered_after_a_sigkill_does_not_hold_back_a_valid_loan(tmp_path, broker):
    # The daemon as on a bookcase (its own process), killed while poison is arriving: what it had not acknowledged
    # comes again, behind it everything queued in its session while it was down, then a valid loan.
    b = FleetCase(tmp_path / "b", "MH-B", mqtt_section(broker.port, max_payload_kb=8), first_item=101)
    state = Watcher(broker.port, (ROOT_TOPIC + "bookcase/MH-B/state",))
    try:
        b.sim.start()
        b.start_process()
        wait_for(lambda: (s := state.last("MH-B/state")) and s["online"], 60, "the bookcase online")
        publish_all(broker.port, poison(150))
        b.kill_process()
        wait_for(lambda: not state.last("MH-B/state")["online"], 30, "the broker to publish the last will")
        publish_all(broker.port, poison(150))
        good = loan()
        publish(broker.port, EVENT, good)
        b.start_process()
        wait_for(lambda: [r["event_id"] for r in b.remote_loans()] == [good["id"]], 90,
                 "the valid loan behind the poison after the restart")
        # The state the bookcase publishes counts at least the 150 queued while it was down (those it refused
        # before the kill may have died with it, unsaved).
        wait_for(lambda: (s := state.last("MH-B/state")) and s["online"] and
                 _refused(s.get("counters", {})) >= 150, 30, "the refused messages counted in state")
        counters = state.last("MH-B/state")["counters"]
        assert counters.get("patrons_applied", 0) == counters.get("holdings_applied", 0) == 0
        assert counters.get("apply_failed", 0) == 0
    finally:
        state.close()
        b.stop()
