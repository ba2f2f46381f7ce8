"""Issue 3 end to end: the daemon with its simulators over real ptys — refusals, e-card codes, the offline
cap, a staff restock, a lock board dying mid-session, and the disk alarm."""

from __future__ import annotations

import time

import pytest

from kiosk.cli import main
from kiosk.core import ecard
from kiosk.core import events as ev
from kiosk.core.policy import patron_key
from kiosk.demodata import DEMO_STAFF_CARD, DEMO_STAFF_PIN
from tests.scenarios.harness import ADULT, Bookcase, wait_for

SECRET = "test-secret-0123456789"
ECARD_KEY = "scenario-ecard-key-0123"
ECARD = f'[ecard]\nkey = "{ECARD_KEY}"\n'


@pytest.fixture
def case(tmp_path):
    bookcase = Bookcase(tmp_path, doors=3, books_per_door=4, extra=ECARD).start()
    yield bookcase
    bookcase.stop()


def wait_state(case, state, reason=None):
    return wait_for(lambda: case.app.snapshot.state == state and (reason is None or case.app.snapshot.reason == reason)
                    and case.app.snapshot, 10, f"state {state} ({reason})")


@pytest.mark.parametrize("card, reason", [
    ("3109999999999", "unknown_card"),
    ("3101120000075", "blocked"),
    ("3101120000083", "expired"),
    ("3101120000109", "lost"),
])
def test_refused_cards_say_why_and_open_nothing(case, card, reason):
    case.sim.scan(card)
    wait_state(case, "refused", reason)
    assert [e["reason"] for e in case.events("refusal")] == [reason]
    assert case.view.open_sessions() == [] and not any(case.door_open(d) for d in (1, 2, 3))


def test_an_overdue_patron_may_return_but_not_borrow(case):
    case.sim.scan("3101120000091")
    snap = wait_state(case, "choosing", "overdue")
    assert snap.may_borrow == 0


def test_an_ecard_code_on_the_scanner_borrows_and_its_replay_is_refused(case):
    token = ecard.issue(ECARD_KEY, patron_key(SECRET, ADULT), int(time.time()))
    session = case.session(token, 1, take=[case.items(1)[0]])
    assert len(case.loans(session)) == 1
    assert session["patron_key"] == patron_key(SECRET, ADULT)
    wait_state(case, "idle")
    case.sim.scan(token)
    wait_state(case, "refused", "ecard_used")


@pytest.mark.parametrize("make, reason", [
    (lambda: ecard.issue(ECARD_KEY, patron_key(SECRET, ADULT), int(time.time()) - 120), "ecard_expired"),
    (lambda: ecard.issue("a-forger-guessing-keys", patron_key(SECRET, ADULT), int(time.time())), "ecard_forged"),
    (lambda: "CB1THISISNOTANECARDCODE", "ecard_malformed"),
])
def test_expired_and_forged_ecard_codes_are_refused(case, make, reason):
    case.sim.scan(make())
    wait_state(case, "refused", reason)
    assert case.view.open_sessions() == []


def test_a_code_from_kiosk_ecard_issue_opens_a_door(case, capsys):
    assert main(["ecard", "issue", "--config", str(case.config_path), "--card", ADULT]) == 0
    token = capsys.readouterr().out.strip()
    session = case.session(token, 2, take=[case.items(2)[0]])
    assert session["patron_key"] == patron_key(SECRET, ADULT) and len(case.loans(session)) == 1


def test_offline_an_unknown_card_is_refused_and_a_known_one_borrows(case):
    case.app.post(ev.SyncState(False))
    case.sim.scan("3109999999999")
    snap = wait_state(case, "refused", "offline_unknown")
    assert snap.offline and case.view.open_sessions() == []
    wait_state(case, "idle")
    session = case.session(ADULT, 1, take=[case.items(1)[0]])
    assert [loan["offline"] for loan in case.view.loans()] == [1] and len(case.loans(session)) == 1


def test_offline_the_cap_limits_extra_loans(tmp_path):
    case = Bookcase(tmp_path, doors=2, books_per_door=6).start()
    try:
        case.app.post(ev.SyncState(False))
        case.app.flow.policy.offline_extra_loans = 2
        items = case.items(1)
        session = case.session(ADULT, 1, take=items[:3])
        # The patron took three: all three are theirs (they have them), flagged over the offline cap.
        assert case.loans(session) == sorted(items[:3])
        assert [e["may_borrow"] for e in case.events("alarm") if e["alarm"] == "over_limit"] == [2]
        wait_state(case, "idle")
        case.sim.scan(ADULT)
        snap = wait_state(case, "choosing", "offline_at_cap")
        assert snap.may_borrow == 0 and snap.offline
    finally:
        case.stop()


def test_staff_restock_through_the_scanner(case):
    case.sim.scan(DEMO_STAFF_CARD)
    wait_state(case, "staff_pin")
    case.sim.scan(DEMO_STAFF_PIN)
    wait_for(lambda: all(case.seen_open(d) for d in (1, 2, 3)), 10, "every door open")
    taken = case.items(1)[0]
    case.sim.take(1, taken)
    case.sim.put(2, taken)                                   # staff move a book from door 1 to door 2
    for door in (1, 2, 3):
        case.sim.close(door)
    wait_for(lambda: len(case.settled_sessions("restock")) == 3, 30, "three restock counts")
    changes = sorted((e["door"], e["change"], e["item"]) for e in case.events("restock"))
    assert changes == [(1, "removed", taken), (2, "added", taken)]
    assert case.view.loans() == [] and case.view.returns() == [] and case.view.missing() == []
    snap = wait_state(case, "staff_restock")
    assert snap.staff.summary == ((1, 0, 1), (2, 1, 0), (3, 0, 0))


def test_a_wrong_staff_pin_opens_nothing(case):
    case.sim.scan(DEMO_STAFF_CARD)
    wait_state(case, "staff_pin")
    case.sim.scan("0000")
    snap = wait_state(case, "staff_pin", "staff_pin_wrong")
    assert snap.staff.pin_error and case.view.open_sessions() == []


def test_a_lock_board_dying_mid_session_while_the_other_board_serves(tmp_path):
    case = Bookcase(tmp_path, doors=4, boards=2, books_per_door=4).start()
    try:
        case.choose(1)
        case.sim.scan(ADULT)
        wait_for(lambda: case.seen_open(1), 10, "door 1 to open")
        first = case.items(1)[0]
        case.sim.take(1, first)
        case.sim.board(0)                                  # board 0 (doors 1, 2) dies with door 1 open
        wait_for(lambda: set(case.app.snapshot.doors_out_of_service) == {1, 2}, 10, "doors 1 and 2 out")
        assert not case.app.snapshot.out_of_service
        # The screen tells the first patron their door is being checked, and frees itself.
        snap = wait_state(case, "receipt", "door_checking")
        assert snap.receipt.pending and snap.door == 1 and snap.checking == (1,)
        wait_state(case, "idle")
        # Another patron borrows at door 3, on board 1, meanwhile.
        other = case.session("3101120000026", 3, take=[case.items(3)[0]])
        assert len(case.loans(other)) == 1
        # Board 0 comes back; door 1 is closed; the first session is counted and charged exactly.
        case.sim.close(1)
        case.sim.board(0, alive=True)
        wait_for(lambda: len(case.settled_sessions()) == 2, 30, "the first session to settle")
        assert first in case.loans()
        faults = [(e["type"], e.get("device")) for e in case.events() if e.get("alarm") == "hardware_fault"]
        assert ("alarm", "lockboard") in faults and ("alarm_cleared", "lockboard") in faults
    finally:
        case.stop()


def test_out_of_service_only_when_the_whole_lock_bus_is_gone_and_back_in_service_after(case):
    case.sim.unplug("lockboard")
    wait_for(lambda: case.app.snapshot.out_of_service, 10, "the bookcase to report itself out of service")
    assert set(case.app.snapshot.doors_out_of_service) == {1, 2, 3}
    assert {(e["alarm"], e.get("device")) for e in case.events("alarm")} == {("hardware_fault", "lockboard"),
                                                                             ("out_of_service", None)}
    case.sim.scan(ADULT)
    wait_state(case, "refused", "no_door")                   # the patron is told, and nothing opens
    assert case.view.open_sessions() == []
    case.sim.replug("lockboard")
    wait_for(lambda: not case.app.snapshot.out_of_service and len(case.app.snapshot.doors_in_service) == 3, 10,
             "every door back in service")
    cleared = [(e["alarm"], e.get("device")) for e in case.events("alarm_cleared")]
    assert sorted(cleared, key=str) == sorted([("hardware_fault", "lockboard"), ("out_of_service", None)], key=str)
    wait_state(case, "idle")
    assert len(case.loans(case.session(ADULT, 3, take=[case.items(3)[0]]))) == 1


def test_the_scanner_unplugged_raises_an_alarm_and_takes_no_door_out_of_service(case):
    case.sim.unplug("scanner")
    (alarm,) = wait_for(lambda: case.events("alarm"), 10, "the scanner's alarm")
    assert (alarm["alarm"], alarm["device"], alarm["door"]) == ("hardware_fault", "scanner", None)
    assert alarm["message"]
    snap = case.app.snapshot
    assert snap.doors_in_service == (1, 2, 3) and not snap.out_of_service
    case.sim.replug("scanner")
    wait_for(lambda: case.events("alarm_cleared"), 10, "the scanner's alarm to clear")
    assert [(e["alarm"], e["device"]) for e in case.events("alarm_cleared")] == [("hardware_fault", "scanner")]
    assert len(case.loans(case.session(ADULT, 1, take=[case.items(1)[0]]))) == 1


def test_a_nearly_full_data_partition_raises_the_disk_alarm(tmp_path):
    case = Bookcase(tmp_path, doors=1, books_per_door=2, disk_low_mb=100000).start()
    try:
        (alarm,) = wait_for(lambda: [e for e in case.events("alarm") if e["alarm"] == "disk_low"], 10, "disk alarm")
        assert alarm["free_mb"] < 100000
        assert case.app.snapshot.diagnostics.disk_free_mb == alarm["free_mb"]
        case.session(ADULT, 1, take=[case.items(1)[0]])          # still lends while space lasts
    finally:
        case.stop()
