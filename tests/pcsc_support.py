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
import os
import re
import shutil
import signal
import subprocess
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
from simulators.vpcd import VpcdCard

VPCD_CONF = Path("/etc/reader.conf.d/vpcd")
VPCD_DRIVER_DIR = Path("/usr/lib/pcsc/drivers/serial")
LOCK_PATH = Path(tempfile.gettempdir()) / "citybook-vpcd.lock"
START_TIMEOUT_S = 15.0
LOCK_TIMEOUT_S = 600.0
TEST_SLOT = 1          # vpcd slot i is the reader "<FRIENDLYNAME> 00 0i", listening on CHANNELID + i

# Child processes a session-scoped fixture keeps across tests on purpose: the leak guard in
# tests/conftest.py does not count these pids as left behind.
SESSION_CHILDREN: set[int] = set()


class PcscUnavailable(RuntimeError):
    """pcscd or the vpcd driver is not installed, or pcscd would not come up with the vpcd reader."""


def find_pcscd() -> str:
    path = shutil.which("pcscd") or next((p for p in ("/usr/sbin/pcscd", "/sbin/pcscd") if os.path.exists(p)), None)
    if path is None:
        raise PcscUnavailable("pcscd is not installed (apt-get install pcscd)")
    return path


def vpcd_config() -> tuple[str, int]:
    """(friendly name, TCP port) of the vpcd reader slot 0, from its reader.conf.d file."""
    if not VPCD_CONF.exists() or not list(VPCD_DRIVER_DIR.glob("libifdvpcd.so*")):
        raise PcscUnavailable(f"the vpcd reader driver is not installed ({VPCD_CONF} or "
                              f"{VPCD_DRIVER_DIR}/libifdvpcd.so missing; apt-get install vsmartcard-vpcd)")
    text = VPCD_CONF.read_text()
    name = re.search(r"^\s*FRIENDLYNAME\s+\"?([^\"\n]+)\"?", text, re.M)
    channel = re.search(r"^\s*CHANNELID\s+(\S+)", text, re.M)
    if not name or not channel:
        raise PcscUnavailable(f"{VPCD_CONF} has no FRIENDLYNAME or CHANNELID line")
    return name.group(1).strip(), int(channel.group(1), 0)


def list_readers() -> list[str] | None:
    """The readers pcscd lists, or None when no pcscd answers."""
    hresult, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if hresult != scard.SCARD_S_SUCCESS:
        return None
    try:
        hresult, readers = scard.SCardListReaders(context, [])
        if hresult == scard.SCARD_E_NO_READERS_AVAILABLE:
            return []
        return list(readers) if hresult == scard.SCARD_S_SUCCESS else None
    finally:
        scard.SCardReleaseContext(context)


class Pcscd:
    """One pcscd with the vpcd reader: the running one, or a child of this process (``owned``).

    ``port`` and ``reader`` are those of vpcd's slot TEST_SLOT (``reader`` is known once ``ensure`` ran).
    """

    def __init__(self, log_dir: Path | None = None) -> None:
        self.binary = find_pcscd()
        self.friendly_name, channel = vpcd_config()
        self.port = channel + TEST_SLOT
        self.log_dir = Path(log_dir or tempfile.gettempdir())
        self.proc: subprocess.Popen | None = None
        self.reader = ""

    @property
    def owned(self) -> bool:
        """Whether the pcscd in use was started (and will be stopped) by this process."""
        return self.proc is not None and self.proc.poll() is None

    def _vpcd_reader(self) -> str | None:
        readers = list_readers()
        return next((r for r in readers or () if r.startswith(self.friendly_name) and r.endswith(f" {TEST_SLOT:02X}")),
                    None)

    def ensure(self) -> str:
        """Make sure a pcscd with the vpcd reader answers; returns the reader's name (``Virtual PCD 00 00``)."""
        reader = self._vpcd_reader()
        if reader is None:
            if list_readers() is not None and not self.owned:
                raise PcscUnavailable(f"the running pcscd does not list the vpcd reader ({self.friendly_name}); "
                                      f"readers: {list_readers()}")
            self.start()
            reader = self._vpcd_reader()
        assert reader is not None
        self.reader = reader
        return reader

    def start(self) -> None:
        """Start our own ``pcscd --foreground --auto-exit`` and wait until it lists the vpcd reader."""
        self.stop()
        log = open(self.log_dir / "pcscd.log", "ab")
        try:
            self.proc = subprocess.Popen([self.binary, "--foreground", "--auto-exit", "--error"],
                                         stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        finally:
            log.close()
        SESSION_CHILDREN.add(self.proc.pid)
        deadline = time.monotonic() + START_TIMEOUT_S
        while self._vpcd_reader() is None:
            if self.proc.poll() is not None:
                raise PcscUnavailable(f"pcscd exited with status {self.proc.returncode} at start "
                                      f"(another pcscd running? see {self.log_dir / 'pcscd.log'})")
            if time.monotonic() > deadline:
                self.stop()
                raise PcscUnavailable(f"pcscd did not list the vpcd reader within {START_TIMEOUT_S:g} s")
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop the pcscd we started (never one we found running)."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        SESSION_CHILDREN.discard(proc.pid)

    def restart(self, down_s: float = 0.0) -> None:
        """Unplug and replug the vpcd reader: stop our pcscd, wait ``down_s``, start it again."""
        if not self.owned:
            raise PcscUnavailable("the running pcscd was not started by these tests: it is not ours to restart")
        self.stop()
        time.sleep(down_s)
        self.start()


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
        service = Pcscd(tmp_path_factory.mktemp("pcscd"))
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
