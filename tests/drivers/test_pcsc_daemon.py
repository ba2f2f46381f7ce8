"""Card taps end to end through the daemon: virtual card -> vpcd -> pcscd -> driver -> core loop -> door -> loan.

Real pcscd with its vpcd reader (tests/pcsc_support.py), the simulated bookcase on real ptys, the daemon as
``kiosk run`` wires it, its SQLite database read back through a second connection.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from kiosk.core.policy import patron_key
from kiosk.core.staff import hash_pin
from kiosk.store.ledger import Store
from simulators.bookcase import SimulatedBookcase
from tests.pcsc_support import Vpcd, add_card_patrons, missing, wait_reader_empty
from tests.scenarios.harness import ADULT, Bookcase, wait_for

CARD_UID = "04C0FFEE123480"          # a 7-byte ISO 14443 A UID, as the driver reports it
OTHER_UID = "A1B2C3D4"               # another patron's card
UNKNOWN_UID = "DEADBEEF"
STAFF_UID, STAFF_PIN = "04FACE0FF1CE01", "97531"
WAIT_S = 10.0                        # deadlines for things that take a pcscd poll or two, never timing claims
POLLS_AFTER = 5                      # pcscd polls of a held card, with the bookcase idle, before we call it held
SAME_TAP = "back within"             # the driver's log line for a card back within the debounce


def card_bookcase(vpcd: Vpcd, folder: Path, debounce_ms: int = 1500) -> Bookcase:
    """A 2-door bookcase reading library cards on the tests' vpcd reader; two patrons' cards enrolled."""
    case = Bookcase(folder, doors=2, extra=f'[pcsc]\nenabled = true\nreader = "{vpcd.reader}"\n'
                                          f'debounce_ms = {debounce_ms}\n')
    case.sim = SimulatedBookcase(case.cfg, folder / "sim", books_per_door=8, air_ms=1.0, seed=1, pop_delay_ms=30,
                                 vpcd_port=vpcd.pcscd.port)     # the tests' vpcd slot (tests/pcsc_support.py)
    case.cfg.data_dir.mkdir(parents=True, exist_ok=True)
    add_card_patrons(case.cfg, {CARD_UID: "adult", OTHER_UID: "child"})
    return case


@pytest.fixture
def case(vpcd: Vpcd, tmp_path: Path) -> Iterator[Bookcase]:
    bookcase = card_bookcase(vpcd, tmp_path)
    try:
        bookcase.start()
        assert bookcase.app is not None and bookcase.app.card_reader is not None
        assert bookcase.app.card_reader.wait_ready(WAIT_S)
        yield bookcase
    finally:
        bookcase.stop()


def sessions_opened(case: Bookcase) -> list[dict]:
    return [e for e in case.events("session_opened") if e["kind"] == "patron"]


def idle(case: Bookcase) -> bool:
    return case.app is not None and case.app.snapshot.state == "idle"


def reader_alarms(case: Bookcase) -> list[tuple[str, str]]:
    return [(e["type"], e["alarm"]) for e in case.events() if e.get("device") == "pcsc"]


def test_a_tap_unlocks_a_door_and_the_session_completes(case: Bookcase) -> None:
    key = patron_key(case.cfg.secret, CARD_UID)
    book = case.items(1)[0]
    case.choose(1)
    tapped = case.sim.tap(CARD_UID)
    assert tapped["uid_reads"] == 1
    wait_for(lambda: case.seen_open(1), WAIT_S, "door 1 to open after the tap")
    case.sim.take(1, book)
    case.sim.close(1)
    wait_for(lambda: case.settled_sessions(), 30, "the session to settle")
    (session,) = case.settled_sessions()
    assert session["patron_key"] == key and session["door"] == 1
    assert case.loans(session) == [book]
    assert [e["patron"] for e in case.events("loan")] == [key]

    case.sim.tap(UNKNOWN_UID)
    wait_for(lambda: case.events("refusal"), WAIT_S, "the unknown card to be refused")
    assert case.events("refusal")[-1]["patron"] is None
    assert len(case.settled_sessions()) == 1
    assert reader_alarms(case) == []


def test_a_card_held_on_the_reader_through_a_whole_session_is_one_session(case: Bookcase) -> None:
    book = case.items(1)[0]
    case.choose(1)
    card = case.sim.card
    card.present(CARD_UID)                           # the patron leaves the card lying on the reader
    try:
        wait_for(lambda: case.seen_open(1), WAIT_S, "door 1 to open for the card")
        case.sim.take(1, book)
        case.sim.close(1)
        wait_for(lambda: case.settled_sessions(), 30, "the session to settle")
        wait_for(lambda: idle(case), WAIT_S, "the receipt to end")
        # The next patron picks a door: any card the reader reports now opens it at once.
        case.choose(2)
        polls = card.stats.atr_requests
        wait_for(lambda: card.stats.atr_requests >= polls + POLLS_AFTER and card.stats.power_offs, WAIT_S,
                 f"pcscd to power the unused card down and poll it {POLLS_AFTER} more times")
        stats = card.stats
        assert card.present_uid == CARD_UID and stats.uid_reads == 1      # still there, read exactly once
        assert len(sessions_opened(case)) == 1 and not case.door_open(2)
        assert case.app.card_reader.taps == 1 and idle(case)
    finally:
        card.remove()
    (session,) = case.settled_sessions()
    assert case.loans(session) == [book]
    # The reader still serves: the next patron's card opens the door they chose.
    case.sim.tap(OTHER_UID)
    wait_for(lambda: case.seen_open(2), WAIT_S, "door 2 to open for the next card")
    assert [e["patron"] for e in sessions_opened(case)] == [patron_key(case.cfg.secret, u) for u in (CARD_UID, OTHER_UID)]


def test_a_double_tap_within_the_debounce_is_one_tap(vpcd: Vpcd, tmp_path: Path, caplog) -> None:
    # A long debounce: the second tap always falls inside it, however slow this machine is today.
    case = card_bookcase(vpcd, tmp_path, debounce_ms=10000)
    caplog.set_level(logging.INFO, logger="kiosk.drivers.pcsc.device")
    try:
        case.start()
        assert case.app is not None and case.app.card_reader is not None
        assert case.app.card_reader.wait_ready(WAIT_S)
        # An unknown card tapped twice: the refused screen takes a new card, so a second tap would be a second refusal.
        case.sim.tap(UNKNOWN_UID, hold_s=0.2)
        wait_for(lambda: case.events("refusal"), WAIT_S, "the unknown card to be refused")
        again = case.sim.tap(UNKNOWN_UID, hold_s=0.2)
        assert again["uid_reads"] == 1                   # the driver read it again, and...
        wait_for(lambda: any(SAME_TAP in r.getMessage() and UNKNOWN_UID in r.getMessage() for r in caplog.records),
                 WAIT_S, "the driver to take it for the same tap")
        # A known card tapped twice while the screen waits for a card: one session.
        book = case.items(1)[0]
        case.choose(1)
        case.sim.tap(CARD_UID, hold_s=0.2)
        case.sim.tap(CARD_UID, hold_s=0.2)
        wait_for(lambda: sum(SAME_TAP in r.getMessage() and CARD_UID in r.getMessage() for r in caplog.records),
                 WAIT_S, "the driver to take the known card's second tap for the same tap")
        wait_for(lambda: case.seen_open(1), WAIT_S, "door 1 to open")
        case.sim.take(1, book)
        case.sim.close(1)
        wait_for(lambda: case.settled_sessions(), 30, "the session to settle")
        # Everything the driver posted has been handled by now (one queue, in order).
        assert [e["reason"] for e in case.events("refusal")] == ["unknown_card"]
        assert len(sessions_opened(case)) == 1 and case.loans() == [book]
        assert case.app.card_reader.taps == 2
    finally:
        case.stop()


def test_a_staff_card_tapped_then_the_pin_on_the_scanner_restocks_every_door(case: Bookcase) -> None:
    store = Store(case.cfg.db_path, case.cfg.bookcase.id)
    try:
        store.set_staff(patron_key(case.cfg.secret, STAFF_UID), hash_pin(STAFF_PIN), "restock team")
    finally:
        store.close()
    case.sim.tap(STAFF_UID)
    wait_for(lambda: case.app.snapshot.state == "staff_pin", WAIT_S, "the PIN screen")
    assert case.view.open_sessions() == []                   # nothing opens on the card alone
    case.sim.scan(STAFF_PIN)
    wait_for(lambda: case.seen_open(1) and case.seen_open(2), WAIT_S, "every door to open")
    taken = case.items(1)[0]
    case.sim.take(1, taken)
    case.sim.put(2, taken)
    case.sim.close(1)
    case.sim.close(2)
    wait_for(lambda: len(case.settled_sessions("restock")) == 2, 30, "both doors counted")
    assert sorted((e["door"], e["change"], e["item"]) for e in case.events("restock")) == [
        (1, "removed", taken), (2, "added", taken)]
    assert case.view.loans() == [] and case.view.returns() == [] and sessions_opened(case) == []


def test_the_card_reader_unplugged_raises_an_alarm_the_bookcase_keeps_lending_and_it_comes_back(
        case: Bookcase, vpcd: Vpcd, caplog) -> None:
    """vpcd's reader lives as long as pcscd (tests/pcsc_support.py): stopping pcscd unplugs it."""
    if not vpcd.pcscd.owned:
        missing("the running pcscd was not started by these tests: it is not ours to stop")
    caplog.set_level(logging.INFO)
    vpcd.pcscd.stop()
    (alarm,) = wait_for(lambda: [e for e in case.events("alarm") if e.get("device") == "pcsc"], WAIT_S,
                        "the card reader's hardware_fault alarm")
    assert alarm["alarm"] == "hardware_fault" and alarm["door"] is None
    assert vpcd.reader in alarm["message"] and "pcscd" in alarm["message"] and "retrying" in alarm["message"]
    # The operator's log says the same, once, naming the reader.
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and vpcd.reader in r.getMessage()]
    assert any(line.startswith("alarm hardware_fault") and "device=pcsc" in line for line in lines)
    assert sum(line.startswith(f"card reader '{vpcd.reader}': the PC/SC service (pcscd) stopped") for line in lines) == 1
    assert not case.app.card_reader.wait_ready(0)
    devices = {name: up for name, up, _ in case.app.snapshot.diagnostics.devices}
    assert devices["pcsc"] is False
    # Only the card reader is gone: every door works, and patrons still borrow with the scanner.
    assert case.app.snapshot.doors_in_service == (1, 2) and not case.app.snapshot.out_of_service
    scanned = case.session(ADULT, 2, take=[case.items(2)[0]])
    assert len(case.loans(scanned)) == 1
    assert reader_alarms(case) == [("alarm", "hardware_fault")]          # one alarm for the whole outage

    vpcd.pcscd.start()
    wait_reader_empty(vpcd.reader)
    wait_for(lambda: ("alarm_cleared", "hardware_fault") in reader_alarms(case), WAIT_S, "the alarm to clear")
    assert reader_alarms(case) == [("alarm", "hardware_fault"), ("alarm_cleared", "hardware_fault")]
    assert case.app.card_reader.wait_ready(WAIT_S)
    wait_for(lambda: idle(case), WAIT_S, "the receipt to end")
    book = case.items(1)[0]
    case.choose(1)
    case.sim.tap(CARD_UID)
    wait_for(lambda: case.seen_open(1), WAIT_S, "door 1 to open for a tap after the replug")
    case.sim.take(1, book)
    case.sim.close(1)
    wait_for(lambda: len(case.settled_sessions()) == 2, 30, "the session to settle")
    assert case.loans(case.settled_sessions()[-1]) == [book]
    assert case.settled_sessions()[-1]["patron_key"] == patron_key(case.cfg.secret, CARD_UID)
