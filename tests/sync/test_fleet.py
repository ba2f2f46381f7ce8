"""Two bookcases and a broker: borrow at one, return at the other, and what the library sees on the wire."""

from __future__ import annotations

import uuid
from datetime import datetime

import pytest

from kiosk.core.policy import patron_key
from kiosk.sync.topics import Topics
from simulators.fleet.bookcases import SECRET
from tests.scenarios.harness import ADULT, NEAR_LIMIT, wait_for
from tests.sync.fleet import ROOT_TOPIC, FleetCase, Watcher, leave_session, mqtt_section

ENVELOPE = {"v", "id", "bookcase", "seq", "ts", "type"}


@pytest.fixture
def fleet(tmp_path, broker):
    watcher = Watcher(broker.port)
    watcher.wait_connected()
    a = FleetCase(tmp_path / "a", "MH-A", mqtt_section(broker.port), first_item=1)
    b = FleetCase(tmp_path / "b", "MH-B", mqtt_section(broker.port), first_item=101)
    try:
        a.start()
        b.start()
        yield a, b, watcher
    finally:
        for case in (a, b):
            case.stop()
        watcher.close()


def _online(case: FleetCase) -> bool:
    return case.app is not None and case.app.sync.online


def _holds(watcher: Watcher, bookcase: str, item: str) -> bool:
    """The last holdings message of ``bookcase`` the watcher saw lists ``item``."""
    last = watcher.last(f"bookcase/{bookcase}/holdings")
    return bool(last) and item in [i["item"] for i in last["items"]]


def test_borrow_at_a_return_at_b_both_ledgers_agree(fleet):
    a, b, watcher = fleet
    wait_for(lambda: _online(a) and _online(b), 20, "both bookcases online")
    key = patron_key(SECRET, ADULT)
    book = a.items(1)[0]

    a.session(ADULT, 1, take=[book])
    assert a.loans() == [book]
    # The loan made at A reaches B and counts against the patron's limit there.
    wait_for(lambda: len(b.remote_loans(open_only=True)) == 1, 20, "B to learn of the loan at A")
    assert b.remote_loans()[0]["item_id"] == book and b.remote_loans()[0]["bookcase"] == "MH-A"
    assert b.view.open_loan_count(key) == 1 == a.view.open_loan_count(key)

    a.carry_to(b, book)
    b.session(ADULT, 2, put=[book])
    assert b.returns() == [book]
    # B's return closes the loan at A; B's record of A's loan is closed too.
    wait_for(lambda: not a.view.loans(open_only=True), 20, "A to close the loan returned at B")
    (loan,) = a.view.loans()
    assert loan["item_id"] == book and loan["returned_at"] is not None
    assert b.remote_loans(open_only=True) == []
    assert a.view.open_loan_count(key) == 0 == b.view.open_loan_count(key)

    # Everything both bookcases recorded reached the broker, each transaction once, in seq order.
    wait_for(lambda: a.depth() == 0 and b.depth() == 0, 20, "both outboxes to drain")
    for case in (a, b):
        outbox = case.view.outbox()
        wait_for(lambda: len(watcher.events(case.id)) >= len(outbox), 20, f"the watcher to see {case.id}'s events")
        seen = watcher.events(case.id)
        assert [e["id"] for e in seen] == [e["id"] for e in outbox]      # one id per transaction, none twice
        assert [e["seq"] for e in seen] == sorted(e["seq"] for e in seen)
        for e in seen:
            assert ENVELOPE <= set(e) and e["v"] == 1 and e["bookcase"] == case.id
            uuid.UUID(e["id"])
            assert datetime.fromisoformat(e["ts"]).tzinfo is not None
    (loan_event,) = [e for e in watcher.events("MH-A") if e["type"] == "loan"]
    assert (loan_event["item"], loan_event["patron"], loan_event["door"]) == (book, key, 1)
    assert loan_event["due"] and loan_event["session"]
    (return_event,) = [e for e in watcher.events("MH-B") if e["type"] == "return"]
    assert (return_event["item"], return_event["door"]) == (book, 2)


def test_state_holdings_and_the_fleet_title_index(fleet):
    a, b, watcher = fleet
    wait_for(lambda: _online(a) and _online(b), 20, "both bookcases online")
    state = wait_for(lambda: watcher.last("bookcase/MH-A/state"), 20, "A's state")
    assert state["online"] is True and state["version"] and state["bookcase"] == "MH-A"
    assert "outbox_depth" in state and "last_sync" in state
    # B knows what A holds, by title and by item id.
    book = a.items(2)[0]
    title = a.sim.world.book(book).title
    wait_for(lambda: any(r["item_id"] == book for r in b.view.where_else(book)), 20, "B's index of A's holdings")
    (hit,) = [h for h in b.view.where_else(title) if h["item_id"] == book]
    assert (hit["bookcase"], hit["door"], hit["title"], hit["name"]) == ("MH-A", 2, title, "测试书柜 MH-A")
    assert all(h["bookcase"] == "MH-A" for h in b.view.where_else(book))
    # B's screen, asked for it, points to A: B's own shelves do not hold it.
    assert [(r["bookcase"], r["door"]) for r in b.app.find(book)] == [("MH-A", 2)]
    # After a loan at A, A's holdings no longer list the book, and B's index follows.
    a.session(ADULT, 2, take=[book])
    wait_for(lambda: not b.view.where_else(book), 20, "B's index to drop the book borrowed at A")
    # A stopped cleanly says so in its retained state.
    a.stop_thread()
    wait_for(lambda: watcher.last("bookcase/MH-A/state")["online"] is False, 20, "A's offline state")


def test_a_loan_elsewhere_counts_against_the_limit_here(fleet):
    a, b, watcher = fleet
    wait_for(lambda: _online(a) and _online(b), 20, "both bookcases online")
    # NEAR_LIMIT has 14 loans elsewhere and a limit of 15: one book at A leaves nothing at B.
    a.session(NEAR_LIMIT, 1, take=[a.items(1)[0]])
    wait_for(lambda: b.remote_loans(open_only=True), 20, "B to learn of the loan at A")
    b.choose(3)
    b.sim.scan(NEAR_LIMIT)
    snap = wait_for(lambda: b.app.snapshot if b.app.snapshot.state != "idle" else None, 10, "B to answer the card")
    assert snap.may_borrow == 0 and snap.reason == "at_limit"


def test_a_bookcase_that_was_down_gets_what_it_missed(fleet):
    """clean_start=False and a session expiry: the broker queues the fleet's events for a stopped bookcase."""
    a, b, watcher = fleet
    wait_for(lambda: _online(a) and _online(b), 20, "both bookcases online")
    wait_for(lambda: b.view.where_else(a.items(1)[0]), 20, "B to know A's holdings")
    duplicates = b.counters().get("duplicates", 0)
    b.stop_thread()
    book = a.items(1)[0]
    a.session(ADULT, 1, take=[book])
    wait_for(lambda: a.depth() == 0, 20, "A's outbox to drain while B is down")
    assert b.remote_loans() == []

    b.start_thread()
    wait_for(lambda: [r["item_id"] for r in b.remote_loans(open_only=True)] == [book], 20,
             "B to apply the loan it missed")
    wait_for(lambda: not b.view.where_else(book), 20, "B to take A's new holdings")
    # Subscribing again to the session the broker kept does not replay every retained message.
    assert b.counters().get("duplicates", 0) == duplicates


@pytest.mark.parametrize("subscribed", [False, True], ids=["session-without-subscriptions", "old-database"])
def test_a_session_left_on_the_broker_does_not_deafen_a_bookcase(tmp_path, broker, subscribed):
    """The broker still has a session for B: without subscriptions (the link dropped before SUBSCRIBE), or
    with them but from B's previous database (a replaced SD card). B must hear the fleet either way, and a
    database that never synced gets every retained message (A's holdings) at once."""
    a = FleetCase(tmp_path / "a", "MH-A", mqtt_section(broker.port), first_item=1)
    b = FleetCase(tmp_path / "b", "MH-B", mqtt_section(broker.port), first_item=101)
    watcher = Watcher(broker.port, (ROOT_TOPIC + "bookcase/MH-A/holdings",))
    try:
        watcher.wait_connected()
        a.start()
        book = a.items(2)[0]
        wait_for(lambda: _holds(watcher, "MH-A", book), 20, "A's retained holdings after its first stocktake")
        a.stop_thread()             # A publishes nothing more: only the retained holdings can tell B
        leave_session(broker.port, "MH-B", Topics(ROOT_TOPIC, "MH-B").subscriptions() if subscribed else None)
        b.start()
        wait_for(lambda: _online(b), 20, "B online")
        wait_for(lambda: b.view.where_else(book), 20, "B to know A's holdings from the retained message")
        a.start_thread()
        a.session(ADULT, 2, take=[book])
        wait_for(lambda: b.remote_loans(open_only=True), 20, "B to learn of the loan at A")
        assert b.remote_loans()[0]["item_id"] == book
    finally:
        for case in (a, b):
            case.stop()
        watcher.close()
