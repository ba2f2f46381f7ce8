"""The lock board falls silent (or is unplugged) right after an unlock, before the daemon has seen the door open;
the daemon is killed before its unlock reaches the board. The real daemon against the simulators on ptys.

Faults start at the exact moment the lock board simulator receives the unlock frame (a wrapper around its
handler applies the link's real ``silence`` fault), so nothing races the daemon's polling: the patron's books
are still the patron's loans, the next patron of that door is charged nothing, and a restarted daemon unlocks
again at once a door whose unlock never reached the board.
"""

from __future__ import annotations

import time

import pytest

from kiosk.core import events as ev
from kiosk.core.policy import patron_key
from kiosk.drivers.lockboard.codec import UnlockRequest
from kiosk.drivers.rfid.codec import InventoryRequest
from kiosk.intents import send
from tests.scenarios.harness import ADULT, ADULT2, Bookcase, wait_for

DOOR = 2
TIMEOUT_S = 1.5          # door_open_timeout_s of the silent-board cases: the old daemon counted blind after it


def key(card: str) -> str:
    return patron_key("test-secret-0123456789", card)


class Wire:
    """What the simulated devices receive, in order: ("unlock", lock) and ("inventory", reader). With
    ``drop_unlock`` set, the next unlock frame is lost on its way (the lock never moves) and the board falls
    silent; with ``silence_after`` set, the board executes the next unlock, then falls silent (``answer``: its
    answer to the unlock still arrives)."""

    def __init__(self, case: Bookcase) -> None:
        self.case, self.frames = case, []
        self.drop_unlock = self.silence_after = self.answer = False
        lockboard, rfid = case.sim.lockboard, case.sim.rfid
        unlock, inventory = lockboard._handle_unlock, rfid._handle_inventory
        link = case.sim.links["lockboard"]

        def on_unlock(request: UnlockRequest) -> None:
            self.frames.append(("unlock", request.lock))
            if self.drop_unlock:
                self.drop_unlock = False
                link.silence()
                return
            if self.silence_after:
                self.silence_after = False
                if not self.answer:
                    link.silence()          # the board executes the unlock; its answer never arrives
                unlock(request)
                link.silence()
                return
            unlock(request)

        def on_inventory(request: InventoryRequest) -> None:
            self.frames.append(("inventory", request.address))
            inventory(request)

        lockboard._handle_unlock, rfid._handle_inventory = on_unlock, on_inventory

    def since(self, mark: int) -> list[tuple[str, int]]:
        return self.frames[mark:]


def door(case: Bookcase, number: int) -> dict:
    (info,) = [d for d in case.sim.status()["doors"] if d["door"] == number]
    return info


@pytest.fixture
def silent_case(tmp_path):
    case = Bookcase(tmp_path, door_open_timeout_s=TIMEOUT_S, receipt_s=30)
    wire = Wire(case)
    case.start()
    yield case, wire
    case.stop()


@pytest.mark.parametrize("fault", ["silent_after_answer", "answer_lost", "unplugged_and_replugged"])
def test_books_taken_while_the_lock_board_was_silent_are_the_first_patrons_loans(silent_case, fault):
    case, wire = silent_case
    book = case.items(DOOR)[0]
    wire.silence_after, wire.answer = True, fault != "answer_lost"
    case.choose(DOOR)
    case.sim.scan(ADULT)
    wait_for(lambda: ("unlock", DOOR) in wire.frames and door(case, DOOR)["open"], 10,
             "the door to pop open while the board is silent")
    if fault == "unplugged_and_replugged":
        case.sim.unplug("lockboard")
    # The screen says the door is being checked, and nobody else may use it.
    snap = wait_for(lambda: DOOR in case.app.snapshot.checking and case.app.snapshot, 10, "door 2 being checked")
    assert DOOR not in snap.doors_in_service
    if fault != "answer_lost":
        assert (snap.state, snap.reason, snap.door) == ("receipt", "door_checking", DOOR)
    # The patron looks at the shelf well past door_open_timeout_s while the daemon cannot see the door: the old
    # daemon counted the open compartment now, settled the session with nothing borrowed, and charged the
    # book to the next patron of this door.
    time.sleep(3 * TIMEOUT_S)
    case.sim.take(DOOR, book)
    case.sim.close(DOOR)
    time.sleep(1.0)
    assert case.settled_sessions() == [], "a session settled while its door's state was unknown"
    assert case.view.loans() == [] and DOOR in case.app.snapshot.checking
    case.sim.heal("lockboard")
    if fault == "unplugged_and_replugged":
        case.sim.replug("lockboard")
    (first,) = wait_for(lambda: case.settled_sessions(), 30, "the session to settle once the board answers")
    assert [(r["item_id"], r["patron_key"], r["session_id"]) for r in case.view.loans()] == [
        (book, key(ADULT), first["id"])]
    assert [(e["item"], e["patron"], e["session"]) for e in case.events("loan")] == [
        (book, key(ADULT), first["id"])]
    assert case.view.open_sessions() == []
    # The door is back in service and its next patron takes nothing: charged nothing.
    case.app.post(ev.Cancel())                    # the patron dismisses the "checking door 2" screen
    wait_for(lambda: case.app.snapshot.state == "idle" and DOOR in case.app.snapshot.doors_in_service
             and not case.app.snapshot.checking, 30, "the door back in service")
    second = case.session(ADULT2, DOOR)
    assert case.loans(second) == []
    assert [r["patron_key"] for r in case.view.loans()] == [key(ADULT)]
    assert [(e["session"], e["patron"]) for e in case.events("session_opened") if e["kind"] == "patron"] == [
        (first["id"], key(ADULT)), (second["id"], key(ADULT2))]
    assert [e["item"] for e in case.events("loan")] == [book]
    alarms = [(e["type"], e.get("device")) for e in case.events() if e.get("alarm") == "hardware_fault"]
    assert ("alarm", "lockboard") in alarms and ("alarm_cleared", "lockboard") in alarms


def _wait_first_stocktake(case: Bookcase) -> None:
    wait_for(lambda: case.cfg.intent_socket.exists() and case.cfg.db_path.exists() and not case.view.open_sessions()
             and not case.view.doors_never_counted([1, 2, 3]), 60, "the first stocktake")


def _status(case: Bookcase) -> dict | None:
    try:
        return send(case.cfg.intent_socket, {"intent": "status"}, timeout_s=2)["snapshot"]
    except OSError:
        return None


def _kill_with_the_unlock_lost(case: Bookcase, wire: Wire):
    """A patron's card, the session written, the unlock frame lost on its way and the board silent: SIGKILL."""
    _wait_first_stocktake(case)
    wire.drop_unlock = True
    case.choose(DOOR)
    case.sim.scan(ADULT)
    wait_for(lambda: ("unlock", DOOR) in wire.frames, 30, "the unlock frame")
    # The board is silent, so the daemon can never learn the door's state: the session stays "unlocking".
    (session,) = case.view.open_sessions()
    assert (session.state, session.patron_key) == ("unlocking", key(ADULT))
    assert not door(case, DOOR)["open"]
    case.kill_process()
    case.sim.heal("lockboard")
    return session


def test_a_daemon_killed_before_its_unlock_reached_the_board_unlocks_again_at_once_on_restart(tmp_path):
    # door_open_timeout_s is long: the old daemon resumed by waiting it out, then counted the compartment.
    case = Bookcase(tmp_path, door_open_timeout_s=60)
    wire = Wire(case)
    case.sim.start()
    case.start_process()
    try:
        session = _kill_with_the_unlock_lost(case, wire)
        mark = len(wire.frames)
        case.start_process()
        wait_for(lambda: [f for f in wire.since(mark) if f in (("unlock", DOOR), ("inventory", DOOR))], 120,
                 "the restarted daemon to unlock the door, or to count it")
        # The unlock comes first: at once, not after door_open_timeout_s and a count of the closed door.
        assert [f for f in wire.since(mark) if f[1] == DOOR][0] == ("unlock", DOOR)
        wait_for(lambda: case.seen_open(DOOR), 10, "the door to pop open, seen by the daemon")
        book = case.items(DOOR)[0]
        case.sim.take(DOOR, book)
        case.sim.close(DOOR)
        wait_for(lambda: not case.view.open_sessions(), 30, "the session to settle")
        assert [(r["item_id"], r["patron_key"], r["session_id"]) for r in case.view.loans()] == [
            (book, key(ADULT), session.id)]
        assert [(e["item"], e["session"]) for e in case.events("loan")] == [(book, session.id)]
        assert [e["session"] for e in case.events("session_opened") if e["kind"] == "patron"] == [session.id]
        assert wire.since(mark).count(("unlock", DOOR)) == 1
    finally:
        case.stop()


def test_a_daemon_down_longer_than_door_open_timeout_ends_the_session_with_a_message(tmp_path):
    case = Bookcase(tmp_path, door_open_timeout_s=3, receipt_s=60)
    wire = Wire(case)
    case.sim.start()
    case.start_process()
    try:
        session = _kill_with_the_unlock_lost(case, wire)
        mark = len(wire.frames)
        time.sleep(3.5)                                   # down longer than door_open_timeout_s: the patron left
        case.start_process()
        snap = wait_for(lambda: (s := _status(case)) and s["state"] != "starting" and s, 60, "the daemon")
        assert (snap["state"], snap["reason"]) == ("refused", "session_ended")
        wait_for(lambda: not case.view.open_sessions(), 60, "the session to end")
        assert ("unlock", DOOR) not in wire.since(mark) and not door(case, DOOR)["open"]
        (row,) = [s for s in case.view.sessions() if s["id"] == session.id]
        assert row["state"] == "done" and case.view.loans() == []
        assert [e["session"] for e in case.events("session_closed")][-1] == session.id
    finally:
        case.stop()
