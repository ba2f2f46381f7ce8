"""Issue 3 in the core: e-cards, offline rules, overdue patrons, staff restock, returns without a card,
and the alarms and degraded service, against a real SQLite ledger."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timezone

import pytest

from kiosk.core import ecard
from kiosk.core import events as ev
from kiosk.core import flow as fl
from kiosk.core.policy import MESSAGES, patron_key
from kiosk.core.staff import hash_pin
from tests.core.test_flow import ADULT, SECRET, Harness

KEY = "ecard-key-for-tests-0123"
NOW = int(datetime(2026, 11, 25, 10, 0, tzinfo=timezone.utc).timestamp())
STAFF_CARD, PIN = "04A1B2C3D4E5F6", "2468"
OVERDUE = "3101120000091"


@pytest.fixture
def h(tmp_path):
    harness = Harness(tmp_path / "k.sqlite3", ecard_key=KEY, pin_tries=3, restock_summary_s=30)
    harness.stock(1, ["U1", "U2", "U3"])
    harness.stock(2, ["U4"])
    harness.store.set_staff(patron_key(SECRET, STAFF_CARD), hash_pin(PIN), "restocker")
    harness.store.upsert_patrons([{"patron_key": patron_key(SECRET, OVERDUE), "patron_class": "adult",
                                   "status": "overdue"}])
    yield harness
    harness.store.close()


def refusals(h):
    return [e["reason"] for e in h.store.outbox() if e["type"] == "refusal"]


def alarms(h):
    return [e["alarm"] for e in h.store.outbox() if e["type"] == "alarm"]


def finish(h, unlock, present, door=1):
    h.send(ev.UnlockResult(door, unlock.session_id))
    h.send(ev.DoorSensed(door, True, False))
    (scan,) = h.send(ev.DoorSensed(door, False, True))
    h.scan_result(scan, present)


# --- e-cards ------------------------------------------------------------------------------------

def test_an_ecard_code_opens_a_door_for_its_patron(h):
    h.start()
    h.send(ev.DoorChosen(1))
    (unlock,) = h.send(ev.CardPresented(ecard.issue(KEY, patron_key(SECRET, ADULT), NOW - 5)))
    finish(h, unlock, {"U2", "U3"})
    (loan,) = h.store.loans()
    assert loan["patron_key"] == patron_key(SECRET, ADULT) and loan["item_id"] == "MH1"


def test_a_replayed_ecard_code_is_refused(h):
    h.start()
    token = ecard.issue(KEY, patron_key(SECRET, ADULT), NOW - 5)
    h.send(ev.CardPresented(token))
    assert h.flow.state == fl.CHOOSING
    h.send(ev.Cancel())
    h.send(ev.CardPresented(token))
    assert (h.flow.state, h.flow.reason) == (fl.REFUSED, ecard.USED)
    assert refusals(h) == [ecard.USED]


@pytest.mark.parametrize("make, reason", [
    (lambda: ecard.issue(KEY, patron_key(SECRET, ADULT), NOW - 61), ecard.EXPIRED),
    (lambda: ecard.issue("someone-elses-key-000", patron_key(SECRET, ADULT), NOW), ecard.FORGED),
    (lambda: "CB1THISISNOTACODE", ecard.MALFORMED),
])
def test_bad_ecard_codes_are_refused_with_their_reason(h, make, reason):
    h.start()
    assert h.send(ev.CardPresented(make())) == []
    assert (h.flow.state, h.flow.reason) == (fl.REFUSED, reason)
    assert h.store.open_sessions() == []


def test_ecards_are_refused_where_no_key_is_configured(tmp_path):
    h = Harness(tmp_path / "k.sqlite3")
    h.start()
    h.send(ev.CardPresented(ecard.issue(KEY, patron_key(SECRET, ADULT), NOW)))
    assert h.flow.reason == "ecard_unsupported"
    h.store.close()


# --- patrons: overdue and offline ---------------------------------------------------------------

def test_an_overdue_patron_may_open_a_door_to_return_but_not_borrow(h):
    h.start()
    h.send(ev.CardPresented(OVERDUE))
    snap = h.flow.snapshot()
    assert (snap.state, snap.reason, snap.may_borrow) == (fl.CHOOSING, "overdue", 0)


def test_offline_an_unknown_card_is_refused_with_the_offline_reason(h):
    h.start()
    h.send(ev.SyncState(False))
    h.send(ev.CardPresented("3109999999999"))
    assert (h.flow.state, h.flow.reason) == (fl.REFUSED, "offline_unknown")
    assert h.flow.snapshot().offline


def test_offline_loans_are_capped_until_the_next_sync(h):
    h.flow.policy.offline_extra_loans = 2
    h.start()
    h.send(ev.SyncState(False))
    h.send(ev.DoorChosen(1))
    (unlock,) = h.send(ev.CardPresented(ADULT))
    assert h.flow.snapshot().may_borrow == 2 and h.flow.reason == "offline_cap"
    finish(h, unlock, {"U3"})                      # took two books offline
    assert [loan["offline"] for loan in h.store.loans()] == [1, 1]
    h.send(ev.Cancel())
    h.send(ev.CardPresented(ADULT))
    assert (h.flow.reason, h.flow.snapshot().may_borrow) == ("offline_at_cap", 0)
    h.send(ev.Cancel())
    # The library confirms the patron's status again: the cap starts over, the loans still count.
    h.store.upsert_patrons([{"patron_key": patron_key(SECRET, ADULT), "patron_class": "adult", "status": "active"}])
    h.send(ev.CardPresented(ADULT))
    assert h.flow.snapshot().may_borrow == 2
    h.send(ev.Cancel())
    h.send(ev.SyncState(True, "2026-11-25T10:00:00+00:00"))
    h.send(ev.CardPresented(ADULT))
    assert (h.flow.reason, h.flow.snapshot().may_borrow) == ("welcome", 13)


# --- staff --------------------------------------------------------------------------------------

def test_staff_restock_opens_every_door_and_records_restock_not_loans(h):
    h.start()
    h.send(ev.CardPresented(STAFF_CARD, source="pcsc"))
    assert h.flow.state == fl.STAFF_PIN
    unlocks = h.send(ev.CardPresented(PIN))          # the PIN on the scanner line
    assert sorted(u.door for u in unlocks) == [1, 2] and h.flow.state == fl.RESTOCK
    for u in unlocks:
        h.send(ev.UnlockResult(u.door, u.session_id))
        h.send(ev.DoorSensed(u.door, True, False))
    assert h.flow.snapshot().staff.doors_open == (1, 2)
    (scan1,) = h.send(ev.DoorSensed(1, False, True))
    h.scan_result(scan1, {"U1", "U2", "U3", "U7"}, tags={"U7": ev.TagInfo("MH7", 1)})   # one book in
    (scan2,) = h.send(ev.DoorSensed(2, False, True))
    h.scan_result(scan2, set())                                                        # one book out
    restock = [(e["door"], e["change"], e["item"]) for e in h.store.outbox() if e["type"] == "restock"]
    assert restock == [(1, "added", "MH7"), (2, "removed", "MH4")]
    assert h.store.loans() == [] and h.store.returns() == [] and h.store.missing() == []
    assert {r["uid"] for r in h.store.holdings(1)} == {"U1", "U2", "U3", "U7"}
    snap = h.flow.snapshot()
    assert snap.state == fl.RESTOCK and snap.staff.summary == ((1, 1, 0), (2, 0, 1))
    h.tick(31)
    assert h.flow.state == fl.IDLE


def test_a_restock_count_clears_resolved_uncertain_flags(h):
    h.store.db.execute("UPDATE holdings SET status = 'uncertain', origin = 'present' WHERE uid IN ('U2', 'U3')")
    h.start()
    h.send(ev.CardPresented(STAFF_CARD))
    unlocks = h.send(ev.PinEntered(PIN))
    for u in unlocks:
        h.send(ev.UnlockResult(u.door, u.session_id))
        h.send(ev.DoorSensed(u.door, True, False))
    (scan,) = h.send(ev.DoorSensed(1, False, True))
    h.scan_result(scan, {"U1", "U2"})                # U2 confirmed present, U3 confirmed gone
    assert {(r["uid"], r["status"]) for r in h.store.holdings(1)} == {("U1", "present"), ("U2", "present")}
    assert h.store.missing() == []
    assert [e["item"] for e in h.store.outbox() if e["type"] == "restock"] == ["MH3"]


def test_wrong_pins_lock_the_staff_card_and_raise_an_alarm(h):
    h.start()
    h.send(ev.CardPresented(STAFF_CARD))
    h.send(ev.PinEntered("0000"))
    assert (h.flow.state, h.flow.reason, h.flow.snapshot().staff.pin_error) == (fl.STAFF_PIN, "staff_pin_wrong", True)
    h.send(ev.PinEntered("1111"))
    assert h.send(ev.PinEntered("2222")) == []
    assert (h.flow.state, h.flow.reason) == (fl.REFUSED, "staff_locked")
    assert "staff_pin_failed" in alarms(h)
    h.tick(10)
    h.send(ev.CardPresented(STAFF_CARD))
    assert h.flow.reason == "staff_locked"             # the right PIN would not help now
    h.tick(fl.STAFF_LOCKOUT_S)
    h.send(ev.CardPresented(STAFF_CARD))
    assert h.flow.state == fl.STAFF_PIN


def test_the_pin_times_out(h):
    h.start()
    h.send(ev.CardPresented(STAFF_CARD))
    h.tick(31)
    assert h.flow.state == fl.IDLE
    assert h.send(ev.PinEntered(PIN)) == []


# --- returns without a card ---------------------------------------------------------------------

def test_a_return_without_a_card(h):
    h.start()
    h.send(ev.ReturnStart())
    assert (h.flow.state, h.flow.reason) == (fl.CHOOSING, "return_only")
    (unlock,) = h.send(ev.DoorChosen(2))
    h.send(ev.UnlockResult(2, unlock.session_id))
    h.send(ev.DoorSensed(2, True, False))
    (scan,) = h.send(ev.DoorSensed(2, False, True))
    h.scan_result(scan, {"U4", "U9"}, tags={"U9": ev.TagInfo("MH9", 1)})
    assert [r["uid"] for r in h.store.returns()] == ["U9"]
    assert h.store.loans() == []


def test_a_book_taken_during_a_return_without_a_card_is_missing_not_a_loan(h):
    h.start()
    h.send(ev.ReturnStart())
    (unlock,) = h.send(ev.DoorChosen(1))
    finish(h, unlock, {"U1"})
    assert h.store.loans() == []
    assert sorted(m["uid"] for m in h.store.missing()) == ["U2", "U3"]
    assert "taken_without_card" in alarms(h)


# --- alarms and degraded service ----------------------------------------------------------------

def test_disk_low_alarm_is_raised_once_and_cleared(h):
    h.start()
    h.send(ev.DiskSpace(50, True))
    h.send(ev.DiskSpace(40, True))
    h.send(ev.DiskSpace(500, False))
    assert [(e["type"], e["alarm"]) for e in h.store.outbox() if e.get("alarm") == "disk_low"] == [
        ("alarm", "disk_low"), ("alarm_cleared", "disk_low")]


def test_a_full_disk_keeps_the_session_open_and_records_it_once_later(h, monkeypatch):
    h.start()
    scan = h.borrow_session(1)
    real_settle = h.store.settle

    def disk_full(settlement):      # the ledger's edge: SQLite's own words for a full disk
        raise sqlite3.OperationalError("database or disk is full")
    monkeypatch.setattr(h.store, "settle", disk_full)
    h.scan_result(scan, {"U3"})
    assert len(h.store.open_sessions()) == 1 and h.store.loans() == []
    assert h.flow.snapshot().receipt.pending
    assert h.tick(5) == []                                            # not before the retry interval
    monkeypatch.setattr(h.store, "settle", real_settle)               # space again
    (again,) = h.tick(6)
    h.scan_result(again, {"U3"})
    assert sorted(loan["item_id"] for loan in h.store.loans()) == ["MH1", "MH2"]
    assert h.store.open_sessions() == []


def test_a_lock_board_dying_mid_session_leaves_the_other_doors_serving(h):
    h.start()
    h.send(ev.DoorChosen(1))
    (unlock,) = h.send(ev.CardPresented(ADULT))
    h.send(ev.UnlockResult(1, unlock.session_id))
    h.send(ev.DoorSensed(1, True, False))
    h.send(ev.DeviceLink("lockboard", False, "board 0 does not answer", (1,)))
    snap = h.flow.snapshot()
    assert snap.doors_out_of_service == (1,) and snap.doors_in_service == (2,) and not snap.out_of_service
    assert "hardware_fault" in alarms(h)
    assert (h.flow.state, h.flow.snapshot().receipt.pending) == (fl.RECEIPT, True)
    # Another patron borrows from door 2 meanwhile.
    scan2 = h.borrow_session(2)
    h.scan_result(scan2, set())
    assert [loan["item_id"] for loan in h.store.loans()] == ["MH4"]
    # The board comes back and reports door 1 shut: the first session is counted and settled.
    h.send(ev.DeviceLink("lockboard", True, "board 0 answers again", (1,)))
    (scan1,) = h.send(ev.DoorSensed(1, False, True))
    h.scan_result(scan1, {"U1"})
    assert sorted(loan["item_id"] for loan in h.store.loans()) == ["MH2", "MH3", "MH4"]


def test_out_of_service_only_when_no_door_works(h):
    h.start()
    h.send(ev.DeviceLink("lockboard", False, "board 0 does not answer", (1,)))
    assert "out_of_service" not in alarms(h)
    h.send(ev.DeviceLink("rfid", False, "reader bus silent", (1, 2)))
    assert h.flow.snapshot().out_of_service and "out_of_service" in alarms(h)
    h.send(ev.CardPresented(ADULT))
    assert (h.flow.state, h.flow.reason) == (fl.REFUSED, "no_door")


# --- every refusal, and the words the patron reads ----------------------------------------------

def _patron(h, card, status):
    h.store.upsert_patrons([{"patron_key": patron_key(SECRET, card), "patron_class": "adult", "status": status}])
    return ev.CardPresented(card)


def _full_disk(*_args, **_kwargs):
    raise sqlite3.OperationalError("database or disk is full")      # SQLite's own words, at the ledger's edge


def _door_failed(h):
    h.send(ev.DoorChosen(1))
    (unlock,) = h.send(ev.CardPresented(ADULT))
    return ev.UnlockResult(1, unlock.session_id, "lock board: no answer from board 0")


def _out_of_order(h, monkeypatch):
    h.send(ev.CardPresented(ADULT))
    monkeypatch.setattr(h.store, "open_session", _full_disk)
    return ev.DoorChosen(1)


def _no_door(h):
    h.send(ev.DeviceLink("lockboard", False, "board 0 does not answer", (1, 2)))
    return ev.CardPresented(ADULT)


def _offline_unknown(h):
    h.send(ev.SyncState(False))
    return ev.CardPresented("3109999999999")


def _ecard_used(h):
    token = ecard.issue(KEY, patron_key(SECRET, ADULT), NOW - 5)
    h.send(ev.CardPresented(token))
    h.send(ev.Cancel())
    return ev.CardPresented(token)


def _ecard_unsupported(h):
    h.flow.ecard_key = None
    return ev.CardPresented(ecard.issue(KEY, patron_key(SECRET, ADULT), NOW))


def _staff_pin_wrong(h):
    h.send(ev.CardPresented(STAFF_CARD))
    return ev.PinEntered("0000")


def _staff_locked(h):
    h.send(ev.CardPresented(STAFF_CARD))
    h.send(ev.PinEntered("0000"))
    h.send(ev.PinEntered("1111"))
    return ev.PinEntered("2222")


# reason -> (what leads to it, the state the patron sees it in)
REFUSALS = {
    "unknown_card": (lambda h, mp: ev.CardPresented("3109999999999"), fl.REFUSED),
    "blocked": (lambda h, mp: _patron(h, "3101120000075", "blocked"), fl.REFUSED),
    "expired": (lambda h, mp: _patron(h, "3101120000083", "expired"), fl.REFUSED),
    "lost": (lambda h, mp: _patron(h, "3101120000109", "lost"), fl.REFUSED),
    "bad_scan": (lambda h, mp: ev.BadScan("line too long"), fl.REFUSED),
    "no_door": (lambda h, mp: _no_door(h), fl.REFUSED),
    "offline_unknown": (lambda h, mp: _offline_unknown(h), fl.REFUSED),
    "ecard_malformed": (lambda h, mp: ev.CardPresented("CB1THISISNOTACODE"), fl.REFUSED),
    "ecard_forged": (lambda h, mp: ev.CardPresented(ecard.issue("forger-key-00000", patron_key(SECRET, ADULT), NOW)),
                     fl.REFUSED),
    "ecard_expired": (lambda h, mp: ev.CardPresented(ecard.issue(KEY, patron_key(SECRET, ADULT), NOW - 60)),
                      fl.REFUSED),
    "ecard_used": (lambda h, mp: _ecard_used(h), fl.REFUSED),
    "ecard_unsupported": (lambda h, mp: _ecard_unsupported(h), fl.REFUSED),
    "out_of_order": (lambda h, mp: _out_of_order(h, mp), fl.REFUSED),
    "door_failed": (lambda h, mp: _door_failed(h), fl.CHOOSING),
    "staff_pin_wrong": (lambda h, mp: _staff_pin_wrong(h), fl.STAFF_PIN),
    "staff_locked": (lambda h, mp: _staff_locked(h), fl.REFUSED),
}
# Reasons that let the patron go on (a door opens), with a word about what they may do.
NOT_REFUSALS = {"welcome", "at_limit", "overdue", "offline_cap", "offline_at_cap", "return_only", "pending"}


def test_every_message_is_either_a_refusal_tested_here_or_a_go_ahead():
    assert set(MESSAGES) == set(REFUSALS) | NOT_REFUSALS


@pytest.mark.parametrize("reason", sorted(REFUSALS))
def test_every_refusal_shows_its_reason_opens_nothing_and_says_what_to_do(h, monkeypatch, reason):
    lead_to, state = REFUSALS[reason]
    h.start()
    event = lead_to(h, monkeypatch)
    effects = h.send(event)
    assert [e for e in effects if isinstance(e, ev.Unlock)] == []
    snap = h.flow.snapshot()
    assert (snap.state, snap.reason) == (state, reason)
    if reason != "door_failed":          # (a failed unlock keeps its session open until the reader checks the door)
        assert [s for s in h.store.open_sessions() if s.kind == fl.PATRON] == []
    zh, en = MESSAGES[reason]
    assert "请" in zh and "Please" in en                       # what to do next, in both languages


def test_a_session_that_cannot_be_recorded_for_a_door_chosen_before_the_card_is_out_of_order(h, monkeypatch):
    h.start()
    monkeypatch.setattr(h.store, "open_session", _full_disk)
    h.send(ev.DoorChosen(1))
    assert h.send(ev.CardPresented(ADULT)) == []
    assert (h.flow.state, h.flow.reason) == (fl.REFUSED, "out_of_order")


def test_a_full_disk_still_tells_the_patron_the_bookcase_is_out_of_order(h, monkeypatch):
    h.start()
    h.send(ev.CardPresented(ADULT))
    monkeypatch.setattr(h.store, "open_session", _full_disk)
    monkeypatch.setattr(h.store, "record_events", _full_disk)
    assert h.send(ev.DoorChosen(1)) == []
    assert (h.flow.state, h.flow.reason) == (fl.REFUSED, "out_of_order")
