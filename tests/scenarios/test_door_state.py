"""A lock board that falls silent (or is unplugged) right after an unlock, before the daemon has seen the door
open: the patron's books are still the patron's loans, and the next patron of that door is charged nothing.

The lock board simulator is wrapped so the fault starts at the exact moment the unlock frame is executed, with
the unlock's answer lost or delivered: no race against the daemon's polling."""

from __future__ import annotations

import time

import pytest

from kiosk.core.policy import patron_key
from tests.scenarios.harness import ADULT, ADULT2, Bookcase, wait_for

DOOR = 2


def key(card: str) -> str:
    return patron_key("test-secret-0123456789", card)


@pytest.fixture
def bookcase(tmp_path):
    case = Bookcase(tmp_path, door_open_timeout_s=1.5).start()
    yield case
    case.stop()


def _fall_silent_at_the_next_unlock(case: Bookcase, *, answer_lost: bool) -> list[str]:
    """From the next unlock on, the lock board's line is silent; returns a log the test can wait on."""
    sim, link = case.sim.lockboard, case.sim.links["lockboard"]
    handle, log = sim._handle_unlock, []

    def unlock_then_silence(request):
        if answer_lost:
            link.silence()              # the board executes the unlock, its answer never arrives
            handle(request)
        else:
            handle(request)             # the answer arrives, then the board falls silent
            link.silence()
        sim._handle_unlock = handle
        log.append(f"unlocked lock {request.lock}")

    sim._handle_unlock = unlock_then_silence
    return log


def _door(case: Bookcase, door: int) -> dict:
    (info,) = [d for d in case.sim.status()["doors"] if d["door"] == door]
    return info


@pytest.mark.parametrize("fault", ["answer_lost", "silent_after_answer", "unplugged_and_replugged"])
def test_books_taken_while_the_lock_board_was_silent_are_the_first_patrons_loans(bookcase, fault):
    case = bookcase
    book = case.items(DOOR)[0]
    log = _fall_silent_at_the_next_unlock(case, answer_lost=fault == "answer_lost")
    case.choose(DOOR)
    case.sim.scan(ADULT)
    wait_for(lambda: log and _door(case, DOOR)["open"], 10, "the door to pop open while the board is silent")
    if fault == "unplugged_and_replugged":
        case.sim.unplug("lockboard")
    # The patron looks at the shelf well past door_open_timeout_s while the daemon cannot see the door. The old
    # daemon counted the compartment now, settled the session with nothing borrowed, and charged the book to
    # the next patron of this door.
    time.sleep(3 * 1.5)
    assert case.view.loans() == []
    case.sim.take(DOOR, book)
    case.sim.close(DOOR)
    time.sleep(1.0)
    assert case.settled_sessions() == [], "a session settled while its door's state was unknown"
    case.sim.heal("lockboard")
    if fault == "unplugged_and_replugged":
        case.sim.replug("lockboard")
    wait_for(lambda: case.settled_sessions(), 30, "the session to settle once the board answers")
    assert [(r["item_id"], r["patron_key"]) for r in case.view.loans()] == [(book, key(ADULT))]
    assert [(e["item"], e["patron"]) for e in case.events("loan")] == [(book, key(ADULT))]
    assert case.view.open_sessions() == []
    # The door is back in service and its next patron takes nothing: charged nothing.
    wait_for(lambda: case.app.snapshot.state == "idle" and DOOR in case.app.snapshot.doors_in_service, 30,
             "the door back in service")
    second = case.session(ADULT2, DOOR)
    assert case.loans(second) == []
    assert [r["patron_key"] for r in case.view.loans()] == [key(ADULT)]


def test_a_daemon_killed_before_its_unlock_reached_the_board_unlocks_again_on_restart(tmp_path):
    # door_open_timeout_s is long: the old daemon resumed by waiting it out, and never unlocked again.
    case = Bookcase(tmp_path, door_open_timeout_s=120)
    sim, swallowed = case.sim.lockboard, []
    handle = sim._handle_unlock

    def swallow_first(request):
        if not swallowed:
            swallowed.append(request.lock)      # the frame is lost on its way: nothing unlocks, nothing answers
            return
        handle(request)

    sim._handle_unlock = swallow_first
    case.sim.start()
    case.start_process()
    try:
        wait_for(lambda: case.cfg.intent_socket.exists() and not case.view.open_sessions()
                 and not case.view.doors_never_counted([1, 2, 3]), 60, "the first stocktake")
        case.choose(DOOR)
        case.sim.scan(ADULT)
        wait_for(lambda: swallowed, 30, "the unlock frame")
        (session,) = case.view.open_sessions()
        assert session.state == "unlocking" and not _door(case, DOOR)["open"]
        case.kill_process()
        case.start_process()
        wait_for(lambda: _door(case, DOOR)["open"], 30, "the door to unlock again after the restart")
        book = case.items(DOOR)[0]
        case.sim.take(DOOR, book)
        case.sim.close(DOOR)
        wait_for(lambda: not case.view.open_sessions(), 30, "the session to settle")
        assert [(r["item_id"], r["patron_key"], r["session_id"]) for r in case.view.loans()] == [
            (book, key(ADULT), session.id)]
    finally:
        case.stop()
