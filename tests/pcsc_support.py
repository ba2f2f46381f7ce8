"""The real pcscd with the vpcd virtual reader, for tests and benchmarks: found running, or started and stopped.

Fixtures (registered in tests/conftest.py): ``pcscd_service`` (session) and ``vpcd`` (per test: the
vpcd lock held, pcscd answering, a ``VpcdCard`` to tap with). A missing pcscd or vpcd driver fails the
test (scripts/bootstrap.sh installs both); it is never skipped.

``Pcscd.ensure()`` uses a pcscd that answers and lists the vpcd reader; otherwise it starts
``pcscd --foreground --auto-exit`` as a child (auto-exit: an orphan left by a killed test run quits after
60 s without clients; ``ensure`` starts a new one when that happened between tests). The vpcd port is one
global resource, shared with any other test run on this machine: ``vpcd_lock()`` serialises its users
across processes with an flock.

Unplugging a vpcd reader: vpcd's reader is declared in /etc/reader.conf.d and lives exactly as long as
pcscd (pcscd never drops a reader.conf reader while it runs, and vpcd has no presence of its own apart
from the card's TCP connection). So the one truthful way to make it vanish from PC/SC and come back is
to stop pcscd and start it again (``Pcscd.restart``): the driver sees what any PC/SC client sees when
its reader goes away under it — its context breaks, the reader list is gone — and then returns.
That is possible only with a pcscd this process started.

The slot: vpcd gives each reader.conf entry two slots, "Virtual PCD 00 00" on CHANNELID (35963) and
"Virtual PCD 00 01" on CHANNELID + 1. Tests and benchmarks use the second, so that a bookcase daemon
running on this machine with config/demo.toml (slot 0) never reads their cards, nor they its.
"""

from __future__ import annotations

import contextlib
import fcntl
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from smartcard import scard

from kiosk.config import Config
from kiosk.core.policy import card_hint, patron_key
from kiosk.store.ledger import Store
from simulators.pcscd import START_TIMEOUT_S, Pcscd, PcscUnavailable, list_readers
from simulators.vpcd import VpcdCard

__all__ = ["Pcscd", "PcscUnavailable", "list_readers"]      # the tests' and benchmarks' pcscd, from simulators
LOCK_PATH = Path(tempfile.gettempdir()) / "citybook-vpcd.lock"
LOCK_TIMEOUT_S = 600.0
TEST_SLOT = 1          # vpcd slot i is the reader "<FRIENDLYNAME> 00 0i", listening on CHANNELID + i

# Child processes a session-scoped fixture keeps across tests on purpose: the leak guard in
# tests/conftest.py does not count these pids as left behind.
SESSION_CHILDREN: set[int] = set()


def wait_reader_empty(reader: str, timeout_s: float = START_TIMEOUT_S) -> None:
    """Until pcscd reports no card on ``reader`` (it notices a card gone at its next poll, within 0.4 s)."""
    hresult, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if hresult != scard.SCARD_S_SUCCESS:
        raise PcscUnavailable(f"pcscd stopped answering ({scard.SCardGetErrorMessage(hresult)})")
    try:
        deadline = time.monotonic() + timeout_s
        state = scard.SCARD_STATE_UNAWARE
        while True:
            hresult, states = scard.SCardGetStatusChange(context, 100, [(reader, state)])
            if hresult == scard.SCARD_S_SUCCESS:
                state = states[0][1] & ~scard.SCARD_STATE_CHANGED
                if state & scard.SCARD_STATE_EMPTY:
                    return
            elif hresult != scard.SCARD_E_TIMEOUT:
                raise PcscUnavailable(f"pcscd: {scard.SCardGetErrorMessage(hresult)}")
            if time.monotonic() > deadline:
                raise PcscUnavailable(f"a card stayed on {reader} for {timeout_s:g} s")
    finally:
        scard.SCardReleaseContext(context)


@contextlib.contextmanager
def vpcd_lock(timeout_s: float = LOCK_TIMEOUT_S) -> Iterator[None]:
    """Exclusive use of the vpcd port (and of our pcscd's lifetime) across processes on this machine."""
    with open(LOCK_PATH, "a+") as handle:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise PcscUnavailable(f"another test run held the vpcd port ({LOCK_PATH}) for {timeout_s:g} s")
                time.sleep(0.1)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def add_card_patrons(cfg: Config, cards: dict[str, str]) -> None:
    """Active reader cards known by their UID (uid -> patron class), keyed as the daemon keys a tapped card:
    HMAC(secret, UID in upper-case hex)."""
    store = Store(cfg.db_path, cfg.bookcase.id)
    try:
        store.upsert_patrons({"patron_key": patron_key(cfg.secret, uid), "patron_class": cls, "status": "active",
                              "card_hint": card_hint(uid)} for uid, cls in cards.items())
    finally:
        store.close()


def missing(message: str) -> None:
    """A real part is missing or not ours to use: the test fails (never skips), saying what to do."""
    pytest.fail(f"{message} (scripts/bootstrap.sh installs pcscd and vsmartcard-vpcd; a pcscd run by systemd "
                "can be stopped for the tests with `systemctl stop pcscd.socket pcscd`)")


@dataclass
class Vpcd:
    """What a test gets from the ``vpcd`` fixture."""

    pcscd: Pcscd
    reader: str          # e.g. "Virtual PCD 00 00"
    card: VpcdCard       # the virtual card, on the vpcd port


@pytest.fixture(scope="session")
def pcscd_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pcscd]:
    """The session's pcscd handle; stops the pcscd it started at the end of the session."""
    try:
        service = Pcscd(tmp_path_factory.mktemp("pcscd"), slot=TEST_SLOT, children=SESSION_CHILDREN)
    except PcscUnavailable as exc:
        missing(str(exc))
    yield service
    with vpcd_lock():
        service.stop()


@pytest.fixture
def vpcd(pcscd_service: Pcscd) -> Iterator[Vpcd]:
    """The vpcd port for this test alone, pcscd answering with the vpcd reader, and a virtual card."""
    with vpcd_lock():
        try:
            reader = pcscd_service.ensure()
            wait_reader_empty(reader)
        except PcscUnavailable as exc:
            missing(str(exc))
        card = VpcdCard(port=pcscd_service.port)
        try:
            yield Vpcd(pcscd_service, reader, card)
        finally:
            card.close()
            if list_readers() is not None:
                wait_reader_empty(reader)     # the next test starts with an empty field
