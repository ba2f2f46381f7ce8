"""RfidBus against test-local FEIG readers on a pty: inventory paging, tag reads, errors, echo, replug."""

from __future__ import annotations

import queue
from dataclasses import dataclass, field

import pytest

from kiosk.drivers.errors import DeviceTimeout, DeviceUnavailable, ProtocolError
from kiosk.drivers.rfid import codec
from kiosk.drivers.rfid.codec import (
    INVENTORY_MODE_MORE,
    INVENTORY_MODE_NEW,
    MAX_TAGS_PER_FRAME,
    STATUS_MORE_DATA,
    STATUS_NO_TRANSPONDER,
    STATUS_OK,
    STATUS_RF_ERROR,
    InventoryRequest,
    InventoryResponse,
    ReadBlocksRequest,
    ReadBlocksResponse,
    TagEntry,
    parse_request,
)
from kiosk.drivers.rfid.device import RfidBus, RfidError
from kiosk.drivers.rfid.tag import LibraryTag, decode_tag

from .fakes import FakeDevice

WAIT_S = 5.0


def uid(n: int) -> bytes:
    return bytes.fromhex("E0040100") + n.to_bytes(4, "big")


@dataclass
class Readers:
    """Tags (UID -> 32 bytes) in each reader's field; the fake pages inventories like a FEIG reader."""

    fields: dict[int, dict[bytes, bytes]] = field(default_factory=dict)
    rf_error: set[int] = field(default_factory=set)
    echo: bool = False
    noise: bytes = b""
    short_read: bool = False
    pending: dict[int, list[TagEntry]] = field(default_factory=dict)

    def respond(self, frame):
        request = parse_request(frame)
        address = request.address
        if address not in self.fields:
            return None
        answer = self._answer(request)
        return (frame.to_bytes() if self.echo else b"") + self.noise + answer.to_bytes()

    def _answer(self, request):
        address = request.address
        if address in self.rf_error:
            return InventoryResponse(address, STATUS_RF_ERROR)
        tags = self.fields[address]
        if isinstance(request, InventoryRequest):
            if request.mode == INVENTORY_MODE_NEW:
                self.pending[address] = [TagEntry(u) for u in tags]
            rest = self.pending.get(address, [])
            if not rest:
                return InventoryResponse(address, STATUS_NO_TRANSPONDER)
            page, self.pending[address] = rest[:MAX_TAGS_PER_FRAME], rest[MAX_TAGS_PER_FRAME:]
            status = STATUS_MORE_DATA if self.pending[address] else STATUS_OK
            return InventoryResponse(address, status, tuple(page))
        assert isinstance(request, ReadBlocksRequest)
        data = tags.get(request.uid)
        if data is None:
            return ReadBlocksResponse(address, STATUS_NO_TRANSPONDER)
        count = request.count - 1 if self.short_read else request.count
        blocks = tuple((0, data[i * 4 : i * 4 + 4]) for i in range(request.first_block, request.first_block + count))
        return ReadBlocksResponse(address, STATUS_OK, 4, blocks)


@pytest.fixture
def readers():
    return Readers(fields={1: {}, 2: {}})


@pytest.fixture
def device(tmp_path, readers):
    with FakeDevice(tmp_path / "rfid", codec.decode, readers.respond) as fake:
        yield fake


@pytest.fixture
def links():
    return queue.Queue()


@pytest.fixture
def bus(device, links):
    rfid = RfidBus(device.url, timeout_s=1.0, retries=1, reconnect_interval_s=0.02,
                   on_link=lambda up, message: links.put((up, message)))
    rfid.start()
    assert rfid.transport.wait_connected(WAIT_S)
    yield rfid
    rfid.close()


def test_empty_field_gives_no_tags(bus):
    assert bus.inventory(1) == []


def test_inventory_lists_the_tags(bus, readers):
    readers.fields[2] = {uid(1): b"", uid(2): b""}
    assert bus.inventory(2) == [TagEntry(uid(1)), TagEntry(uid(2))]


def test_inventory_follows_more_data_until_the_end(bus, device, readers):
    readers.fields[1] = {uid(n): b"" for n in range(60)}
    tags = bus.inventory(1)
    assert [t.uid for t in tags] == [uid(n) for n in range(60)]
    modes = [device.next_request().payload[1] for _ in range(3)]
    assert modes == [INVENTORY_MODE_NEW, INVENTORY_MODE_MORE, INVENTORY_MODE_MORE]


def test_rf_error_raises_rfid_error(bus, device, readers):
    readers.rf_error.add(2)
    expected = f"RFID readers on {device.url}: reader 2: inventory failed: RF communication error"
    with pytest.raises(RfidError, match=expected):
        bus.inventory(2)


def test_read_tag_returns_tag_memory(bus, readers):
    book = LibraryTag("31234567890123")
    readers.fields[1] = {uid(7): book.encode(), uid(8): book.encode(reversed_blocks=True)}
    assert decode_tag(bus.read_tag(1, uid(7))) == (book, False)
    assert decode_tag(bus.read_tag(1, uid(8))) == (book, True)


def test_read_tag_of_a_tag_gone_raises_rfid_error(bus, readers):
    with pytest.raises(RfidError, match="reading tag E004010000000009 failed: no transponder answered"):
        bus.read_tag(1, uid(9))


def test_short_read_is_a_protocol_error(bus, readers):
    readers.fields[1] = {uid(7): LibraryTag("1").encode()}
    readers.short_read = True
    with pytest.raises(ProtocolError, match="7 blocks of 4 bytes"):
        bus.read_tag(1, uid(7))


def test_bad_uid_is_refused(bus):
    with pytest.raises(ValueError):
        bus.read_tag(1, b"\xe0\x04")


def test_silent_reader_times_out(device, links):
    rfid = RfidBus(device.url, timeout_s=0.05, retries=2)
    rfid.start()
    try:
        assert rfid.transport.wait_connected(WAIT_S)
        with pytest.raises(DeviceTimeout, match=r"no answer from reader 9 to an inventory after 3 tries"):
            rfid.inventory(9)
        assert [device.next_request() for _ in range(3)] == [InventoryRequest(9).to_frame()] * 3
    finally:
        rfid.close()


def test_echoed_request_and_noise_are_ignored(bus, readers):
    readers.echo = True
    readers.noise = b"\xff\x00\x80"
    readers.fields[1] = {uid(3): LibraryTag("X").encode()}
    assert bus.inventory(1) == [TagEntry(uid(3))]
    assert decode_tag(bus.read_tag(1, uid(3)))[0].item_id == "X"
    assert bus.transport.garbage_bytes >= 6


def test_unplug_and_replug(bus, device, links, readers):
    assert links.get(timeout=WAIT_S)[0] is True
    device.unplug()
    up, message = links.get(timeout=WAIT_S)
    assert up is False and message.startswith(f"RFID readers on {device.url}: connection lost")
    with pytest.raises(DeviceUnavailable):
        bus.inventory(1)
    readers.fields[1] = {uid(4): b""}
    device.plug()
    assert links.get(timeout=WAIT_S)[0] is True
    assert bus.inventory(1) == [TagEntry(uid(4))]


def test_bus_speaks_8e1_at_38400(bus):
    assert (bus.transport.baudrate, bus.transport.parity) == (38400, "E")


def test_the_same_pty_can_be_reopened_at_8e1(device, readers):
    # Linux ptys drop PARENB and refuse it on the next open; a restarted daemon must still connect.
    readers.fields[1] = {uid(5): b""}
    for _ in range(2):
        rfid = RfidBus(device.url, timeout_s=1.0, retries=0)
        rfid.start()
        try:
            assert rfid.transport.wait_connected(WAIT_S)
            assert rfid.inventory(1) == [TagEntry(uid(5))]
        finally:
            rfid.close()
