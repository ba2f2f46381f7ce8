"""The gateway as a whole in this process: real Mosquitto, a real SQLite journal, the in-memory ILS at the SIP2 edge.

Asserts what crosses the broker: acks (applied with the ILS's due date, rejected with the schema's reason,
duplicate), the retained patron statuses and the gateway's retained state.
"""

from __future__ import annotations

import threading

import pytest

from gateway.journal import Outcome
from gateway.patrons import import_export
from gateway.service import Gateway
from gateway.sip2 import Sip2Unavailable
from kiosk.sync import schema
from tests.gateway.fakes import FakeClient, FakeIls, FakePool
from tests.gateway.support import ROOT, Bookcase, Publisher, key, load, write_gateway_config
from tests.gateway.support import record as record_journal
from tests.scenarios.harness import wait_for
from tests.sync.fleet import Watcher

ADULT, BLOCKED = "3101120000018", "3101120000075"


@pytest.fixture
def running(tmp_path, broker):
    cfg = load(write_gateway_config(tmp_path / "gw", mqtt_port=broker.port))
    ils = FakeIls(items={f"MH2020000{n}": None for n in range(1, 10)}, blocked={BLOCKED})
    export = tmp_path / "patrons.csv"
    export.write_text(f"card,uids,class,status,name\n{ADULT},04A224B2C35E80,adult,active,张三\n"
                      f"{BLOCKED},,adult,active,李四\n", encoding="utf-8")
    watcher = Watcher(broker.port, (ROOT + "central/#",))
    watcher.wait_connected()
    gateway = Gateway(cfg, pool=FakePool(ils))
    import_export(gateway.journal, export, cfg.patrons.secret, snapshot=cfg.patrons.snapshot)
    stop = threading.Event()
    thread = threading.Thread(target=gateway.run, args=(stop,), name="gateway-under-test")
    thread.start()
    pub = Publisher(broker.port)
    try:
        wait_for(lambda: gateway.consumer.online, 10, "the gateway to connect")
        yield gateway, ils, pub, watcher, cfg
    finally:
        pub.close()
        stop.set()
        thread.join(60)
        watcher.close()


def results(watcher: Watcher, bookcase: str) -> dict[str, dict]:
    out = {}
    for msg in watcher.on(f"central/ack/{bookcase}"):
        schema.check_message("ack", msg)
        out.update({r["event"]: r for r in msg["results"]})
    return out


def test_a_loan_is_applied_and_acked_with_the_ils_due_date_and_statuses_are_published(running):
    gateway, ils, pub, watcher, cfg = running
    a = Bookcase("MH-A")
    loan, alarm = a.loan("MH20200001", ADULT), a.event("alarm", alarm="door_held_open", door=1)
    pub.send(loan, alarm)
    wait_for(lambda: len(results(watcher, "MH-A")) == 2, 20, "both acks")
    acks = results(watcher, "MH-A")
    assert acks[loan["id"]] == {"event": loan["id"], "seq": 1, "status": "applied", "due": "2026-12-29"}
    assert acks[alarm["id"]]["status"] == "applied"
    assert ils.items["MH20200001"] == ADULT
    # Every card key's status is published retained, and no card number crosses the broker.
    wait_for(lambda: len({m["patron"] for m in watcher.on("") if m.get("type") == "patron_status"}) >= 3, 20,
             "the patron statuses")
    statuses = {m["patron"]: m for m in watcher.on("") if m.get("type") == "patron_status"}
    assert statuses[key(ADULT)]["status"] == "active" and statuses[key("04A224B2C35E80")]["patron_class"] == "adult"
    wire = b"".join(p for _, p, _ in watcher.messages)
    assert ADULT.encode() not in wire and "张三".encode() not in wire and b"04A224B2C35E80" not in wire
    # The ILS says the blocked card is blocked: its status changes at the next refresh, after a transaction.
    pub.send(a.loan("MH20200002", BLOCKED))
    wait_for(lambda: any(m["patron"] == key(BLOCKED) and m["status"] == "blocked" for m in watcher.on("")
                         if m.get("type") == "patron_status"), 20, "the blocked status")
    wait_for(lambda: (watcher.last(f"central/gateway/{cfg.id}/state") or {}).get("counters", {}).get("applied")
             == 2, 20, "the state message after both loans")
    state = watcher.last(f"central/gateway/{cfg.id}/state")
    assert state["online"] is True and state["ils"]["up"] is True and state["backlog"]["depth"] == 0


def test_invalid_and_duplicate_events_are_acked_and_nothing_is_left_unacknowledged(running):
    gateway, ils, pub, watcher, cfg = running
    a = Bookcase("MH-A")
    loan = a.loan("MH20200003", ADULT)
    bad = dict(a.loan("MH20200004", ADULT))
    bad["door"] = "two"                                   # off-schema, but its id and seq are readable
    pub.send(loan, (f"{ROOT}bookcase/MH-A/event", schema.encode(bad)), (f"{ROOT}bookcase/MH-A/event", b"\xff{"),
             loan)
    wait_for(lambda: len(results(watcher, "MH-A")) == 2 and any(
        r["status"] == "duplicate" for m in watcher.on("central/ack/MH-A") for r in m["results"]), 20, "acks")
    acks = results(watcher, "MH-A")
    assert acks[bad["id"]]["status"] == "rejected" and "door" in acks[bad["id"]]["reason"]
    assert gateway.journal.status()["refused_unreadable"] == 1
    assert gateway.consumer.stats.duplicates == 1 and gateway.consumer.stats.refused == 2
    assert [c for c, *_ in ils.applied] == ["checkout"]


def test_ils_down_the_state_message_shows_the_backlog_then_it_drains(running):
    gateway, ils, pub, watcher, cfg = running
    ils.down = True
    a = Bookcase("MH-A")
    events = [a.loan(f"MH2020000{n}", ADULT) for n in range(5, 9)]
    pub.send(*events)
    wait_for(lambda: (watcher.last(f"central/gateway/{cfg.id}/state") or {}).get("backlog", {}).get("depth") == 4
             and watcher.last(f"central/gateway/{cfg.id}/state")["ils"]["up"] is False, 20, "the backlog in state")
    ils.down = False
    wait_for(lambda: len(results(watcher, "MH-A")) == 4, 30, "the acks after the ILS came back")
    assert [i for _, i, _, _ in ils.applied] == [f"MH2020000{n}" for n in range(5, 9)]


def test_an_event_is_not_acknowledged_until_the_journal_has_it(tmp_path, broker):
    """The journal cannot be written: no PUBACK, so the broker keeps the event for the gateway's session, and
    the gateway applies it once it can write again (here: after a restart)."""
    cfg = load(write_gateway_config(tmp_path / "gw", mqtt_port=broker.port))
    ils = FakeIls(items={"MH20200001": None})
    export = tmp_path / "patrons.csv"
    export.write_text(f"card,class,status\n{ADULT},adult,active\n")
    first = Gateway(cfg, pool=FakePool(ils))
    import_export(first.journal, export, cfg.patrons.secret, snapshot=None)
    tried = threading.Event()

    def record(*args, **kwargs):
        tried.set()
        raise OSError("disk full")
    first.journal.record = record
    stop = threading.Event()
    thread = threading.Thread(target=first.run, args=(stop,), name="gateway-first")
    thread.start()
    pub = Publisher(broker.port)
    loan = Bookcase("MH-A").loan("MH20200001", ADULT)
    try:
        wait_for(lambda: first.consumer.online, 10, "the gateway to connect")
        pub.send(loan)
        assert tried.wait(10), "the event never reached the gateway"
    finally:
        stop.set()
        thread.join(60)
    assert ils.applied == [] and first.consumer.stats.received == 0
    second = Gateway(cfg, pool=FakePool(ils))
    stop2 = threading.Event()
    thread2 = threading.Thread(target=second.run, args=(stop2,), name="gateway-second")
    thread2.start()
    try:
        wait_for(lambda: ils.applied, 20, "the redelivered event to be applied")
        assert [c for c, *_ in ils.applied] == ["checkout"] and second.consumer.stats.received == 1
    finally:
        pub.close()
        stop2.set()
        thread2.join(60)


def _statuses(watcher: Watcher, patron: str) -> list[dict]:
    return [m for m in watcher.on("") if m.get("type") == "patron_status" and m["patron"] == patron]


@pytest.mark.parametrize("fault", ["gateway killed before it asked", "ILS down when the question was due"])
def test_a_patron_a_loan_touched_is_asked_about_even_when_the_first_question_was_lost(tmp_path, broker, fault,
                                                                                      monkeypatch):
    """The patron's loans elsewhere change with a desk loan the ILS knows: the loan at the bookcase touched them,
    and the question to the ILS after it is lost — the gateway was killed right after the outcome, or the ILS
    was down when the question was due. The journal keeps them marked; the (next) gateway asks and publishes.
    Every patron was asked just before, so no sweep of never-asked patrons covers for the lost question."""
    cfg = load(write_gateway_config(tmp_path / "gw", mqtt_port=broker.port))
    ils = FakeIls(items={"MH20200001": None, "MHC0000001": ADULT})          # a desk loan, made at the library
    export = tmp_path / "patrons.csv"
    export.write_text(f"card,class,status\n{ADULT},adult,active\n")
    watcher = Watcher(broker.port, (ROOT + "central/patron/#",))
    watcher.wait_connected()
    first = Gateway(cfg, pool=FakePool(ils))
    import_export(first.journal, export, cfg.patrons.secret, snapshot=None)
    first.journal.update_patron(key(ADULT), "active", 1)                   # asked just now: one desk loan
    loan = Bookcase("MH-A").loan("MH20200001", ADULT)
    asked = threading.Event()
    if fault == "gateway killed before it asked":
        record_journal(first.journal, loan)                                 # journaled, applied, then killed
        claimed = first.journal.claim("gw-1#dead/0", 60)
        ils.items["MH20200001"] = ADULT
        assert first.journal.finish(claimed, "gw-1#dead/0", Outcome("applied", due="2026-12-29"), "gw-1",
                                    touched={key(ADULT)})
        first.journal.close()
        gateway = Gateway(cfg, pool=FakePool(ils))
    else:
        gateway = first
        answer = FakeClient.patron_information

        def down_once(self, patron_id):
            if not asked.is_set():
                asked.set()
                raise Sip2Unavailable("cannot connect to the ILS: connection refused")
            return answer(self, patron_id)
        monkeypatch.setattr(FakeClient, "patron_information", down_once)
    ils.items["MHC0000001"] = None                                          # the desk loan came back meanwhile
    stop = threading.Event()
    thread = threading.Thread(target=gateway.run, args=(stop,), name="gateway-under-test")
    thread.start()
    pub = Publisher(broker.port)
    try:
        if fault == "ILS down when the question was due":
            wait_for(lambda: gateway.consumer.online, 10, "the gateway to connect")
            pub.send(loan)
            assert asked.wait(20), "the gateway never asked about the patron after the loan"
        wait_for(lambda: any(m["loans_elsewhere"] == 0 for m in _statuses(watcher, key(ADULT))), 30,
                 "the patron's status after the lost question")
        assert gateway.journal.status()["patrons"]["to_ask"] == 0
        assert gateway.journal.patron(key(ADULT)).loans_elsewhere == 0
        assert ils.items["MH20200001"] == ADULT
    finally:
        stop.set()
        thread.join(60)
        pub.close()
        watcher.close()
