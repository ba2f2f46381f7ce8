"""The whole gateway against the simulated ILS over real TCP: its own SIP2 pool (gateway.sip2, built from the
config), real Mosquitto, a real SQLite journal. What issue 12 asks, with the ILS's transaction list as the truth:
a loan at A and its return at B reach the ILS once each; the connection dropped after the ILS applied a checkout
(exactly once); the return arriving before the loan; the item on loan to another patron; a blocked patron; a
refusal reaching the review queue; the ILS down for 1,000 events, then drained in each item's order."""

from __future__ import annotations

import threading
from datetime import date, datetime, timedelta

import pytest

from gateway.patrons import import_export
from gateway.service import Gateway
from kiosk.sync import schema
from simulators.ils import IlsServer, Library
from tests.gateway.support import ROOT, T0, Bookcase, Publisher, load, write_gateway_config
from tests.scenarios.harness import wait_for
from tests.sync.fleet import Watcher

ADULT, CHILD, BLOCKED = "3101120000018", "3101120000059", "3101120000075"
CARDS = [ADULT, CHILD, BLOCKED, "3101120000026", "3101120000042"]


@pytest.fixture
def chain(tmp_path, broker):
    """(gateway, ils server, publisher, watcher): the gateway's pool of 4 talks SIP2 to the simulated ILS."""
    library = Library.demo(items=600)
    ils = IlsServer(library, password="sip2-test-password", latency_ms=1, timeout_period=999).start()
    cfg = load(write_gateway_config(tmp_path / "gw", mqtt_port=broker.port, ils_port=ils.port,
                                    ils_extra="pool_size = 4\nkeepalive_s = 30"))
    export = tmp_path / "patrons.csv"
    export.write_text("card,class,status\n" + "".join(f"{c},adult,active\n" for c in CARDS))
    watcher = Watcher(broker.port, (ROOT + "central/ack/#",))
    watcher.wait_connected()
    gateway = Gateway(cfg)
    import_export(gateway.journal, export, cfg.patrons.secret, snapshot=None)
    stop = threading.Event()
    thread = threading.Thread(target=gateway.run, args=(stop,), name="gateway-over-tcp")
    thread.start()
    pub = Publisher(broker.port)
    try:
        wait_for(lambda: gateway.consumer.online, 10, "the gateway to connect")
        yield gateway, ils, pub, watcher
    finally:
        pub.close()
        stop.set()
        thread.join(60)
        watcher.close()
        ils.stop()


def acks(watcher: Watcher, *bookcases: str) -> dict[str, dict]:
    out = {}
    for name in bookcases:
        for msg in watcher.on(f"central/ack/{name}"):
            schema.check_message("ack", msg)
            out.update({r["event"]: r for r in msg["results"]})
    return out


def at_ils(ils: IlsServer, item: str) -> list[tuple[str, str | None]]:
    return [(t["kind"], t["patron"]) for t in ils.library.transactions() if t["item"] == item]


def test_a_loan_at_a_and_its_return_at_b_reach_the_ils_once_each(chain):
    gateway, ils, pub, watcher = chain
    a, b = Bookcase("MH-A"), Bookcase("MH-B", start=T0 + timedelta(hours=1))
    loan, ret = a.loan("MH20200001", ADULT), b.ret("MH20200001")
    pub.send(loan)
    wait_for(lambda: loan["id"] in acks(watcher, "MH-A"), 20, "the loan's ack")
    pub.send(ret)
    wait_for(lambda: ret["id"] in acks(watcher, "MH-B"), 20, "the return's ack")
    got = acks(watcher, "MH-A", "MH-B")
    assert got[loan["id"]]["status"] == got[ret["id"]]["status"] == "applied"
    assert got[loan["id"]]["due"] == (date.today() + timedelta(days=30)).isoformat()      # the ILS's due date
    assert at_ils(ils, "MH20200001") == [("checkout", ADULT), ("checkin", ADULT)]
    checkin = ils.library.transactions()[-1]                                          # the return date honoured
    assert datetime.fromisoformat(checkin["date"]) == datetime.fromisoformat(ret["ts"]).replace(microsecond=0)


def test_a_dropped_answer_after_the_checkout_is_applied_once(chain):
    gateway, ils, pub, watcher = chain
    ils.faults.drop_next = 1
    loan = Bookcase("MH-A").loan("MH20200002", ADULT)
    pub.send(loan)
    wait_for(lambda: loan["id"] in acks(watcher, "MH-A"), 30, "the loan's ack")
    assert acks(watcher, "MH-A")[loan["id"]]["status"] == "applied"
    assert at_ils(ils, "MH20200002") == [("checkout", ADULT)]
    assert ils.stats["dropped"] == 1 and ils.stats["requests"]["17"] >= 1          # asked before trying again
    calls = [c["command"] for c in gateway.journal.sip_log(loan["id"])]
    assert calls[:2] == ["checkout", "item_information"] and calls.count("checkout") == 1


def test_the_return_arriving_before_the_loan(chain):
    gateway, ils, pub, watcher = chain
    clock = [T0]
    a, b = Bookcase("MH-A", clock=clock), Bookcase("MH-B", clock=clock)
    loan = a.loan("MH20200003", CHILD)                  # A was offline: its loan reaches the broker late
    ret = b.ret("MH20200003")
    pub.send(ret)
    pub.send(loan)
    wait_for(lambda: {loan["id"], ret["id"]} <= set(acks(watcher, "MH-A", "MH-B")), 30, "both acks")
    assert at_ils(ils, "MH20200003") == [("checkout", CHILD), ("checkin", CHILD)]


def test_an_item_on_loan_to_another_patron_is_checked_in_first(chain):
    gateway, ils, pub, watcher = chain
    assert ils.library.checkout(CHILD, "MH20200004", no_block=False, date=None, via="desk").ok
    loan = Bookcase("MH-A").loan("MH20200004", ADULT)
    pub.send(loan)
    wait_for(lambda: loan["id"] in acks(watcher, "MH-A"), 30, "the loan's ack")
    assert acks(watcher, "MH-A")[loan["id"]]["status"] == "applied"
    assert at_ils(ils, "MH20200004") == [("checkout", CHILD), ("checkin", CHILD), ("checkout", ADULT)]


def test_a_patron_borrowing_the_same_book_again_before_the_return_arrives_gets_both_recorded(chain):
    """The return at B is late (B offline, or a gateway killed holding it); the same patron borrows the book again
    at B. The ILS still has the first loan: the second is not taken for it — the return and the new loan (with
    its new due date) are recorded, and the late return changes nothing more."""
    gateway, ils, pub, watcher = chain
    clock = [T0]
    a, b = Bookcase("MH-A", clock=clock), Bookcase("MH-B", clock=clock)
    first = a.loan("MH20200005", ADULT)
    pub.send(first)
    wait_for(lambda: first["id"] in acks(watcher, "MH-A"), 30, "the first loan's ack")
    ret, again = b.ret("MH20200005", minutes=60), b.loan("MH20200005", ADULT, minutes=1)
    pub.send(again)
    wait_for(lambda: again["id"] in acks(watcher, "MH-B"), 30, "the second loan's ack")
    assert at_ils(ils, "MH20200005") == [("checkout", ADULT), ("checkin", ADULT), ("checkout", ADULT)]
    checkin = [t for t in ils.library.transactions() if t["item"] == "MH20200005"][1]
    assert datetime.fromisoformat(checkin["date"]) == datetime.fromisoformat(again["ts"]).replace(microsecond=0)
    pub.send(ret)
    wait_for(lambda: ret["id"] in acks(watcher, "MH-B"), 30, "the late return's ack")
    assert at_ils(ils, "MH20200005") == [("checkout", ADULT), ("checkin", ADULT), ("checkout", ADULT)]
    assert [(e["state"], e.get("reason")) for e in gateway.journal.events() if e["id"] == ret["id"]] == [
        ("informational", "superseded")]


def test_a_late_loan_of_a_book_lent_again_since_is_recorded_when_the_book_comes_back(chain):
    """A was offline. Its patron borrowed the book there and returned it at B (the return waited for the loan, then
    was recorded as not on loan); B lent it again. A's loan arrives now: the ILS cannot take it while the book is
    out, so it waits, and when B's patron returns the book it is lent and returned at its own times."""
    gateway, ils, pub, watcher = chain
    clock = [T0]
    a, b = Bookcase("MH-A", clock=clock), Bookcase("MH-B", clock=clock)
    late = a.loan("MH20200006", ADULT)
    own_return = b.ret("MH20200006", minutes=60)
    relent = b.loan("MH20200006", CHILD, minutes=60)
    pub.send(own_return)
    wait_for(lambda: own_return["id"] in acks(watcher, "MH-B"), 30, "the return's ack (after its hold)")
    pub.send(relent)
    wait_for(lambda: relent["id"] in acks(watcher, "MH-B"), 30, "the second loan's ack")
    pub.send(late)
    wait_for(lambda: late["id"] in acks(watcher, "MH-A"), 30, "the late loan's ack")
    assert at_ils(ils, "MH20200006") == [("checkout", CHILD)]                  # the book is out: nothing yet
    assert gateway.journal.event(late["id"])["reason"] == "deferred"
    back = b.ret("MH20200006", minutes=60)
    pub.send(back)
    wait_for(lambda: gateway.journal.event(late["id"])["state"] == "applied", 30, "the late loan recorded")
    assert at_ils(ils, "MH20200006") == [("checkout", CHILD), ("checkin", CHILD), ("checkout", ADULT),
                                         ("checkin", ADULT)]
    checkin = [t for t in ils.library.transactions() if t["item"] == "MH20200006"][-1]
    assert datetime.fromisoformat(checkin["date"]) == datetime.fromisoformat(own_return["ts"]).replace(microsecond=0)
    assert ils.library.items["MH20200006"].borrower is None                   # back on the shelf, as it is


def test_a_blocked_patrons_loan_is_recorded_with_no_block(chain):
    gateway, ils, pub, watcher = chain
    loan = Bookcase("MH-A").loan("MH20200005", BLOCKED)
    pub.send(loan)
    wait_for(lambda: loan["id"] in acks(watcher, "MH-A"), 20, "the loan's ack")
    assert acks(watcher, "MH-A")[loan["id"]]["status"] == "applied"
    (t,) = [t for t in ils.library.transactions() if t["item"] == "MH20200005"]
    assert t["no_block"] and t["overridden"] == ["Patron blocked: see a librarian"]


def test_a_refusal_reaches_the_review_queue_with_the_screen_message(chain):
    gateway, ils, pub, watcher = chain
    ils.library.refuse_items.add("MH20200006")
    ils.library.refuse_message = "Item withdrawn from circulation"
    loan = Bookcase("MH-A").loan("MH20200006", ADULT)
    pub.send(loan)
    wait_for(lambda: loan["id"] in acks(watcher, "MH-A"), 20, "the loan's ack")
    ack = acks(watcher, "MH-A")[loan["id"]]
    assert ack["status"] == "rejected" and "Item withdrawn from circulation" in ack["reason"]
    row = gateway.journal.event(loan["id"])
    assert row["state"] == "rejected" and row["screen_message"] == "Item withdrawn from circulation"
    assert gateway.journal.backlog()["review_open"] == 1
    assert at_ils(ils, "MH20200006") == []


def test_the_ils_down_for_1000_events_then_drained_in_each_items_order(chain):
    gateway, ils, pub, watcher = chain
    ils.go_down()
    clock = [T0]
    cases = [Bookcase(f"MH-{c}", clock=clock) for c in "ABCD"]
    events = []
    for round_ in range(5):                              # 100 items, each lent and returned five times
        for n in range(100):
            item = f"MH2020{n + 101:04d}"
            events += [cases[(n + round_) % 4].loan(item, CARDS[n % 2], minutes=0.01),
                       cases[(n + round_ + 1) % 4].ret(item, minutes=0.01)]
    assert len(events) == 1000
    for case in cases:
        pub.send(*[e for e in events if e["bookcase"] == case.name], wait=False)
    wait_for(lambda: gateway.journal.backlog()["depth"] == 1000, 60, "all 1,000 events journaled")
    assert ils.library.transactions() == [] and gateway.health.up is False
    ils.come_up()
    wait_for(lambda: len(acks(watcher, "MH-A", "MH-B", "MH-C", "MH-D")) == 1000, 240, "1,000 acks")
    assert {r["status"] for r in acks(watcher, "MH-A", "MH-B", "MH-C", "MH-D").values()} == {"applied"}
    for n in range(100):
        item = f"MH2020{n + 101:04d}"
        assert [k for k, _ in at_ils(ils, item)] == ["checkout", "checkin"] * 5, item
    assert len(ils.library.transactions()) == 1000
