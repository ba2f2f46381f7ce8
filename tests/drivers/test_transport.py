"""SerialTransport over loop:// and pseudo-terminals: framing, garbage, trace, unplug and replug."""

from __future__ import annotations

import os
import queue
import time

import pytest

from kiosk.drivers.errors import DeviceUnavailable
from kiosk.drivers.lockboard import codec
from kiosk.drivers.lockboard.codec import ReadStateRequest, StateResponse, UnlockRequest
from kiosk.drivers.transport import SerialTransport

from .fakes import FakeDevice

WAIT_S = 5.0


class Recorder:
    def __init__(self) -> None:
        self.frames: queue.Queue = queue.Queue()
        self.links: queue.Queue = queue.Queue()
        self.traces: list[tuple[str, bytes]] = []

    def transport(self, url: str, **kwargs) -> SerialTransport:
        kwargs.setdefault("reconnect_interval_s", 0.02)
        return SerialTransport(
            url,
            baudrate=19200,
            name=f"lock board on {url}",
            decode=codec.decode,
            on_frame=self.frames.put,
            on_link=lambda up, message: self.links.put((up, message)),
            trace=lambda direction, data: self.traces.append((direction, data)),
            **kwargs,
        )

    def next_link(self) -> tuple[bool, str]:
        return self.links.get(timeout=WAIT_S)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


def test_loopback_frames_come_back_decoded(recorder):
    transport = recorder.transport("loop://")
    transport.start()
    try:
        assert recorder.next_link() == (True, "lock board on loop://: connected")
        transport.write(UnlockRequest(0, 1).to_bytes() + ReadStateRequest(2).to_bytes())
        assert recorder.frames.get(timeout=WAIT_S) == UnlockRequest(0, 1)
        assert recorder.frames.get(timeout=WAIT_S) == ReadStateRequest(2)
    finally:
        transport.close()
    assert ("tx", UnlockRequest(0, 1).to_bytes() + ReadStateRequest(2).to_bytes()) in recorder.traces
    assert b"".join(data for direction, data in recorder.traces if direction == "rx") == (
        UnlockRequest(0, 1).to_bytes() + ReadStateRequest(2).to_bytes()
    )


def test_garbage_is_counted_and_skipped(recorder, caplog):
    transport = recorder.transport("loop://")
    transport.start()
    try:
        caplog.set_level("DEBUG", logger="kiosk.drivers.transport")
        garbage_1, garbage_2 = b"\x00\xff\x35", b"\x02\x00\x99"
        transport.write(garbage_1 + UnlockRequest(1, 2).to_bytes() + garbage_2 + ReadStateRequest(1).to_bytes())
        assert recorder.frames.get(timeout=WAIT_S) == UnlockRequest(1, 2)
        assert recorder.frames.get(timeout=WAIT_S) == ReadStateRequest(1)
    finally:
        transport.close()
    assert transport.garbage_bytes == 6
    assert "garbage bytes: 02 00 99" in caplog.text


def test_discard_input_drops_a_partial_frame(recorder):
    transport = recorder.transport("loop://")
    transport.start()
    try:
        transport.write(b"\x02\x00")
        transport.write(b"\x31")
        # The partial frame is in the buffer once the loopback has delivered it; traces show when.
        deadline = time.monotonic() + WAIT_S
        while sum(len(d) for direction, d in recorder.traces if direction == "rx") < 3 and time.monotonic() < deadline:
            time.sleep(0.005)
        transport.discard_input()
        transport.write(ReadStateRequest(0).to_bytes())
        assert recorder.frames.get(timeout=WAIT_S) == ReadStateRequest(0)
    finally:
        transport.close()
    assert transport.garbage_bytes == 3


def test_missing_port_reports_link_down_once_and_write_raises(recorder, tmp_path):
    url = str(tmp_path / "ttyUSB9")
    transport = recorder.transport(url)
    transport.start()
    try:
        up, message = recorder.next_link()
        assert up is False
        assert message.startswith(f"lock board on {url}: cannot open the port")
        assert not transport.connected
        with pytest.raises(DeviceUnavailable, match=f"lock board on {url}: port is not open"):
            transport.write(b"\x00")
        assert recorder.links.empty()
    finally:
        transport.close()


def test_frames_split_one_byte_at_a_time_over_a_pty(recorder, tmp_path):
    with FakeDevice(tmp_path / "lockboard", codec.decode) as device:
        transport = recorder.transport(device.url)
        transport.start()
        try:
            assert transport.wait_connected(WAIT_S)
            for byte in StateResponse(0, 0x1234, 0x8001).to_bytes():
                device.write(bytes([byte]))
            assert recorder.frames.get(timeout=WAIT_S) == StateResponse(0, 0x1234, 0x8001)
            transport.write(UnlockRequest(0, 5).to_bytes())
            assert device.next_request() == UnlockRequest(0, 5)
        finally:
            transport.close()


def test_unplug_and_replug_at_the_same_path(recorder, tmp_path):
    device = FakeDevice(tmp_path / "lockboard", codec.decode)
    device.plug()
    transport = recorder.transport(device.url)
    transport.start()
    try:
        assert recorder.next_link()[0] is True
        device.unplug()  # pty master closed, symlink left pointing at a vanished /dev/pts/N
        up, message = recorder.next_link()
        assert up is False
        assert message.startswith(f"lock board on {device.url}: connection lost")
        assert not os.path.exists(device.url)
        with pytest.raises(DeviceUnavailable):
            transport.write(UnlockRequest(0, 1).to_bytes())
        device.plug()
        assert recorder.next_link() == (True, f"lock board on {device.url}: connected")
        transport.write(UnlockRequest(0, 1).to_bytes())
        assert device.next_request() == UnlockRequest(0, 1)
        device.write(StateResponse(0, 1, 0).to_bytes())
        assert recorder.frames.get(timeout=WAIT_S) == StateResponse(0, 1, 0)
    finally:
        transport.close()
        device.unplug()


def test_a_failing_frame_handler_does_not_stop_the_reader(tmp_path):
    frames = queue.Queue()

    def handler(frame):
        frames.put(frame)
        raise RuntimeError("handler bug")

    transport = SerialTransport(
        "loop://", baudrate=19200, name="lock board on loop://", decode=codec.decode, on_frame=handler
    )
    transport.start()
    try:
        transport.write(UnlockRequest(0, 1).to_bytes())
        assert frames.get(timeout=WAIT_S) == UnlockRequest(0, 1)
        transport.write(UnlockRequest(0, 2).to_bytes())
        assert frames.get(timeout=WAIT_S) == UnlockRequest(0, 2)
    finally:
        transport.close()


def test_close_is_idempotent_and_start_twice_is_refused():
    transport = SerialTransport("loop://", baudrate=19200, name="x", decode=codec.decode, on_frame=lambda f: None)
    transport.start()
    with pytest.raises(RuntimeError):
        transport.start()
    transport.close()
    transport.close()
    assert not transport.connected


def test_an_unexpected_error_while_opening_is_retried(recorder, monkeypatch):
    import termios

    import serial

    from kiosk.drivers import transport as transport_module

    real = serial.serial_for_url
    calls = []

    def flaky_open(url, **kwargs):
        calls.append(url)
        if len(calls) == 1:
            raise termios.error(22, "Invalid argument")  # seen from tcsetattr on a pty being replugged
        return real(url, **kwargs)

    monkeypatch.setattr(transport_module.serial, "serial_for_url", flaky_open)
    transport = recorder.transport("loop://")
    transport.start()
    try:
        up, message = recorder.next_link()
        assert up is False and "Invalid argument" in message
        assert recorder.next_link() == (True, "lock board on loop://: connected")
    finally:
        transport.close()
