"""A card tapped on the PC/SC reader, end to end: virtual card -> vpcd -> pcscd -> driver -> daemon -> door -> loan."""

from __future__ import annotations

from pathlib import Path

from kiosk.core.policy import patron_key
from simulators.bookcase import SimulatedBookcase
from tests.pcsc_support import Vpcd, add_card_patrons
from tests.scenarios.harness import Bookcase, wait_for

CARD_UID = "04C0FFEE123480"          # a 7-byte ISO 14443 A UID, as the driver reports it
UNKNOWN_UID = "DEADBEEF"


def test_a_tap_unlocks_a_door_and_the_session_completes(vpcd: Vpcd, tmp_path: Path) -> None:
    case = Bookcase(tmp_path, doors=2, extra=f'[pcsc]\nenabled = true\nreader = "{vpcd.reader}"\ndebounce_ms = 1500\n')
    case.sim = SimulatedBookcase(case.cfg, tmp_path / "sim", books_per_door=8, air_ms=1.0, seed=1, pop_delay_ms=30,
                                 vpcd_port=vpcd.pcscd.port)     # the tests' vpcd slot (tests/pcsc_support.py)
    case.cfg.data_dir.mkdir(parents=True, exist_ok=True)
    add_card_patrons(case.cfg, {CARD_UID: "adult"})
    key = patron_key(case.cfg.secret, CARD_UID)
    try:
        case.start()
        assert case.app is not None and case.app.card_reader is not None
        assert case.app.card_reader.wait_ready(10)
        book = case.items(1)[0]
        case.choose(1)
        tapped = case.sim.tap(CARD_UID)
        assert tapped["uid_reads"] == 1
        wait_for(lambda: case.seen_open(1), 10, "door 1 to open after the tap")
        case.sim.take(1, book)
        case.sim.close(1)
        wait_for(lambda: case.settled_sessions(), 30, "the session to settle")
        (session,) = case.settled_sessions()
        assert session["patron_key"] == key and session["door"] == 1
        assert case.loans(session) == [book]
        assert [e["patron"] for e in case.events("loan")] == [key]

        case.sim.tap(UNKNOWN_UID)
        wait_for(lambda: case.events("refusal"), 10, "the unknown card to be refused")
        assert case.events("refusal")[-1]["patron"] is None
        assert len(case.settled_sessions()) == 1
        assert not [e for e in case.events("alarm") if e.get("device") == "pcsc"]
    finally:
        case.stop()
