"""Whole-bookcase scenarios: the daemon against the simulators over real ptys, asserting on flow states,
ledger rows and outbox events."""

from __future__ import annotations

import time

import pytest

from kiosk.core.policy import patron_key
from tests.scenarios.harness import ADULT, ADULT2, BLOCKED, EXPIRED, NEAR_LIMIT, Bookcase, wait_for


@pytest.fixture
def bookcase(tmp_path):
    case = Bookcase(tmp_path).start()
    yield case
    case.stop()


def key(card):
    return patron_key("test-secret-0123456789", card)


def test_borrow_two_books(bookcase):
    books = bookcase.items(2)[:2]
    session = bookcase.session(ADULT, 2, take=books)
    assert bookcase.loans(session) == books
    assert {r["patron_key"] for r in bookcase.view.loans()} == {key(ADULT)}
    loan_events = bookcase.events("loan")
    assert sorted(e["item"] for e in loan_events) == books
    assert all(e["patron"] == key(ADULT) and e["door"] == 2 and e["bookcase"] == "MH-TEST" for e in loan_events)
    # The holdings now match the compartment exactly.
    assert sorted(r["item_id"] for r in bookcase.view.holdings(2)) == bookcase.items(2)
    assert bookcase.app.snapshot.state in ("receipt", "idle")
    receipt = bookcase.app.snapshot.receipt
    if receipt is not None:
        assert sorted(item for item, _title, _due in receipt.borrowed) == books


def test_borrow_here_return_at_another_door(bookcase):
    book = bookcase.items(1)[0]
    bookcase.session(ADULT, 1, take=[book])
    session = bookcase.session(ADULT2, 3, put=[book])
    assert bookcase.returns(session) == [book]
    (loan,) = bookcase.view.loans()
    assert loan["returned_at"] is not None
    assert bookcase.loans() == [book] and bookcase.view.loans(open_only=True) == []
    assert [e["item"] for e in bookcase.events("return")] == [book]


def test_borrow_and_return_in_one_session(bookcase):
    first = bookcase.items(1)[0]
    bookcase.session(ADULT, 1, take=[first])
    other = bookcase.items(2)[0]
    session = bookcase.session(ADULT, 2, take=[other], put=[first])
    assert bookcase.loans(session) == [other] and bookcase.returns(session) == [first]
    assert sorted(r["item_id"] for r in bookcase.view.loans(open_only=True)) == [other]


def test_uncertain_tag_is_never_charged(bookcase):
    weak, taken = bookcase.items(1)[:2]
    bookcase.sim.flaky(weak)
    session = bookcase.session(ADULT, 1, take=[taken])
    assert bookcase.loans(session) == [taken]
    (flag,) = bookcase.events("uncertain_tag")
    assert flag["item"] == weak and flag["origin"] == "present"
    (held,) = [h for h in bookcase.view.holdings(1) if h["item_id"] == weak]
    assert held["status"] == "uncertain"


def test_door_held_open_raises_one_alarm_cleared_when_it_closes(tmp_path):
    case = Bookcase(tmp_path, door_open_prompt_s=1, door_open_alarm_s=1.5).start()
    try:
        session = case.session(ADULT, 1, take=case.items(1)[:1], hold_s=2.5)
        alarms = [e for e in case.events("alarm") if e["alarm"] == "door_held_open"]
        assert len(alarms) == 1 and alarms[0]["door"] == 1 and alarms[0]["session"] == session["id"]
        (cleared,) = [e for e in case.events("alarm_cleared") if e["alarm"] == "door_held_open"]
        assert cleared["door"] == 1 and cleared["session"] == session["id"] and cleared["seq"] > alarms[0]["seq"]
        assert len(case.loans(session)) == 1
    finally:
        case.stop()


def test_forced_door_is_an_alarm_and_what_left_is_missing(bookcase):
    book = bookcase.items(3)[0]
    bookcase.sim.force(3)
    wait_for(lambda: any(e["alarm"] == "door_forced" for e in bookcase.events("alarm")) and bookcase.seen_open(3),
             10, "door_forced")
    bookcase.sim.take(3, book)
    bookcase.sim.close(3)
    wait_for(lambda: bookcase.settled_sessions("forced"), 30, "the forced session to settle")
    assert bookcase.loans() == []
    assert [r["item_id"] for r in bookcase.view.missing()] == [book]
    assert [e["item"] for e in bookcase.events("item_missing")] == [book]


def test_unknown_tag_is_a_foreign_object(bookcase):
    bookcase.choose(2)
    bookcase.sim.scan(ADULT)
    wait_for(lambda: bookcase.seen_open(2), 10, "door 2 to open")
    junk_uid = bookcase.sim.put_junk(2)
    bookcase.sim.close(2)
    wait_for(lambda: bookcase.settled_sessions(), 30, "the session to settle")
    (foreign,) = bookcase.events("foreign_object")
    assert foreign["uid"] == junk_uid.upper() and foreign["change"] == "added" and foreign["reason"]
    assert bookcase.loans() == [] and bookcase.returns() == []
    assert bookcase.app.snapshot.state in ("receipt", "idle")


@pytest.mark.parametrize("card,reason", [(BLOCKED, "blocked"), (EXPIRED, "expired"), ("9999999999990", "unknown_card")])
def test_refused_card_opens_nothing(bookcase, card, reason):
    bookcase.choose(1)
    bookcase.sim.scan(card)
    (refusal,) = wait_for(lambda: bookcase.events("refusal"), 10, "the refusal")
    assert refusal["reason"] == reason
    assert bookcase.app.snapshot.state == "refused" or bookcase.app.snapshot.reason in (reason, None)
    time.sleep(0.3)
    assert not bookcase.door_open(1) and bookcase.view.sessions()[-1]["kind"] == "stocktake"


def test_over_the_limit_records_every_book_and_alarms(bookcase):
    books = bookcase.items(1)[:3]
    session = bookcase.session(NEAR_LIMIT, 1, take=books)
    assert bookcase.loans(session) == books
    (alarm,) = [e for e in bookcase.events("alarm") if e["alarm"] == "over_limit"]
    assert alarm["borrowed"] == 3 and alarm["may_borrow"] == 1


def test_reader_silent_mid_scan_then_back(tmp_path):
    case = Bookcase(tmp_path, books_per_door=30, air_ms=10).start()
    try:
        book = case.items(1)[0]
        rounds_before = {d["door"]: d["rounds"] for d in case.sim.status()["doors"]}[1]
        case.choose(1)
        case.sim.scan(ADULT)
        wait_for(lambda: case.seen_open(1), 10, "door 1 to open")
        case.sim.take(1, book)
        case.sim.close(1)
        wait_for(lambda: {d["door"]: d["rounds"] for d in case.sim.status()["doors"]}[1] > rounds_before, 10,
                 "the first inventory round")
        case.sim.silence("rfid")
        wait_for(lambda: any(e["alarm"] == "hardware_fault" for e in case.events("alarm")), 30, "hardware_fault")
        assert case.loans() == [] and len(case.view.open_sessions()) == 1
        assert 1 in case.app.snapshot.doors_out_of_service
        case.sim.heal("rfid")
        wait_for(lambda: case.settled_sessions(), 30, "the session to settle after the reader came back")
        assert case.loans() == [book]
        wait_for(lambda: 1 in case.app.snapshot.doors_in_service, 10, "door 1 back in service")
    finally:
        case.stop()
