"""The simulated ILS's library: seeding, due dates, return dates, blocks, limits, holds, refusals, transactions."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from kiosk.demodata import demo_books, demo_patrons
from simulators.ils.library import Library
from simulators.ils.server import patron_flags

NOW = datetime(2026, 12, 1, 10, 30).astimezone()
ADULT, CHILD, BLOCKED, EXPIRED, LOST, OVERDUE = ("3101120000018", "3101120000059", "3101120000075",
                                                  "3101120000083", "3101120000109", "3101120000091")
NEAR_LIMIT = "3101120000034"          # 14 loans elsewhere, limit 15


@pytest.fixture
def lib() -> Library:
    return Library.demo(items=400, clock=lambda: NOW)


def test_seeded_from_the_demo_data(lib):
    assert set(lib.patrons) == {p.card_number for p in demo_patrons()}
    assert lib.patrons[NEAR_LIMIT].loans_elsewhere == 14 and lib.patrons[CHILD].patron_class == "child"
    for book in demo_books([1], per_door=400):
        assert lib.items[book.item_id].title == book.title
    assert lib.items["MH20190001"].title == "红楼梦" and lib.items["MH20190001"].home == "MH-CENTRAL"
    full = Library.demo()
    assert "MH20209999" in full.items and full.items["MH20200601"].title == demo_books([1], per_door=601)[-1].title


def test_the_loan_date_is_now_and_the_ils_sets_the_due_date_by_class(lib):
    offline = NOW - timedelta(days=5)
    lib.loan_days["child"] = 21
    adult = lib.checkout(ADULT, "MH20200001", no_block=True, date=offline)
    child = lib.checkout(CHILD, "MH20200002", no_block=True, date=offline)
    assert adult.ok and adult.item.due == datetime(2026, 12, 31, 23, 59, 59).astimezone()
    assert child.item.due == datetime(2026, 12, 22, 23, 59, 59).astimezone()
    t = lib.applied[0]
    assert (t.at, t.date, t.due, t.no_block) == (NOW, offline, adult.item.due, True)


def test_checkin_honours_the_return_date(lib):
    lib.checkout(ADULT, "MH20200001", no_block=False, date=None)
    returned = NOW - timedelta(days=2)
    out = lib.checkin("MH20200001", return_date=returned, no_block=True, location="MH-BOOKCASES")
    assert out.ok and out.borrower == ADULT and out.alert_type is None
    assert lib.applied[-1].kind == "checkin" and lib.applied[-1].date == returned
    assert lib.items["MH20200001"].borrower is None
    again = lib.checkin("MH20200001", return_date=None, no_block=True)
    assert not again.ok and again.message == "Item not checked out" and len(lib.applied) == 2


@pytest.mark.parametrize("patron,why", [(BLOCKED, "blocked"), (EXPIRED, "expired"), (LOST, "lost"),
                                        (OVERDUE, "overdue")])
def test_patrons_not_allowed_are_refused_unless_no_block(lib, patron, why):
    refused = lib.checkout(patron, "MH20200001", no_block=False, date=None)
    assert not refused.ok and why in refused.message.lower() and lib.applied == []
    lent = lib.checkout(patron, "MH20200001", no_block=True, date=None)
    assert lent.ok and lib.applied[-1].overridden and why in lib.applied[-1].overridden[0].lower()


def test_the_loan_limit_counts_loans_elsewhere(lib):
    assert lib.checkout(NEAR_LIMIT, "MH20200001", no_block=False, date=None).ok
    over = lib.checkout(NEAR_LIMIT, "MH20200002", no_block=False, date=None)
    assert not over.ok and "loan limit (15)" in over.message
    assert lib.checkout(NEAR_LIMIT, "MH20200002", no_block=True, date=None).ok


def test_on_loan_to_another_is_refused_even_with_no_block(lib):
    assert lib.checkout(ADULT, "MH20200001", no_block=True, date=None).ok
    other = lib.checkout(CHILD, "MH20200001", no_block=True, date=None)
    assert not other.ok and other.message == "Item checked out to another patron"
    same = lib.checkout(ADULT, "MH20200001", no_block=True, date=None)
    assert not same.ok and "already" in same.message and len(lib.applied) == 1


def test_holds(lib):
    lib.hold(CHILD, "MH20200001")
    refused = lib.checkout(ADULT, "MH20200001", no_block=False, date=None)
    assert not refused.ok and "hold for another patron" in refused.message
    assert lib.checkout(ADULT, "MH20200001", no_block=True, date=None).ok
    back = lib.checkin("MH20200001", return_date=None, no_block=True, location="MH-BOOKCASES")
    assert back.ok and back.alert_type == "01" and "hold shelf" in back.message
    assert lib.checkout(CHILD, "MH20200001", no_block=False, date=None).ok
    assert lib.items["MH20200001"].hold_for is None
    with pytest.raises(KeyError):
        lib.hold("nobody", "MH20200001")


def test_a_return_elsewhere_raises_a_transfer_alert(lib):
    lib.checkout(ADULT, "MH20190001", no_block=True, date=None)
    back = lib.checkin("MH20190001", return_date=None, no_block=True, location="MH-BOOKCASES")
    assert back.ok and back.alert_type == "04" and "MH-CENTRAL" in back.message


def test_refusals_for_the_next_transactions_and_for_an_item(lib):
    lib.refuse_next, lib.refuse_message = 2, "System maintenance"
    for _ in range(2):
        out = lib.checkout(ADULT, "MH20200001", no_block=True, date=None)
        assert not out.ok and out.message == "System maintenance"
    assert lib.checkout(ADULT, "MH20200001", no_block=True, date=None).ok
    lib.refuse_items.add("MH20200001")
    lib.refuse_message = ""
    for _ in range(3):
        assert "cannot be circulated" in lib.checkin("MH20200001", return_date=None, no_block=True).message
    assert lib.refused == 5 and [t.kind for t in lib.applied] == ["checkout"]


def test_unknown_patrons_and_items(lib):
    assert lib.checkout("nobody", "MH20200001", no_block=True, date=None).message == "Unknown patron"
    assert lib.checkout(ADULT, "NO-ITEM", no_block=True, date=None).message == "Item not in the catalogue"
    assert lib.checkin("NO-ITEM", return_date=None, no_block=True).message == "Item not in the catalogue"


def test_added_patrons_and_items_and_bad_ones(lib):
    lib.add_patron("31011200000999", "child", "active")
    lib.add_item("MH20209001", "東京物語")
    assert lib.checkout("31011200000999", "MH20209001", no_block=False, date=None).ok
    for bad in (lambda: lib.add_patron("a|b"), lambda: lib.add_item("X", "a|b"),
                lambda: lib.add_patron("P", status="gone"), lambda: lib.set_status(ADULT, "gone")):
        with pytest.raises(ValueError):
            bad()


def test_transactions_and_status(lib):
    lib.checkout(ADULT, "MH20200001", no_block=True, date=NOW - timedelta(days=1))
    lib.checkout(CHILD, "MH20200002", no_block=False, date=None, via="desk")
    lib.checkin("MH20200001", return_date=NOW, no_block=True)
    every = lib.transactions()
    assert [(t["n"], t["kind"], t["via"]) for t in every] == [(1, "checkout", "sip2"), (2, "checkout", "desk"),
                                                              (3, "checkin", "sip2")]
    assert lib.transactions(since=2) == every[2:]
    status = lib.status()
    assert status["transactions"] == 3 and [loan["item"] for loan in status["loans"]] == ["MH20200002"]
    child = next(p for p in status["patrons"] if p["id"] == CHILD)
    assert child["loans"] == 1 and child["limit"] == 10


def test_patron_flags():
    lib = Library.demo(items=10)
    p = lib.patrons
    assert patron_flags(p[ADULT], 0, 0) == " " * 14
    assert patron_flags(p[BLOCKED], 0, 0) == "YY Y" + " " * 10
    assert patron_flags(p[LOST], 0, 0) == "YY YY" + " " * 9
    assert patron_flags(p[OVERDUE], 0, 0)[6] == "Y"
    assert patron_flags(p[ADULT], 0, 1)[6] == "Y"                    # an overdue loan
    assert patron_flags(p[NEAR_LIMIT], 1, 0)[5] == "Y"               # 14 elsewhere + 1 = the limit
    assert patron_flags(None, 0, 0) == "YYYY" + " " * 10
