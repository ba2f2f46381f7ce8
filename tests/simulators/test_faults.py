"""Link faults: garble, silence, slow, unplug/replug, heal — as a driver would meet them."""

from __future__ import annotations

import os

import pytest
import serial

from kiosk.drivers.lockboard import codec as lock_codec
from kiosk.drivers.lockboard.codec import ReadStateRequest, StateResponse, UnlockRequest
from kiosk.drivers.rfid import codec as rfid_codec
from kiosk.drivers.rfid.codec import STATUS_OK, InventoryRequest, InventoryResponse
from kiosk.drivers.scanner import codec as scan_codec
from simulators.errors import SimError
from tests.simulators.helpers import read_frame, read_quiet

REQUESTS = 12


def decode_all(decode, data: bytes) -> list:
    frames, buf = [], bytes(data)
    while True:
        consumed, frame = decode(buf)
        buf = buf[consumed:]
        if frame is None:
            return frames
        frames.append(frame)


def exchange(port: serial.Serial, requests: list[bytes]) -> bytes:
    received = bytearray()
    for request in requests:
        port.write(request)
        received += read_quiet(port, 0.08)
    received += read_quiet(port, 0.5)  # a late last reply on a loaded machine
    return bytes(received)


def test_garbled_lockboard_replies_are_skipped_by_the_codec(make_sim, open_port) -> None:
    sim = make_sim()
    port = open_port(sim.paths["lockboard"])
    sim.garble("lockboard")
    raw = exchange(port, [ReadStateRequest(0).to_bytes()] * REQUESTS)
    stats = sim.status()["stats"]["lockboard"]
    frames = decode_all(lock_codec.decode, raw)
    assert stats["garbage_bytes"] > 0 and stats["corrupted_frames"] > 0
    assert len(raw) == REQUESTS * lock_codec.STATE_LEN + stats["garbage_bytes"]
    assert frames == [StateResponse(0, 0, 0)] * (REQUESTS - stats["corrupted_frames"])
    sim.heal("lockboard")
    assert exchange(port, [ReadStateRequest(0).to_bytes()]) == StateResponse(0, 0, 0).to_bytes()


def test_garbled_rfid_replies_are_skipped_by_the_codec(make_sim, open_port) -> None:
    sim = make_sim(air_ms=0)
    port = open_port(sim.paths["rfid"], 38400, parity=serial.PARITY_EVEN)
    sim.garble("rfid")
    raw = exchange(port, [InventoryRequest(1).to_bytes()] * REQUESTS)
    stats = sim.status()["stats"]["rfid"]
    frames = [InventoryResponse.from_frame(f) for f in decode_all(rfid_codec.decode, raw)]
    assert stats["garbage_bytes"] > 0 and stats["corrupted_frames"] > 0
    assert len(frames) == REQUESTS - stats["corrupted_frames"]
    assert all(f.status == STATUS_OK and len(f.tags) == 5 for f in frames)


def test_silence_reads_requests_and_never_answers(make_sim, open_port) -> None:
    sim = make_sim()
    port = open_port(sim.paths["lockboard"])
    sim.silence("lockboard")
    port.write(UnlockRequest(0, 1).to_bytes())
    assert read_quiet(port) == b""
    assert sim.status()["stats"]["lockboard"]["ignored_bytes"] == 5
    assert sim.world.door_state(1)["locked"], "a silenced board does not act on requests either"
    assert sim.status()["devices"]["lockboard"]["faults"] == ["silence"]
    sim.heal("lockboard")
    port.write(ReadStateRequest(0).to_bytes())
    assert read_frame(port, lock_codec.decode) == StateResponse(0, 0, 0)


def test_slow_writes_byte_by_byte_and_counts_the_gaps(make_sim, open_port) -> None:
    sim = make_sim()
    port = open_port(sim.paths["lockboard"])
    sim.slow("lockboard")
    port.write(ReadStateRequest(0).to_bytes())
    assert read_frame(port, lock_codec.decode) == StateResponse(0, 0, 0)
    stats = sim.status()["stats"]["lockboard"]
    assert stats["fault_delay_s"] == pytest.approx(lock_codec.STATE_LEN * 0.020, rel=1e-3)
    assert stats["byte_time_s"] == pytest.approx(lock_codec.STATE_LEN * 10 / 19200, rel=1e-3)


def test_unplug_removes_the_link_and_replug_restores_it(make_sim, open_port) -> None:
    sim = make_sim(air_ms=0)
    link = sim.paths["rfid"]
    port = open_port(link, 38400, parity=serial.PARITY_EVEN)
    old_device = os.readlink(link)
    sim.unplug("rfid")
    assert not link.exists() and not link.is_symlink()
    assert not sim.status()["devices"]["rfid"]["plugged"]
    with pytest.raises(serial.SerialException):
        port.read(1)
    port.close()
    sim.unplug("rfid")  # unplugging twice is harmless
    sim.replug("rfid")
    assert link.is_symlink() and os.readlink(link) == sim.status()["devices"]["rfid"]["pty"]
    port = open_port(link, 38400, parity=serial.PARITY_EVEN)
    port.write(InventoryRequest(1).to_bytes())
    assert InventoryResponse.from_frame(read_frame(port, rfid_codec.decode)).status == STATUS_OK
    assert old_device  # the old pty is gone; the new one may or may not reuse its number


def test_faults_on_unknown_devices(make_sim) -> None:
    sim = make_sim()
    with pytest.raises(SimError, match="no device 'printer'"):
        sim.garble("printer")
    with pytest.raises(SimError, match="unknown fault"):
        sim.fault("rfid", "melt")


def test_scanner_sends_one_line_per_scan(make_sim, open_port) -> None:
    sim = make_sim()
    port = open_port(sim.paths["scanner"], 9600)
    assert sim.scan("3101120000018") == {"card": "3101120000018", "sent": True}
    sim.scan("https://mp.weixin.qq.com/ecard?t=abc.123")
    lines = decode_all(scan_codec.decode, read_quiet(port))
    assert [line.text for line in lines] == ["3101120000018", "https://mp.weixin.qq.com/ecard?t=abc.123"]
    assert all(line.error is None for line in lines)
    stats = sim.status()["stats"]["scanner"]
    assert stats["frames_out"] == 2
    assert stats["byte_time_s"] == pytest.approx(stats["bytes_out"] * 10 / 9600, rel=1e-3)


def test_scanner_faults(make_sim, open_port) -> None:
    sim = make_sim()
    port = open_port(sim.paths["scanner"], 9600)
    with pytest.raises(SimError, match="one non-empty line"):
        sim.scan("a\r\nb")
    sim.silence("scanner")
    assert sim.scan("3101120000018")["sent"] is False
    sim.heal("scanner")
    sim.garble("scanner")
    sim.scan("3101120000018")
    lines = decode_all(scan_codec.decode, read_quiet(port))
    assert lines and all(line.error is not None for line in lines), "noise never passes for a clean scan"
    port.close()
    sim.unplug("scanner")
    with pytest.raises(SimError, match="unplugged"):
        sim.scan("3101120000018")
