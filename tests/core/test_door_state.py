"""A door is open, closed or unknown (kiosk.core.doors): nothing is counted, timed out or handed to another patron
behind a door whose state the lock board cannot tell, and a restart unlocks again at once a door whose unlock the
board never confirmed. Devices are replaced by the events they post; the ledger is a real SQLite file."""

from __future__ import annotations

import pytest

from kiosk.core import events as ev
from kiosk.core import flow as fl
from kiosk.core.doors import S_UNLOCKED, S_UNLOCKING, resume_plan
from kiosk.core.policy import patron_key
from kiosk.core.records import PATRON, SessionRecord
from kiosk.core.staff import hash_pin
from tests.core.test_flow import ADULT, FULL, SECRET, Harness

STAFF_CARD, PIN = "9900000000001", "2468"
BOARD_DOWN = ev.DeviceLink("lockboard", False, "board 0 does not answer", (1, 2))
BOARD_BACK = ev.DeviceLink("lockboard", True, "board 0 answers again", (1, 2))
LOST_ANSWER = "lock board: no answer from board 0 to unlocking lock 1 after 3 tries"


@pytest.fixture
def h(tmp_path):
    harness = Harness(tmp_path / "k.sqlite3")
    harness.stock(1, ["U1", "U2", "U3"])
    harness.stock(2, ["U4"])
    yield harness
    harness.store.close()


def loans(h):
    return [(r["item_id"], r["patron_key"]) for r in h.store.loans()]


def scans(effects):
    return [e for e in effects if isinstance(e, ev.Scan)]


def _unlock_then_silence(h, *, lost_answer):
    """A patron's door 1 unlocks, then the lock board falls silent before the door is seen open."""
    h.start()
    h.send(ev.DoorChosen(1))
    (unlock,) = h.send(ev.CardPresented(ADULT))
    if lost_answer:
        assert h.send(ev.UnlockResult(1, unlock.session_id, LOST_ANSWER)) == [ev.ReportDoors((1,))]
    else:
        assert h.send(ev.UnlockResult(1, unlock.session_id)) == []
    assert h.send(BOARD_DOWN) == [ev.ReportDoors((1, 2))]
    return unlock


@pytest.mark.parametrize("lost_answer", [False, True], ids=["silent_after_answer", "answer_lost"])
def test_a_door_whose_state_is_lost_after_the_unlock_is_never_counted_blind(h, lost_answer):
    unlock = _unlock_then_silence(h, lost_answer=lost_answer)
    # Unseen, the patron opens the door, takes U1 and closes it. Well past door_open_timeout_s (20 s), nothing
    # is counted: the old flow counted the open compartment here, settled nothing, and charged U1 to the next
    # patron of door 1.
    for _ in range(10):
        assert h.tick(10) == []
    (session,) = h.store.open_sessions()
    assert session.id == unlock.session_id
    snap = h.flow.snapshot()
    assert snap.checking == (1,) and 1 not in snap.doors_in_service
    # Nobody else may use door 1 meanwhile.
    h.send(ev.Cancel())
    h.send(ev.DoorChosen(1))
    assert h.send(ev.CardPresented(FULL)) == []
    h.send(ev.Cancel())
    # The board answers again and reports the door as it is: closed and locked. Now it is counted.
    assert h.send(BOARD_BACK) == [ev.ReportDoors((1, 2))]
    assert h.send(ev.DoorSensed(2, False, True)) == []
    (scan,) = h.send(ev.DoorSensed(1, False, True))
    assert scan.session_id == unlock.session_id
    h.scan_result(scan, {"U2", "U3"})
    assert loans(h) == [("MH1", patron_key(SECRET, ADULT))]
    assert h.flow.snapshot().checking == ()
    # The next patron of the door is charged nothing.
    scan2 = h.borrow_session(1, card=FULL)
    h.scan_result(scan2, {"U2", "U3"})
    assert loans(h) == [("MH1", patron_key(SECRET, ADULT))]


def test_the_screen_says_the_patrons_door_is_being_checked(h):
    h.start()
    h.send(ev.DoorChosen(1))
    (unlock,) = h.send(ev.CardPresented(ADULT))
    h.send(ev.UnlockResult(1, unlock.session_id))
    assert h.flow.snapshot().until is not None              # the door_open countdown runs
    h.send(BOARD_DOWN)
    snap = h.flow.snapshot()
    assert (snap.state, snap.reason, snap.door, snap.checking) == (fl.RECEIPT, "door_checking", 1, (1,))
    assert snap.receipt.pending


def test_a_door_found_open_when_the_board_answers_again_is_counted_when_it_closes(h):
    unlock = _unlock_then_silence(h, lost_answer=False)
    h.tick(30)
    h.send(BOARD_BACK)
    h.send(ev.DoorSensed(2, False, True))
    assert h.send(ev.DoorSensed(1, True, False)) == []          # open: wait for it to close
    assert h.store.open_sessions()[0].state == fl.S_OPEN
    assert h.tick(25) == []
    (scan,) = h.send(ev.DoorSensed(1, False, True))
    assert scan.session_id == unlock.session_id
    h.scan_result(scan, {"U1", "U3"})
    assert loans(h) == [("MH2", patron_key(SECRET, ADULT))]


def test_a_reading_taken_before_the_board_went_down_is_not_believed(h):
    # The poll thread's last reading can reach the core loop after the link-down event: it says nothing of now.
    unlock = _unlock_then_silence(h, lost_answer=False)
    assert h.send(ev.DoorSensed(1, False, True)) == []
    assert h.tick(60) == [] and h.flow.snapshot().checking == (1,)
    h.send(BOARD_BACK)
    (scan,) = h.send(ev.DoorSensed(1, False, True))
    assert scan.session_id == unlock.session_id


def test_an_inventory_that_ends_after_the_door_state_was_lost_is_not_trusted(h):
    h.start()
    scan = h.borrow_session(1)
    h.send(BOARD_DOWN)
    h.scan_result(scan, {"U1", "U2", "U3"})
    assert h.store.open_sessions() != [] and h.store.loans() == []
    h.send(BOARD_BACK)
    (again,) = h.send(ev.DoorSensed(1, False, True))
    h.scan_result(again, {"U2", "U3"})
    assert loans(h) == [("MH1", patron_key(SECRET, ADULT))]


def test_a_count_begun_before_the_door_reopened_is_ignored_even_when_it_ends_during_the_next(h):
    # Door closed -> count A begins; the door opens again, U3 is taken, it closes -> count B begins; A (which
    # still saw U3) ends first. The old flow took A as B's result: U3 was never charged to this patron, and the
    # next patron of the door was charged for it.
    h.start()
    count_a = h.borrow_session(1)                                  # U1..U3 inside, nothing taken yet
    h.send(ev.DoorSensed(1, True, False))
    (count_b,) = h.send(ev.DoorSensed(1, False, True))
    assert count_b.attempt != count_a.attempt
    h.scan_result(count_a, {"U1", "U2", "U3"})
    assert h.store.open_sessions() != []
    h.scan_result(count_b, {"U1", "U2"})
    assert loans(h) == [("MH3", patron_key(SECRET, ADULT))]
    scan2 = h.borrow_session(1, card=FULL)
    h.scan_result(scan2, {"U1", "U2"})
    assert loans(h) == [("MH3", patron_key(SECRET, ADULT))]


def test_a_failure_of_a_count_no_longer_waited_for_is_ignored(h):
    h.start()
    count_a = h.borrow_session(1)
    h.send(ev.DoorSensed(1, True, False))                           # the patron opens the door again
    h.send(ev.ScanFailed(1, count_a.session_id, "RFID reader 1: no answer", count_a.attempt))
    # The patron still stands at the open door: no "recorded later" screen, no reader alarm.
    assert h.flow.state == fl.DOOR_OPEN and 1 not in h.flow.snapshot().doors_out_of_service
    assert not any(e.get("device") == "rfid" for e in h.store.outbox())
    (count_b,) = h.send(ev.DoorSensed(1, False, True))
    h.scan_result(count_b, {"U1"})
    assert sorted(loans(h)) == [("MH2", patron_key(SECRET, ADULT)), ("MH3", patron_key(SECRET, ADULT))]


def test_no_timer_runs_on_a_door_whose_state_is_unknown(h):
    h.start()
    h.send(ev.DoorChosen(1))
    (unlock,) = h.send(ev.CardPresented(ADULT))
    h.send(ev.UnlockResult(1, unlock.session_id))
    h.send(ev.DoorSensed(1, True, False))
    h.send(BOARD_DOWN)
    for _ in range(20):                                            # 200 s: past the prompt and the alarm
        assert h.tick(10) == []
    assert not any(e.get("alarm") == "door_held_open" for e in h.store.outbox())
    h.send(BOARD_BACK)
    assert h.send(ev.DoorSensed(1, True, False)) == []             # still open: now the alarm is due
    h.tick(0.1)
    assert sum(e.get("alarm") == "door_held_open" for e in h.store.outbox()) == 1
    (scan,) = h.send(ev.DoorSensed(1, False, True))
    h.scan_result(scan, {"U3"})
    assert sorted(loans(h)) == [("MH1", patron_key(SECRET, ADULT)), ("MH2", patron_key(SECRET, ADULT))]


def test_unlock_failure_alarms_and_counts_once_the_board_reports_the_door(h):
    h.start()
    h.send(ev.DoorChosen(1))
    (unlock,) = h.send(ev.CardPresented(ADULT))
    # The unlock's answer is lost: the door may have opened. The board is asked to report it again.
    assert h.send(ev.UnlockResult(1, unlock.session_id, LOST_ANSWER)) == [ev.ReportDoors((1,))]
    assert (h.flow.state, h.flow.reason) == (fl.CHOOSING, "door_failed")
    assert h.flow.snapshot().checking == (1,)
    assert any(e.get("alarm") == "hardware_fault" for e in h.store.outbox())
    assert h.tick(60) == [] and 1 not in h.flow.snapshot().doors_in_service
    (scan,) = h.send(ev.DoorSensed(1, False, True))      # the board reports it: closed and locked
    h.scan_result(scan, {"U1", "U2", "U3"})
    assert h.store.loans() == [] and h.store.open_sessions() == []
    assert 1 in h.flow.snapshot().doors_in_service
    assert [(e["type"], e.get("door")) for e in h.store.outbox() if e.get("alarm") == "hardware_fault"] == [
        ("alarm", 1), ("alarm_cleared", 1)]


def test_restock_waits_for_a_door_whose_state_is_unknown(tmp_path):
    h = Harness(tmp_path / "k.sqlite3", restock_summary_s=30)
    try:
        h.stock(1, ["U1", "U2", "U3"])
        h.stock(2, ["U4"])
        h.store.set_staff(patron_key(SECRET, STAFF_CARD), hash_pin(PIN), "restocker")
        h.start()
        h.send(ev.CardPresented(STAFF_CARD))
        unlocks = h.send(ev.PinEntered(PIN))
        assert sorted(u.door for u in unlocks) == [1, 2]
        for u in unlocks:
            h.send(ev.UnlockResult(u.door, u.session_id))
        h.send(ev.DoorSensed(2, True, False))
        h.send(ev.DeviceLink("lockboard", False, "board 0 does not answer", (1,)))
        staff = h.flow.snapshot().staff
        assert (staff.doors_open, staff.checking) == ((2,), (1,))
        (scan2,) = h.send(ev.DoorSensed(2, False, True))
        h.scan_result(scan2, {"U4"})
        assert h.tick(60) == [] and h.flow.state == fl.RESTOCK   # door 1 is not counted blind, nor timed out
        h.send(ev.DeviceLink("lockboard", True, "board 0 answers again", (1,)))
        (scan1,) = h.send(ev.DoorSensed(1, False, True))
        h.scan_result(scan1, {"U1", "U2", "U3", "U9"}, tags={"U9": ev.TagInfo("MH9", 1)})
        assert h.flow.snapshot().staff.summary == ((1, 1, 0), (2, 0, 0))
    finally:
        h.store.close()


def test_staff_may_leave_restock_while_a_silent_board_keeps_a_door_unknown(tmp_path):
    h = Harness(tmp_path / "k.sqlite3", restock_summary_s=30)
    try:
        h.stock(1, ["U1"])
        h.stock(2, ["U4"])
        h.store.set_staff(patron_key(SECRET, STAFF_CARD), hash_pin(PIN), "restocker")
        h.start()
        h.send(ev.CardPresented(STAFF_CARD))
        for u in h.send(ev.PinEntered(PIN)):
            h.send(ev.UnlockResult(u.door, u.session_id))
        h.send(ev.DoorSensed(2, True, False))
        h.send(ev.DeviceLink("lockboard", False, "board 0 does not answer", (1,)))
        h.send(ev.Cancel())
        assert h.flow.state == fl.RESTOCK           # door 2 is open and not counted yet: the screen stays
        (scan2,) = h.send(ev.DoorSensed(2, False, True))
        h.scan_result(scan2, {"U4"})
        h.send(ev.Cancel())
        assert h.flow.state == fl.IDLE              # only the silent door is left: staff may go
        assert h.flow.snapshot().checking == (1,)   # and its count still runs, in the background
        h.send(ev.DeviceLink("lockboard", True, "board 0 answers again", (1,)))
        (scan1,) = h.send(ev.DoorSensed(1, False, True))
        h.scan_result(scan1, {"U1", "U9"}, tags={"U9": ev.TagInfo("MH9", 1)})
        assert h.flow.snapshot().checking == () and h.flow.state == fl.IDLE
        assert [(e["change"], e["item"]) for e in h.store.outbox() if e["type"] == "restock"] == [("added", "MH9")]
    finally:
        h.store.close()


# --- a restart while a door's unlock is unconfirmed --------------------------------------------------------

def test_the_board_confirming_the_unlock_is_recorded(h):
    h.start()
    h.send(ev.DoorChosen(1))
    (unlock,) = h.send(ev.CardPresented(ADULT))
    assert h.store.open_sessions()[0].state == S_UNLOCKING
    h.send(ev.UnlockResult(1, unlock.session_id))
    assert h.store.open_sessions()[0].state == S_UNLOCKED


def test_restart_unlocks_again_at_once_a_session_whose_unlock_was_never_confirmed(h):
    h.start()
    h.send(ev.DoorChosen(1))
    (unlock,) = h.send(ev.CardPresented(ADULT))
    # Killed before the unlock reached the board. A new flow over the same database, a few seconds later.
    h.wall_offset_s = 5
    h.flow = h.make_flow()
    (again,) = h.flow.start()
    assert again == ev.Unlock(1, unlock.session_id)
    snap = h.flow.snapshot()
    assert (snap.state, snap.door) == (fl.DOOR_OPEN, 1)
    assert h.send(ev.DoorSensed(1, False, True)) == []     # the board's first report, before the unlock: wait
    h.send(ev.DoorSensed(2, False, True))
    h.send(ev.UnlockResult(1, unlock.session_id))
    h.send(ev.DoorSensed(1, True, False))
    (scan,) = h.send(ev.DoorSensed(1, False, True))
    h.scan_result(scan, {"U2", "U3"})
    assert loans(h) == [("MH1", patron_key(SECRET, ADULT))]


def test_restart_after_a_confirmed_unlock_waits_for_the_door_and_does_not_unlock_again(h):
    h.start()
    h.send(ev.DoorChosen(1))
    (unlock,) = h.send(ev.CardPresented(ADULT))
    h.send(ev.UnlockResult(1, unlock.session_id))
    h.wall_offset_s = 5
    h.flow = h.make_flow()
    assert h.flow.start() == []
    assert h.flow.state == fl.DOOR_OPEN
    # While the daemon was down the patron took U1 and closed the door: closed and locked, it is counted at once.
    h.send(ev.DoorSensed(2, False, True))
    (scan,) = h.send(ev.DoorSensed(1, False, True))
    h.scan_result(scan, {"U2", "U3"})
    assert loans(h) == [("MH1", patron_key(SECRET, ADULT))]


def test_restart_long_after_an_unconfirmed_unlock_ends_the_session_at_once_with_a_message(h):
    h.start()
    h.send(ev.DoorChosen(1))
    h.send(ev.CardPresented(ADULT))
    h.wall_offset_s = 600                               # the daemon was down ten minutes: the patron has gone
    h.flow = h.make_flow()
    assert h.flow.start() == []                         # no unlock
    assert (h.flow.state, h.flow.reason) == (fl.REFUSED, "session_ended")
    (scan,) = h.send(ev.DoorSensed(1, False, True))     # counted as soon as the door is known closed
    h.send(ev.DoorSensed(2, False, True))
    h.scan_result(scan, {"U1", "U2", "U3"})
    assert h.store.open_sessions() == [] and h.store.loans() == []
    h.tick(9)
    assert h.flow.state == fl.IDLE


@pytest.mark.parametrize("state, age_s, plan", [
    (S_UNLOCKING, 0.0, "unlock"), (S_UNLOCKING, 19.9, "unlock"), (S_UNLOCKING, 20.0, "expire"),
    (S_UNLOCKED, 5.0, "wait"), (S_UNLOCKED, 300.0, "expire"),
    (S_UNLOCKING, -3.0, "expire"),                     # the wall clock moved back: the age is unknown
    (S_UNLOCKING, None, "expire"),
])
def test_the_restart_bound_is_door_open_timeout_from_the_sessions_start(state, age_s, plan):
    record = SessionRecord(id="s", kind=PATRON, door=1, state=state, before={}, opened_at="")
    assert resume_plan(record, age_s, 20.0) == plan
