"""The broker goes away — for a while, or every few seconds — while both bookcases keep lending and taking back."""

from __future__ import annotations

import threading

import pytest

from kiosk.core.policy import patron_key
from simulators.fleet.bookcases import SECRET
from tests.scenarios.harness import ADULT, ADULT2, wait_for
from tests.sync.fleet import FleetCase, Watcher, mqtt_section


@pytest.fixture
def fleet(tmp_path, broker):
    # The watcher keeps a session on the broker, so it gets what was published while it was reconnecting.
    watcher = Watcher(broker.port, client_id="library-watcher", persistent=True)
    watcher.wait_connected()
    a = FleetCase(tmp_path / "a", "MH-A", mqtt_section(broker.port, inflight=4), first_item=1)
    b = FleetCase(tmp_path / "b", "MH-B", mqtt_section(broker.port, inflight=4), first_item=101)
    try:
        a.start()
        b.start()
        wait_for(lambda: a.app.sync.online and b.app.sync.online, 20, "both bookcases online")
        yield a, b, watcher
    finally:
        for case in (a, b):
            case.stop()
        watcher.close()


def assert_stream_complete(case: FleetCase, watcher: Watcher) -> None:
    """Every outbox row reached the broker, first seen in seq order; a repeat only ever under the same id."""
    outbox = case.view.outbox()
    wait_for(lambda: {e["id"] for e in watcher.events(case.id)} >= {e["id"] for e in outbox}, 30,
             f"the watcher to have every event of {case.id}")
    seen = watcher.events(case.id)
    by_id = {e["id"]: e for e in outbox}
    first: list[int] = []
    for e in seen:
        assert e == by_id[e["id"]], "a re-sent event must be the same event"
        if e["seq"] not in first:
            first.append(e["seq"])
    assert first == sorted(first) == [e["seq"] for e in outbox]


def test_broker_down_sessions_go_on_then_everything_drains_in_order(fleet, broker):
    a, b, watcher = fleet
    x1, x2 = a.items(1)[:2]
    y1 = b.items(1)[0]
    broker.stop()
    wait_for(lambda: not a.app.sync.online and not b.app.sync.online, 20, "both bookcases offline")
    wait_for(lambda: a.app.flow.online is False and b.app.flow.online is False, 10, "the flows to know")

    a.session(ADULT, 1, take=[x1, x2])
    b.session(ADULT2, 1, take=[y1])
    a.carry_to(b, x1)
    b.session(ADULT, 2, put=[x1])              # returned at B before B has heard of the loan at A
    assert a.depth() > 0 and b.depth() > 0
    assert b.remote_loans() == [] and a.remote_loans() == []

    broker.start()
    wait_for(lambda: a.depth() == 0 and b.depth() == 0, 30, "both outboxes to drain")
    wait_for(lambda: len(b.remote_loans()) == 2 and len(a.remote_loans()) == 1, 30, "the loans to replicate")
    wait_for(lambda: a.view.loans(open_only=True) and len(a.view.loans(open_only=True)) == 1, 30,
             "A to close the loan returned at B")
    # A's loan of x1 arrived at B after B's own return of x1: recorded, and closed at once.
    assert {r["item_id"] for r in b.remote_loans(open_only=True)} == {x2}
    assert [r["item_id"] for r in a.view.loans(open_only=True)] == [x2]
    assert {r["item_id"] for r in a.remote_loans(open_only=True)} == {y1}
    for case in (a, b):
        assert case.view.open_loan_count(patron_key(SECRET, ADULT)) == 1
        assert case.view.open_loan_count(patron_key(SECRET, ADULT2)) == 1
        assert_stream_complete(case, watcher)
    # Nothing applied twice: one remote row per loan event.
    loan_ids = [e["id"] for e in watcher.events("MH-A") if e["type"] == "loan"]
    assert sorted(r["event_id"] for r in b.remote_loans()) == sorted(set(loan_ids))


def test_flapping_broker_during_a_burst_of_sessions(fleet, broker):
    a, b, watcher = fleet
    stop = threading.Event()
    restarts = []

    def flap() -> None:
        while not stop.wait(1.2):
            broker.restart(down_s=0.4)
            restarts.append(1)

    def lost(case: FleetCase) -> int:
        return case.counters().get("link_lost", 0)

    flapper = threading.Thread(target=flap, name="test-flapper")
    flapper.start()
    try:
        borrowed: list[str] = []
        # Sessions go on until both bookcases have lost the broker a few times in the middle of them.
        while len(borrowed) < 6 or min(lost(a), lost(b)) < 3:
            i = len(borrowed)
            assert i < 15, f"after {i} sessions and {len(restarts)} broker restarts, A lost its link " \
                           f"{lost(a)} times and B {lost(b)}"
            book = a.items(1 + i % 3)[0]
            a.session(ADULT if i % 2 else ADULT2, 1 + i % 3, take=[book])
            borrowed.append(book)
            a.carry_to(b, book)
            b.session(ADULT, 1 + i % 3, put=[book])
    finally:
        stop.set()
        flapper.join(timeout=30)
    if not broker.running:
        broker.start()
    wait_for(lambda: a.depth() == 0 and b.depth() == 0, 60, "both outboxes to drain")
    wait_for(lambda: len(b.remote_loans()) == len(borrowed), 60, "B to know every loan made at A")
    wait_for(lambda: not a.view.loans(open_only=True), 60, "A to close every loan returned at B")
    assert b.remote_loans(open_only=True) == []
    assert sorted(r["item_id"] for r in b.remote_loans()) == sorted(borrowed)
    for case in (a, b):
        assert_stream_complete(case, watcher)
