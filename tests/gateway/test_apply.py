"""Applying events to the ILS, against the in-memory fake at the SIP2 edge and a real SQLite journal."""

from __future__ import annotations

import time
from datetime import datetime

import pytest

from gateway.apply import Applier
from gateway.config import IlsConfig, OrderConfig
from gateway.ils import IlsHealth
from tests.gateway.fakes import FakeIls, FakePool
from tests.gateway.support import Bookcase, add_patrons, key, record, sqlite_journal

ADULT, ADULT2, BLOCKED = "3101120000018", "3101120000026", "3101120000075"
ILS = IlsConfig(host="ils", port=6001, user="u", password="p", location="MH-BOOKCASES", backoff_min_s=0.01,
                backoff_max_s=0.05)


@pytest.fixture
def world(tmp_path):
    journal = sqlite_journal(tmp_path)
    add_patrons(journal, [ADULT, ADULT2, BLOCKED])
    ils = FakeIls(items={f"MH2020000{n}": None for n in range(1, 10)}, blocked={BLOCKED})
    touched: list[set] = []
    applier = Applier(journal, "gw", OrderConfig(hold_s=0.5, lease_s=30), ILS, IlsHealth(), touched.append)
    yield journal, ils, applier, touched
    journal.close()


def drain(applier, ils, until: float = 5.0) -> None:
    """Apply until nothing is left (waiting out holds)."""
    pool = FakePool(ils)
    deadline = time.monotonic() + until
    while time.monotonic() < deadline:
        if not applier.work_once(pool, "gw#t/0"):
            if applier.journal.backlog()["depth"] == 0:
                return
            time.sleep(0.02)
    raise AssertionError(f"not drained: {applier.journal.backlog()}")


def test_loan_at_a_and_return_at_b_reach_the_ils_once_each_with_the_ils_due_date(world):
    journal, ils, applier, touched = world
    a, b = Bookcase("MH-A"), Bookcase("MH-B")
    loan, ret = a.loan("MH20200001", ADULT), b.ret("MH20200001", minutes=60)
    record(journal, loan, ret)
    drain(applier, ils)
    assert [(c, i, p) for c, i, p, _ in ils.applied] == [("checkout", "MH20200001", ADULT),
                                                          ("checkin", "MH20200001", None)]
    assert ils.applied[1][3] == datetime.fromisoformat(ret["ts"])             # the return's own time
    row = journal.event(loan["id"])
    assert row["state"] == "applied" and row["due"] == "2026-12-29"
    assert journal.event(ret["id"])["state"] == "applied"
    assert ("item_information", "MH20200001") not in ils.requests   # the journal knew the loan
    assert {key(ADULT)} in touched


def test_answer_lost_after_the_ils_applied_the_checkout_is_not_applied_twice(world):
    journal, ils, applier, _ = world
    loan = Bookcase("MH-A").loan("MH20200002", ADULT)
    record(journal, loan)
    ils.lose_next = 1
    drain(applier, ils)
    assert [c for c, *_ in ils.applied] == ["checkout"]
    assert ils.requests == [("checkout", "MH20200002"), ("item_information", "MH20200002")]
    row = journal.event(loan["id"])
    assert row["state"] == "applied" and row["attempts"] == 2 and "already" in row["note"]
    assert [s["ok"] for s in journal.sip_log(loan["id"])] == [None, 1]


def test_the_return_arriving_before_the_loan_waits_for_it_and_both_apply_in_order(world):
    journal, ils, applier, _ = world
    a, b = Bookcase("MH-A"), Bookcase("MH-B")
    loan, ret = a.loan("MH20200003", ADULT), b.ret("MH20200003", minutes=30)
    record(journal, ret)
    pool = FakePool(ils)
    assert applier.work_once(pool, "gw#t/0")          # looks, then holds it: not on loan at the ILS
    assert journal.event(ret["id"])["state"] == "held" and ils.applied == []
    record(journal, loan)                             # A comes back online
    drain(applier, ils)
    assert [c for c, *_ in ils.applied] == ["checkout", "checkin"]
    assert journal.event(ret["id"])["state"] == "applied"


def test_a_return_whose_loan_never_comes_is_checked_in_after_the_hold_as_informational(world):
    journal, ils, applier, _ = world
    ret = Bookcase("MH-B").ret("MH20200004")
    record(journal, ret)
    drain(applier, ils)
    row = journal.event(ret["id"])
    assert row["state"] == "informational" and "not on loan" in row["reason"]
    assert ("checkin", "MH20200004") in ils.requests


def test_a_late_loan_after_its_return_was_applied_is_lent_and_returned_again(world):
    journal, ils, applier, _ = world
    a, b = Bookcase("MH-A"), Bookcase("MH-B")
    loan, ret = a.loan("MH20200005", ADULT), b.ret("MH20200005", minutes=30)
    record(journal, ret)
    drain(applier, ils)                                # the hold ended: informational
    record(journal, loan)
    drain(applier, ils)
    assert [c for c, *_ in ils.applied] == ["checkout", "checkin"]
    assert ils.items["MH20200005"] is None
    assert "late loan" in journal.event(loan["id"])["note"]


def _late_loan(journal, ils, applier) -> tuple[dict, dict]:
    """A's loan, journaled after B's return of the book was applied (informational: not on loan)."""
    a, b = Bookcase("MH-A"), Bookcase("MH-B")
    loan, ret = a.loan("MH20200005", ADULT), b.ret("MH20200005", minutes=30)
    record(journal, ret)
    drain(applier, ils)
    record(journal, loan)
    return loan, ret


def test_a_late_loan_whose_checkout_was_lost_on_the_way_is_lent_on_the_next_attempt(world):
    """The return was applied first (informational); the late loan's checkout never reaches the ILS (the line
    drops). Asked again, the ILS has the item checked in, as it would if the loan had been lent and returned: the
    journal's log of the first attempt says no checkout was answered, so it is lent and returned now."""
    journal, ils, applier, _ = world
    loan, ret = _late_loan(journal, ils, applier)
    ils.drop_next = 1
    drain(applier, ils)
    assert [(k, p) for k, _, p, _ in ils.applied] == [("checkout", ADULT), ("checkin", None)]
    assert ils.applied[1][3] == datetime.fromisoformat(ret["ts"])
    assert [(c["command"], c["ok"]) for c in journal.sip_log(loan["id"])][:2] == [("checkout", None),
                                                                                 ("item_information", 1)]
    assert journal.event(loan["id"])["review"] is None


def test_a_late_loan_whose_gateway_died_sending_it_goes_to_staff_when_the_ils_has_the_item_in(world):
    """Nothing in the log says what the dead gateway sent: lent and returned, or nothing. The ILS has the item
    checked in either way, so the gateway sends nothing more and asks staff to look at the patron's history."""
    journal, ils, applier, _ = world
    loan, ret = _late_loan(journal, ils, applier)
    dead = journal.claim("gw#dead/0", lease_s=0.01)             # claimed, then the gateway died
    assert dead.id == loan["id"]
    time.sleep(0.05)
    drain(applier, ils)
    assert ils.applied == []
    row = journal.event(loan["id"])
    assert (row["state"], row["review"]) == ("applied", "open") and "not known" in row["note"]
    assert [h["action"] for h in journal.review_list()[0]["history"]] == ["flagged"]


def test_a_late_return_whose_loan_the_ils_ended_later_is_flagged_for_staff_with_both_times(world):
    """B was offline: its patron's return reaches the gateway after C lent the book again (C's loan checked the
    book in at its own time). The ILS has the first patron's return a day late, and SIP2 cannot move it back:
    the late return changes nothing at the ILS, and goes to the review queue saying when it really happened."""
    journal, ils, applier, _ = world
    a, b, c = Bookcase("MH-A"), Bookcase("MH-B"), Bookcase("MH-C")
    loan = a.loan("MH20200009", ADULT)
    b.clock[0] = a.now
    ret = b.ret("MH20200009", minutes=60)
    c.clock[0] = b.now
    again = c.loan("MH20200009", ADULT2, minutes=24 * 60)
    record(journal, loan, again)
    drain(applier, ils)
    record(journal, ret)
    drain(applier, ils)
    assert [(k, p) for k, _, p, _ in ils.applied] == [("checkout", ADULT), ("checkin", None), ("checkout", ADULT2)]
    assert ils.applied[1][3] == datetime.fromisoformat(again["ts"])          # the ILS's return date: a day late
    row = journal.event(ret["id"])
    assert (row["state"], row["reason"], row["review"]) == ("informational", "superseded", "open")
    [queued] = journal.review_list()
    assert queued["id"] == ret["id"] and ret["ts"] in queued["note"] and again["ts"] in queued["note"]
    assert [h["action"] for h in queued["history"]] == ["flagged"]
    journal.review_resolve(ret["id"], "staff", "no fine charged")
    assert journal.review_list() == []


def test_item_on_loan_to_another_patron_is_checked_in_at_the_loan_time_then_lent(world):
    journal, ils, applier, touched = world
    ils.items["MH20200006"] = ADULT2                  # lent at the desk, returned to a bookcase shelf unseen
    loan = Bookcase("MH-A").loan("MH20200006", ADULT)
    record(journal, loan)
    drain(applier, ils)
    assert [(c, p) for c, _, p, _ in ils.applied] == [("checkin", None), ("checkout", ADULT)]
    assert ils.applied[0][3] == datetime.fromisoformat(loan["ts"])
    assert journal.event(loan["id"])["state"] == "applied"
    assert any(key(ADULT2) in t for t in touched)


def test_a_blocked_patron_s_loan_is_recorded_with_no_block(world):
    journal, ils, applier, _ = world
    loan = Bookcase("MH-A").loan("MH20200007", BLOCKED)
    record(journal, loan)
    drain(applier, ils)
    assert ils.items["MH20200007"] == BLOCKED
    assert journal.event(loan["id"])["state"] == "applied"


def test_a_refusal_goes_to_the_review_queue_with_the_ils_screen_message(world):
    journal, ils, applier, _ = world
    ils.refuse.add("MH20200008")
    loan = Bookcase("MH-A").loan("MH20200008", ADULT)
    record(journal, loan)
    drain(applier, ils)
    [item] = journal.review_list()
    assert item["id"] == loan["id"] and item["screen_message"] == "Item cannot be checked out"
    ils.refuse.clear()
    journal.review_retry(loan["id"], "staff", "fixed")
    drain(applier, ils)
    assert journal.event(loan["id"])["state"] == "applied" and journal.review_list() == []


def test_an_unknown_patron_key_is_rejected_for_review(world):
    journal, ils, applier, _ = world
    loan = Bookcase("MH-A").loan("MH20200009", "3109999999999")
    record(journal, loan)
    drain(applier, ils)
    row = journal.event(loan["id"])
    assert row["state"] == "rejected" and "patron map" in row["reason"] and ils.requests == []


def test_ils_down_keeps_everything_and_drains_in_order_when_it_returns(world):
    journal, ils, applier, _ = world
    a = Bookcase("MH-A")
    events = []
    for n in range(1, 6):
        events += [a.loan(f"MH2020000{n}", ADULT), a.ret(f"MH2020000{n}")]
    record(journal, *events)
    ils.down = True
    assert not applier.work_once(FakePool(ils), "gw#t/0")
    assert applier.health.up is False and journal.backlog()["depth"] == 10
    ils.down = False
    drain(applier, ils)
    assert [(c, i) for c, i, _, _ in ils.applied] == [(c, f"MH2020000{n}") for n in range(1, 6)
                                                      for c in ("checkout", "checkin")]
    assert applier.health.up is True
