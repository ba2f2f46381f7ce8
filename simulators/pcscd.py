"""pcscd with the vpcd virtual reader driver: found running, or started (and later stopped) as a child.

Shared by the demo (`make demo` needs a pcscd for the contactless card path) and the tests. vpcd's reader is
declared in /etc/reader.conf.d/vpcd with two slots: "Virtual PCD 00 00" on CHANNELID (35963) and "Virtual PCD
00 01" on CHANNELID + 1. The demo's bookcase reads slot 0, the tests and benchmarks slot 1. ``auto_exit`` (the
tests'): a pcscd left behind by a killed run quits 60 s after its last client left, or after its start when none
came. The demo's pcscd goes without: its daemon may connect only after the content is drawn (ffmpeg, well over a
minute on a slow machine), and the demo stops it itself, however it ends (simulators/children.py).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from smartcard import scard

VPCD_CONF = Path("/etc/reader.conf.d/vpcd")
VPCD_DRIVER_DIR = Path("/usr/lib/pcsc/drivers/serial")
START_TIMEOUT_S = 15.0


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

    ``port`` and ``reader`` are those of vpcd's slot ``slot`` (``reader`` is known once ``ensure`` ran); the pid of
    a pcscd started here is added to ``children`` while it runs (the tests' leak guard reads it).
    """

    def __init__(self, log_dir: Path | None = None, slot: int = 0, children: set[int] | None = None,
                 preexec_fn=None, auto_exit: bool = True) -> None:
        self.binary = find_pcscd()
        self.friendly_name, channel = vpcd_config()
        self.slot = slot
        self.port = channel + slot
        self.log_dir = Path(log_dir or tempfile.gettempdir())
        self.children = children if children is not None else set()
        self.preexec_fn = preexec_fn
        self.auto_exit = auto_exit
        self.proc: subprocess.Popen | None = None
        self.reader = ""

    @property
    def owned(self) -> bool:
        """Whether the pcscd in use was started (and will be stopped) by this process."""
        return self.proc is not None and self.proc.poll() is None

    def _vpcd_reader(self) -> str | None:
        readers = list_readers()
        return next((r for r in readers or () if r.startswith(self.friendly_name) and r.endswith(f" {self.slot:02X}")),
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
        """Start our own ``pcscd --foreground`` (``--auto-exit`` with ``auto_exit``) and wait until it lists the vpcd
        reader."""
        self.stop()
        log = open(self.log_dir / "pcscd.log", "ab")
        try:
            self.proc = subprocess.Popen([self.binary, "--foreground", *(["--auto-exit"] if self.auto_exit else []),
                                          "--error"],
                                         stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         preexec_fn=self.preexec_fn)
        finally:
            log.close()
        self.children.add(self.proc.pid)
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
        self.children.discard(proc.pid)

    def restart(self, down_s: float = 0.0) -> None:
        """Unplug and replug the vpcd reader: stop our pcscd, wait ``down_s``, start it again."""
        if not self.owned:
            raise PcscUnavailable("the running pcscd was not started here: it is not ours to restart")
        self.stop()
        time.sleep(down_s)
        self.start()
