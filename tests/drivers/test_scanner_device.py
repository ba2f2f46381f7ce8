"""Scanner against a test-local 2D scanner on a pty: scans, bad lines, over-long lines, replug."""

from __future__ import annotations

import queue

import pytest

from kiosk.drivers.scanner import codec
from kiosk.drivers.scanner.codec import MAX_LINE, encode_line
from kiosk.drivers.scanner.device import Scanner

from .fakes import FakeDevice

WAIT_S = 5.0


class Seen:
    def __init__(self) -> None:
        self.scans: queue.Queue = queue.Queue()
        self.bad: queue.Queue = queue.Queue()
        self.links: queue.Queue = queue.Queue()


@pytest.fixture
def device(tmp_path):
    with FakeDevice(tmp_path / "scanner", codec.decode) as fake:
        yield fake


@pytest.fixture
def seen():
    return Seen()


@pytest.fixture
def scanner(device, seen):
    s = Scanner(device.url, on_scan=seen.scans.put, on_bad_line=seen.bad.put,
                on_link=lambda up, message: seen.links.put((up, message)), reconnect_interval_s=0.02)
    s.start()
    assert s.transport.wait_connected(WAIT_S)
    yield s
    s.close()


def test_scans_arrive_in_order(scanner, device, seen):
    device.write(encode_line("3101120000018") + "CB1:读者:42\r".encode() + b"ABC\n")
    assert [seen.scans.get(timeout=WAIT_S) for _ in range(3)] == ["3101120000018", "CB1:读者:42", "ABC"]


def test_a_line_split_across_reads(scanner, device, seen):
    for byte in encode_line("TOKEN-123"):
        device.write(bytes([byte]))
    device.write(encode_line("NEXT"))
    assert [seen.scans.get(timeout=WAIT_S) for _ in range(2)] == ["TOKEN-123", "NEXT"]


def test_bad_lines_are_reported_not_scanned(scanner, device, seen):
    device.write(b"\xff\xfeAB\r\n" + b"A\x1bB\r\n" + encode_line("GOOD"))
    assert seen.bad.get(timeout=WAIT_S) == "line is not valid UTF-8 text"
    assert seen.bad.get(timeout=WAIT_S) == "line contains the control character 0x1b"
    assert seen.scans.get(timeout=WAIT_S) == "GOOD"


def test_over_long_line_and_its_tail_are_dropped(scanner, device, seen):
    device.write(b"A" * (MAX_LINE + 40))
    assert "no end of line" in seen.bad.get(timeout=WAIT_S)
    device.write(b"B" * 30)
    device.write(b"\r\n" + encode_line("AFTER"))
    assert seen.scans.get(timeout=WAIT_S) == "AFTER"
    assert seen.scans.empty() and seen.bad.empty()


def test_over_long_terminated_line(scanner, device, seen):
    device.write(b"C" * 300 + b"\r\n" + encode_line("OK"))
    assert seen.bad.get(timeout=WAIT_S) == f"line of 300 bytes is longer than {MAX_LINE}"
    assert seen.scans.get(timeout=WAIT_S) == "OK"


def test_unplug_and_replug(scanner, device, seen):
    assert seen.links.get(timeout=WAIT_S)[0] is True
    device.unplug()
    up, message = seen.links.get(timeout=WAIT_S)
    assert up is False and message.startswith(f"scanner on {device.url}: connection lost")
    device.plug()
    assert seen.links.get(timeout=WAIT_S) == (True, f"scanner on {device.url}: connected")
    device.write(encode_line("AGAIN"))
    assert seen.scans.get(timeout=WAIT_S) == "AGAIN"
