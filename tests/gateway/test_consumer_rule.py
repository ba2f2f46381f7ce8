"""The gateway keeps the bookcase's ack rule: a message that cannot be journaled because of what it is is
journaled as refused and acknowledged; only the journal's own failure holds the batch back (and retries it)."""

from __future__ import annotations

import json
import sqlite3

from gateway.config import load_gateway_config
from gateway.consumer import Consumer, Publisher
from gateway.journal import open_journal
from kiosk.sync.events import Received
from tests.gateway.support import Bookcase, write_gateway_config

ADULT = "3101120000018"


def _consumer(tmp_path):
    cfg = load_gateway_config(write_gateway_config(tmp_path / "gw"))
    journal = open_journal(cfg.journal)
    consumer = Consumer(cfg, journal, Publisher(), lambda: None, lambda recorded: None)
    acked: list[int] = []
    consumer.link.ack = lambda gen, mid, qos: acked.append(mid)     # the network's edge
    return consumer, journal, acked


def _received(mid: int, event: dict) -> Received:
    topic = f"citybook/v1/minhang/bookcase/{event['bookcase']}/event"
    return Received(gen=1, topic=topic, payload=json.dumps(event).encode(), mid=mid, qos=1, retain=False)


def test_one_message_the_journal_cannot_take_does_not_hold_back_the_batch(tmp_path, monkeypatch):
    consumer, journal, acked = _consumer(tmp_path)
    a = Bookcase("MH-A")
    good, poison, later = a.loan("MH20200001", ADULT), a.loan("MH20200002", ADULT), a.loan("MH20200003", ADULT)
    real = journal.record

    def picky(batch, *args):
        if any(inc.event is not None and inc.event["id"] == poison["id"] for inc in batch):
            raise sqlite3.IntegrityError("a constraint this message breaks")
        return real(batch, *args)

    monkeypatch.setattr(journal, "record", picky)
    consumer._write([_received(1, good), _received(2, poison), _received(3, later)])
    assert acked == [1, 2, 3]
    assert journal.event(good["id"])["state"] == "received" and journal.event(later["id"])["state"] == "held"
    assert journal.event(poison["id"]) is None
    refused = journal._read(lambda tx: tx.execute("SELECT reason, detail FROM refused").fetchall())
    assert refused == [("unreadable", "IntegrityError")]
    journal.close()


def test_the_journals_own_failure_holds_the_batch_unacknowledged_until_it_passes(tmp_path, monkeypatch):
    consumer, journal, acked = _consumer(tmp_path)
    loan = Bookcase("MH-A").loan("MH20200001", ADULT)
    real, failures = journal.record, [3]

    def locked(batch, *args):
        if failures[0]:
            failures[0] -= 1
            assert acked == []                              # nothing acknowledged while it fails
            raise sqlite3.OperationalError("database is locked")
        return real(batch, *args)

    monkeypatch.setattr(journal, "record", locked)
    monkeypatch.setattr("gateway.consumer.RETRY_S", 0.01)
    consumer._write([_received(7, loan)])
    assert failures == [0] and acked == [7] and journal.event(loan["id"])["state"] == "received"
    journal.close()


def test_a_check_that_raises_refuses_the_message_and_the_writer_goes_on(tmp_path, monkeypatch):
    consumer, journal, acked = _consumer(tmp_path)
    loan = Bookcase("MH-A").loan("MH20200001", ADULT)

    def broken(topic, payload):
        raise RuntimeError("a case no schema foresaw")

    monkeypatch.setattr(consumer, "check", broken)
    consumer._write([_received(5, loan)])
    assert acked == [5]
    assert journal._read(lambda tx: tx.execute("SELECT reason FROM refused").fetchall()) == [("unreadable",)]
    journal.close()
