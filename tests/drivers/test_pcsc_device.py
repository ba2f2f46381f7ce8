"""The PC/SC card reader driver end to end: real pcscd, its vpcd reader, and the virtual card of simulators/vpcd.py."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest

from kiosk.drivers.pcsc.device import CardReader
from tests.pcsc_support import Vpcd, missing

UID = "04A224B2C35E80"
OTHER = "A1B2C3D4"
WAIT_S = 10.0          # a deadline for things that take ~0.4 s (one pcscd poll of vpcd), never a timing claim


@dataclass
class Seen:
    """What the driver reported, in order, with a way to wait for the next report of a kind."""

    events: list[tuple] = field(default_factory=list)
    changed: threading.Condition = field(default_factory=threading.Condition)

    def add(self, *event: object) -> None:
        with self.changed:
            self.events.append(event)
            self.changed.notify_all()

    def of(self, kind: str) -> list[tuple]:
        with self.changed:
            return [e[1:] for e in self.events if e[0] == kind]

    def wait(self, kind: str, count: int, timeout: float = WAIT_S) -> list[tuple]:
        with self.changed:
            if not self.changed.wait_for(lambda: len(self.of(kind)) >= count, timeout):
                raise AssertionError(f"waited {timeout:g} s for {count} {kind!r} report(s); got {self.events}")
        return self.of(kind)

    @property
    def cards(self) -> list[str]:
        return [uid for (uid,) in self.of("card")]


@pytest.fixture
def start_reader(vpcd: Vpcd) -> Iterator[Callable[..., tuple[CardReader, Seen]]]:
    readers: list[CardReader] = []

    def _start(reader_match: str | None = None, **options: float) -> tuple[CardReader, Seen]:
        seen = Seen()
        options.setdefault("retry_s", 0.2)
        driver = CardReader(vpcd.reader if reader_match is None else reader_match,
                            on_card=lambda uid: seen.add("card", uid),
                            on_removed=lambda uid: seen.add("removed", uid),
                            on_link=lambda up, message: seen.add("link", up, message), **options)
        readers.append(driver)
        driver.start()
        return driver, seen

    yield _start
    for driver in readers:
        driver.close()


def test_a_tap_gives_one_card_with_its_uid(vpcd: Vpcd, start_reader) -> None:
    driver, seen = start_reader()
    assert driver.wait_ready(WAIT_S)
    stats = vpcd.card.tap(UID)
    seen.wait("removed", 1)
    assert seen.cards == [UID]
    assert stats.uid_reads == 1 and driver.taps == 1
    assert seen.of("link") == [(True, f"card reader '{vpcd.reader}': ready")]


def test_a_double_tap_within_the_debounce_is_one_tap(vpcd: Vpcd, start_reader) -> None:
    driver, seen = start_reader(debounce_s=5.0)
    assert driver.wait_ready(WAIT_S)
    first = vpcd.card.tap(UID)
    seen.wait("removed", 1)
    second = vpcd.card.tap(UID)
    seen.wait("removed", 2)
    assert first.uid_reads == second.uid_reads == 1          # the driver did see the card come back...
    assert seen.cards == [UID]                               # ...and counted it as the same tap


def test_the_same_card_after_the_debounce_is_a_new_tap(vpcd: Vpcd, start_reader) -> None:
    # vpcd notices a removal and the next card at least one pcscd poll (0.4 s) apart: more than 0.1 s.
    driver, seen = start_reader(debounce_s=0.1)
    assert driver.wait_ready(WAIT_S)
    vpcd.card.tap(UID)
    seen.wait("removed", 1)
    vpcd.card.tap(UID)
    seen.wait("removed", 2)
    assert seen.cards == [UID, UID]


def test_a_card_held_5_s_is_one_tap(vpcd: Vpcd, start_reader) -> None:
    driver, seen = start_reader()
    assert driver.wait_ready(WAIT_S)
    stats = vpcd.card.tap(UID, hold_s=5.0)
    seen.wait("removed", 1)
    assert stats.atr_requests >= 10                          # pcscd kept polling it all along
    assert seen.cards == [UID] and seen.of("removed") == [(UID,)]


def test_two_different_cards_give_two_taps(vpcd: Vpcd, start_reader) -> None:
    driver, seen = start_reader(debounce_s=5.0)
    assert driver.wait_ready(WAIT_S)
    vpcd.card.tap(UID)
    seen.wait("removed", 1)
    vpcd.card.tap(OTHER)
    seen.wait("removed", 2)
    assert seen.cards == [UID, OTHER]


def test_a_card_answering_an_error_status_is_logged_and_ignored(vpcd: Vpcd, start_reader, caplog) -> None:
    driver, seen = start_reader()
    assert driver.wait_ready(WAIT_S)
    with caplog.at_level(logging.WARNING, logger="kiosk.drivers.pcsc.device"):
        stats = vpcd.card.tap(UID, error_sw="6A81")
        assert stats.uid_reads == 1
        vpcd.card.tap(OTHER)
        seen.wait("card", 1)
    assert seen.cards == [OTHER]
    (line,) = [r.getMessage() for r in caplog.records if "6A 81" in r.getMessage()]
    assert vpcd.reader in line and "function not supported" in line and "ignored" in line


def test_a_slow_card_is_still_read_once(vpcd: Vpcd, start_reader) -> None:
    driver, seen = start_reader()
    assert driver.wait_ready(WAIT_S)
    stats = vpcd.card.tap(UID, hold_s=1.0, delay_s=0.3)
    seen.wait("removed", 1)
    assert stats.uid_reads == 1 and seen.cards == [UID]


def test_a_failing_callback_does_not_stop_the_reader(vpcd: Vpcd, start_reader) -> None:
    cards: queue.Queue[str] = queue.Queue()

    def on_card(uid: str) -> None:
        cards.put(uid)
        raise RuntimeError("the daemon's queue is broken")

    driver = CardReader(vpcd.reader, on_card=on_card)
    try:
        driver.start()
        assert driver.wait_ready(WAIT_S)
        vpcd.card.tap(UID)
        vpcd.card.tap(OTHER)
        assert [cards.get(timeout=WAIT_S), cards.get(timeout=WAIT_S)] == [UID, OTHER]
    finally:
        driver.close()


def test_no_reader_with_that_name_is_reported_down_with_the_readers_present(vpcd: Vpcd, start_reader) -> None:
    driver, seen = start_reader("ACS ACR122U")
    ((up, message),) = seen.wait("link", 1)
    assert not up and not driver.wait_ready(0)
    assert "'ACS ACR122U'" in message and vpcd.reader in message and "retrying every 0.2 s" in message


def test_reader_unplugged_and_plugged_back(vpcd: Vpcd, start_reader) -> None:
    """vpcd's reader lives as long as pcscd (see tests/pcsc_support.py): stopping pcscd takes it away."""
    if not vpcd.pcscd.owned:
        missing("the running pcscd was not started by these tests: it is not ours to stop")
    driver, seen = start_reader()
    assert driver.wait_ready(WAIT_S)
    vpcd.card.tap(UID)
    seen.wait("card", 1)
    vpcd.pcscd.stop()
    (_, (up, message)) = seen.wait("link", 2)
    assert not up and "pcscd" in message and "retrying every 0.2 s" in message
    vpcd.pcscd.start()
    links = seen.wait("link", 3)
    assert [up for up, _ in links] == [True, False, True]
    assert driver.wait_ready(WAIT_S)
    vpcd.card.tap(OTHER)
    seen.wait("card", 2)
    assert seen.cards == [UID, OTHER]


def test_a_card_left_on_the_reader_while_it_is_unplugged_and_plugged_back_is_one_tap(vpcd: Vpcd, start_reader) -> None:
    if not vpcd.pcscd.owned:
        missing("the running pcscd was not started by these tests: it is not ours to stop")
    # No debounce to hide a second tap: only knowing the card was there when the reader went may keep it to one.
    # (A grace as long as our deadlines: this machine may be slow today; the daemon's is HELD_GRACE_S.)
    driver, seen = start_reader(debounce_s=0.0, held_grace_s=WAIT_S)
    assert driver.wait_ready(WAIT_S)
    vpcd.card.present(UID)
    try:
        seen.wait("card", 1)
        vpcd.pcscd.stop()
        seen.wait("link", 2)
        vpcd.pcscd.start()
        assert [up for up, _ in seen.wait("link", 3)] == [True, False, True]
        # The card found the reader again, and pcscd has polled it since: the driver has had its look.
        _wait_polls(vpcd, reconnects=1, polls=5)
        assert seen.cards == [UID] and driver.taps == 1
    finally:
        vpcd.card.remove()
    seen.wait("removed", 2)                  # once as the link went, once for real
    vpcd.card.tap(UID)
    seen.wait("card", 2)
    assert seen.cards == [UID, UID]          # taken off and tapped again: a new tap


def test_another_card_on_the_reader_when_it_comes_back_is_a_new_tap(vpcd: Vpcd, start_reader) -> None:
    if not vpcd.pcscd.owned:
        missing("the running pcscd was not started by these tests: it is not ours to stop")
    driver, seen = start_reader(debounce_s=5.0)
    assert driver.wait_ready(WAIT_S)
    vpcd.card.present(UID)
    seen.wait("card", 1)
    vpcd.pcscd.stop()
    seen.wait("link", 2)
    vpcd.card.remove()                       # the patron takes the card while the reader is away...
    vpcd.pcscd.start()
    vpcd.card.present(OTHER)                 # ...and the next one puts theirs on it as it comes back
    try:
        seen.wait("card", 2)
        assert seen.cards == [UID, OTHER]
    finally:
        vpcd.card.remove()


def _wait_polls(vpcd: Vpcd, reconnects: int, polls: int) -> None:
    deadline = time.monotonic() + WAIT_S
    start: int | None = None
    while True:
        stats = vpcd.card.stats
        assert stats is not None, "the virtual card left the field"
        if stats.reconnects >= reconnects:
            start = stats.atr_requests if start is None else start
            if stats.atr_requests >= start + polls:
                return
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {WAIT_S:g} s for the card to be back in the field and polled {polls} "
                                 f"times; stats {stats}")
        time.sleep(0.05)


def test_pcscd_missing_at_start_is_reported_down_then_up(vpcd: Vpcd, start_reader) -> None:
    if not vpcd.pcscd.owned:
        missing("the running pcscd was not started by these tests: it is not ours to stop")
    vpcd.pcscd.stop()
    driver, seen = start_reader()
    ((up, message),) = seen.wait("link", 1)
    assert not up and "the PC/SC service (pcscd) does not answer" in message
    vpcd.pcscd.start()
    assert driver.wait_ready(WAIT_S)
    vpcd.card.tap(UID)
    seen.wait("card", 1)
    assert [up for up, _ in seen.of("link")] == [False, True] and seen.cards == [UID]


def test_close_twice_is_harmless(vpcd: Vpcd, start_reader) -> None:
    driver, _ = start_reader()
    driver.close()
    driver.close()
    assert not driver.wait_ready(0)
