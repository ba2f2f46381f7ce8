"""PtyLink on its own: the symlink, the reader thread, pacing counters and a host that does not read."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from simulators.pty import BITS_8E1, PtyLink
from tests.simulators.helpers import read_quiet


def test_link_replaces_a_stale_symlink_and_delivers_bytes(tmp_path: Path, open_port) -> None:
    path = tmp_path / "dev" / "rfid"
    path.parent.mkdir()
    path.symlink_to("/dev/pts/does-not-exist")
    received, got = bytearray(), threading.Event()

    def on_bytes(data: bytes) -> None:
        received.extend(data)
        got.set()

    link = PtyLink(path, 38400, BITS_8E1, on_bytes=on_bytes)
    link.start()
    try:
        assert os.readlink(path) == link.device and link.plugged
        port = open_port(path, 38400)
        port.write(b"\x07\x01\xb0")
        assert got.wait(5)
        assert link.write(b"hello")
        assert read_quiet(port) == b"hello"
        assert link.stats.bytes_in == len(received) and link.stats.bytes_out == 5
        assert link.stats.byte_time_s == pytest.approx(5 * 11 / 38400)
    finally:
        link.stop()
    assert not path.exists()
    link.stop()


def test_nobody_reading_drops_bytes_instead_of_blocking(tmp_path: Path) -> None:
    link = PtyLink(tmp_path / "lockboard", 10**9)
    link.start()
    try:
        for _ in range(64):
            link.write(bytes(4096))
        assert link.stats.dropped_bytes > 0
        assert link.stats.bytes_out + link.stats.dropped_bytes == 64 * 4096
    finally:
        link.stop()


def test_stop_leaves_a_link_that_is_no_longer_ours(tmp_path: Path) -> None:
    path = tmp_path / "scanner"
    link = PtyLink(path, 9600)
    link.start()
    path.unlink()
    path.symlink_to("/dev/null")
    link.stop()
    assert os.readlink(path) == "/dev/null"


def test_writes_while_unplugged_are_dropped(tmp_path: Path) -> None:
    link = PtyLink(tmp_path / "scanner", 9600)
    assert not link.write(b"abc")
    assert link.stats.dropped_bytes == 3 and link.device is None
