"""The outbox relay against a fake link: seq order, the in-flight window, PUBACK marking, refusals, resends."""

from __future__ import annotations

import json

import pytest

from kiosk.store import replica
from kiosk.store.ledger import Store
from kiosk.sync.relay import FLUSH_INTERVAL_S, REFUSED_RETRY_S, Relay


class FakeLink:
    def __init__(self) -> None:
        self.sent: list[tuple[int, int]] = []      # (mid, seq)
        self.up = True
        self.mid = 0

    def publish(self, gen: int, topic: str, body: bytes) -> int | None:
        if not self.up:
            return None
        self.mid += 1
        self.sent.append((self.mid, json.loads(body)["seq"]))
        return self.mid


@pytest.fixture
def parts(tmp_path):
    store = Store(tmp_path / "k.sqlite3", "MH-A")
    store.record_events([{"type": "alarm", "alarm": "test", "n": i} for i in range(20)])
    link, now = FakeLink(), [100.0]
    relay = Relay(store.db, "t/event", 4, link.publish, "MH-A", clock=lambda: now[0])
    yield store, link, relay, now
    store.close()


def seqs(link: FakeLink) -> list[int]:
    return [s for _, s in link.sent]


def test_window_order_and_marking_on_puback(parts):
    store, link, relay, now = parts
    relay.pump()
    assert seqs(link) == []                       # not connected yet
    relay.up(1)
    relay.pump()
    relay.pump()
    assert seqs(link) == [1, 2, 3, 4]             # no more than the window in flight
    for mid, _ in link.sent[:3]:
        assert relay.published(1, mid, 0x10, "No matching subscribers")
    relay.pump()
    assert seqs(link) == [1, 2, 3, 4, 5, 6, 7]
    assert store.outbox_depth() == 20             # marked in a batch, not one write per PUBACK
    now[0] += FLUSH_INTERVAL_S
    relay.flush_due()
    assert store.outbox_depth() == 17
    assert not relay.published(1, 999, 0, "Success")      # a PUBACK for a state message, say
    assert not relay.published(0, link.sent[3][0], 0, "Success")   # from an old connection


def test_reconnect_resends_every_unsent_row_in_order(parts):
    store, link, relay, now = parts
    relay.up(1)
    relay.pump()
    relay.published(1, link.sent[0][0], 0, "Success")
    relay.down()
    assert store.outbox_depth() == 19             # the acknowledged row is marked on the way down
    link.sent.clear()
    relay.up(2)
    relay.pump()
    assert seqs(link) == [2, 3, 4, 5]


def test_a_refused_row_stays_and_everything_goes_again_after_a_pause(parts, caplog):
    store, link, relay, now = parts
    relay.up(1)
    relay.pump()
    relay.published(1, link.sent[0][0], 0, "Success")
    relay.published(1, link.sent[1][0], 0x87, "Not authorized")
    assert "refused event seq 2" in caplog.text
    link.sent.clear()
    relay.pump()
    assert seqs(link) == []
    now[0] += REFUSED_RETRY_S
    relay.pump()
    assert seqs(link) == [2, 3, 4, 5]
    assert store.outbox_depth() == 19


def test_a_row_off_its_schema_is_held_not_lost(parts, caplog):
    store, link, relay, now = parts
    store.db.execute("UPDATE outbox SET payload = json_set(payload, '$.seq', -3) WHERE seq = 2")
    relay.up(1)
    relay.pump()
    assert seqs(link) == [1, 3, 4, 5]
    assert "seq 2 (alarm) is not a valid v1 message" in caplog.text
    assert replica.unsent(store.db, 1, 1)[0][0] == 2     # still in the outbox


NAN_ALARM = ('{"v": 1, "id": "c1bf725a-6509-4b36-9527-9d4889f9fba3", "bookcase": "MH-A", "seq": 2, '
             '"ts": "2026-11-25T10:00:00.000+08:00", "type": "alarm", "alarm": "test", "level": NaN}')


@pytest.mark.parametrize("payload", ["[1, 2]", '"loan"', "null", '{"v": 1, "type": ["loan"]}', NAN_ALARM,
                                     NAN_ALARM.replace("NaN", '"\\udc00"')])
def test_a_row_that_is_not_an_event_object_is_held_and_the_rest_goes(parts, payload, caplog):
    # It used to raise out of the relay on every pass (AttributeError, TypeError): nothing after it was sent.
    store, link, relay, now = parts
    store.db.execute("UPDATE outbox SET payload = ? WHERE seq = 2", (payload,))
    relay.up(1)
    relay.pump()
    assert seqs(link) == [1, 3, 4, 5]
    assert "seq 2 (alarm) is not a valid v1 message" in caplog.text
    assert replica.unsent(store.db, 1, 1)[0][0] == 2


def test_publish_failure_stops_the_pump_until_the_next_connection(parts):
    store, link, relay, now = parts
    link.up = False
    relay.up(1)
    relay.pump()
    assert relay.inflight == {} and relay.cursor == 0


def test_rows_written_by_another_connection_are_noticed(parts, tmp_path):
    store, link, relay, now = parts
    relay.window = 100
    relay.up(1)
    relay.pump()
    assert seqs(link) == list(range(1, 21))
    relay.pump()
    assert len(link.sent) == 20                   # idle: nothing new, nothing re-read
    other = Store(tmp_path / "k.sqlite3", "MH-A")
    try:
        other.record_events([{"type": "alarm", "alarm": "from_a_tool"}])
    finally:
        other.close()
    relay.pump()
    assert seqs(link)[-1] == 21


def test_a_row_recorded_under_another_bookcase_id_is_held(parts, caplog):
    store, link, relay, now = parts
    store.db.execute("UPDATE outbox SET payload = json_set(payload, '$.bookcase', 'MH-OLD') WHERE seq = 3")
    relay.up(1)
    relay.pump()
    assert seqs(link) == [1, 2, 4, 5]
    assert "seq 3 (alarm) was recorded by bookcase 'MH-OLD'" in caplog.text and "bookcase.id" in caplog.text
    relay.down()
    relay.up(2)
    relay.pump()
    assert caplog.text.count("was recorded by bookcase 'MH-OLD'") == 1      # said once, not on every pass
    assert 3 in [seq for seq, _, _ in replica.unsent(store.db, 0, 100)]


def test_a_locked_database_keeps_the_acknowledged_rows_to_mark_and_the_link_moves_on(parts, caplog):
    # Another process holds the write lock: the rows the broker acknowledged are kept and marked once it goes;
    # meanwhile a new connection is taken up at once (before, the flush raised out of up() and the relay stayed
    # on no connection, sending nothing until the next reconnect).
    import logging
    import sqlite3
    store, link, relay, now = parts
    caplog.set_level(logging.ERROR, logger="kiosk.sync")
    relay.up(1)
    relay.pump()
    for mid, _ in link.sent[:3]:
        relay.published(1, mid, 0, "Success")
    store.db.conn.execute("PRAGMA busy_timeout = 50")
    other = sqlite3.connect(store.db.conn.execute("PRAGMA database_list").fetchone()[2], isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        now[0] += FLUSH_INTERVAL_S
        relay.flush_due()
        relay.down()
        relay.up(2)
        assert relay.gen == 2 and relay.acked == [1, 2, 3]
        assert sum("could not mark" in r.getMessage() for r in caplog.records) == 1
    finally:
        other.execute("ROLLBACK")
        other.close()
    relay.pump()
    assert seqs(link)[-4:] == [1, 2, 3, 4]       # the new connection resends what was not marked (deduped)
    now[0] += FLUSH_INTERVAL_S
    relay.flush_due()
    assert relay.acked == [] and store.outbox_depth() == 17
