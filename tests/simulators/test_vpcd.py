"""The virtual card (simulators/vpcd.py): vpcd framing byte for byte against a test-side vpcd, and its answers."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from kiosk.drivers.pcsc import codec
from simulators.errors import SimError
from simulators.vpcd import (CTRL_ATR, CTRL_OFF, CTRL_ON, CTRL_RESET, VirtualCard, VpcdCard, decode_message,
                             encode_message, parse_sw, parse_uid)
from tests.drivers.conftest import decode_stream, one_byte_at_a_time

UID = "04A224B2C35E80"
ATR_1K = bytes.fromhex("3B8F8001804F0CA000000306030001000000006A")


class FakeVpcd:
    """The reader side of the vpcd protocol, as vpcd.c does it: listen, accept one card, send, receive."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.conn: socket.socket | None = None

    def accept(self) -> None:
        self.server.settimeout(5)
        self.conn, _ = self.server.accept()
        self.conn.settimeout(5)

    def send(self, payload: bytes) -> None:
        assert self.conn is not None
        self.conn.sendall(len(payload).to_bytes(2, "big") + payload)

    def recv(self) -> bytes:
        """One message, read like vpcd's recvFromVICC: 2 length bytes, then exactly that many."""
        size = int.from_bytes(self._exactly(2), "big")
        return self._exactly(size)

    def transmit(self, payload: bytes) -> bytes:
        self.send(payload)
        return self.recv()

    def _exactly(self, n: int) -> bytes:
        assert self.conn is not None
        data = b""
        while len(data) < n:
            chunk = self.conn.recv(n - len(data))
            if not chunk:
                raise ConnectionError("card closed the connection")
            data += chunk
        return data

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.server.close()


@pytest.fixture
def reader() -> Iterator[FakeVpcd]:
    fake = FakeVpcd()
    yield fake
    fake.close()


@pytest.fixture
def card(reader: FakeVpcd) -> Iterator[VpcdCard]:
    virtual = VpcdCard("127.0.0.1", reader.port)
    yield virtual
    virtual.close()


# --- framing ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("payload, wire", [
    (b"\x04", "0001 04"),
    (bytes.fromhex("FFCA000000"), "0005 FFCA000000"),
    (bytes(300), "012C" + "00" * 300),
])
def test_encode_message_prefixes_a_big_endian_length(payload: bytes, wire: str) -> None:
    assert encode_message(payload) == bytes.fromhex(wire)
    assert decode_message(bytes.fromhex(wire)) == (len(payload) + 2, payload)


def test_encode_message_refuses_empty_and_oversized_payloads() -> None:
    with pytest.raises(ValueError):
        encode_message(b"")
    with pytest.raises(ValueError):
        encode_message(bytes(0x10000))


def test_decode_message_waits_for_whole_messages_split_anywhere() -> None:
    wire = encode_message(b"\x01") + encode_message(b"\x04") + encode_message(bytes.fromhex("FFCA000000"))
    assert decode_message(wire[:1]) == (0, None)
    assert decode_message(wire[:4]) == (3, b"\x01")
    messages, rest = decode_stream(decode_message, one_byte_at_a_time(wire))
    assert messages == [b"\x01", b"\x04", bytes.fromhex("FFCA000000")] and rest == b""


# --- the card's answers (no I/O) ----------------------------------------------------------------------


def test_control_messages_power_the_card_and_only_get_atr_is_answered() -> None:
    virtual = VirtualCard(bytes.fromhex(UID))
    assert virtual.handle(bytes([CTRL_ON])) is None and virtual.powered
    assert virtual.handle(bytes([CTRL_OFF])) is None and not virtual.powered
    assert virtual.handle(bytes([CTRL_RESET])) is None and virtual.powered
    assert virtual.handle(bytes([CTRL_ATR])) == ATR_1K
    assert virtual.handle(b"\x07") is None
    assert (virtual.stats.power_ons, virtual.stats.power_offs, virtual.stats.resets,
            virtual.stats.atr_requests, virtual.stats.messages) == (1, 1, 1, 1, 5)


@pytest.mark.parametrize("apdu, answer", [
    ("FFCA000000", UID + "9000"),                  # GET UID, all of it
    ("FFCA000007", UID + "9000"),                  # Le = the UID's length
    ("FFCA000004", "6C07"),                        # Le too short: 6C + the right Le
    ("FFCA00000A", UID + "6282"),                  # Le too long: the UID, end of data
    ("FFCA010000", "6A81"),                        # historical bytes: a storage card has no ATS
    ("FFCA020000", "6B00"),                        # unknown P1
    ("FFCA0001 00", "6B00"),                       # P2 must be 00
    ("FFB0000010", "6D00"),                        # READ BINARY: not a pseudo-APDU we answer
    ("00A4040000", "6E00"),                        # ISO class: the card does not speak it
    ("FFCA0000", "6700"),                          # no Le
    ("FFCA00000201", "6700"),                      # Lc + 1 byte of 2: not an APDU
])
def test_apdu_answers(apdu: str, answer: str) -> None:
    virtual = VirtualCard(bytes.fromhex(UID))
    assert virtual.handle(bytes.fromhex(apdu.replace(" ", ""))) == bytes.fromhex(answer)


def test_error_fault_answers_get_uid_with_that_status_word() -> None:
    virtual = VirtualCard(bytes.fromhex(UID), error_sw=0x6300)
    assert virtual.handle(codec.get_uid_command()) == bytes.fromhex("6300")
    assert virtual.stats.uid_reads == 1


@pytest.mark.parametrize("text, value", [("6A81", 0x6A81), ("6a 81", 0x6A81), ("9000", 0x9000), (0x6300, 0x6300)])
def test_parse_sw(text: str | int, value: int) -> None:
    assert parse_sw(text) == value


@pytest.mark.parametrize("text", ["6A8", "zz00", "1234", "6A8100", True])
def test_parse_sw_refuses_what_is_not_a_status_word(text: object) -> None:
    with pytest.raises(SimError):
        parse_sw(text)  # type: ignore[arg-type]


@pytest.mark.parametrize("text, uid", [("04:a2:24:b2:c3:5e:80", UID), ("A1B2C3D4", "A1B2C3D4")])
def test_parse_uid(text: str, uid: str) -> None:
    assert parse_uid(text).hex().upper() == uid


@pytest.mark.parametrize("text", ["A1B2C3", "not hex", "00" * 11])
def test_parse_uid_refuses_bad_uids(text: str) -> None:
    with pytest.raises(SimError):
        parse_uid(text)


# --- over TCP, against the reader side of the protocol -------------------------------------------------


def test_a_presented_card_answers_vpcd_byte_for_byte(reader: FakeVpcd, card: VpcdCard) -> None:
    card.present(UID)
    reader.accept()
    assert reader.transmit(bytes([CTRL_ATR])) == ATR_1K          # the presence poll
    assert card.wait_detected(1)
    reader.send(bytes([CTRL_ON]))                                # power on: no answer...
    assert reader.transmit(bytes([CTRL_ATR])) == ATR_1K          # ...so the next answer is the ATR's
    assert reader.transmit(codec.get_uid_command()) == bytes.fromhex(UID + "9000")
    assert card.present_uid == UID
    stats = card.remove()
    assert stats is not None and (stats.atr_requests, stats.power_ons, stats.uid_reads) == (2, 1, 1)
    assert stats.detected_at is not None and stats.removed_at is not None


def test_removing_the_card_closes_the_connection(reader: FakeVpcd, card: VpcdCard) -> None:
    card.present(UID)
    reader.accept()
    card.remove()
    reader.send(bytes([CTRL_ATR]))
    with pytest.raises((ConnectionError, OSError)):
        reader.recv()
    assert card.present_uid is None
    assert card.remove() is None


def test_one_card_at_a_time(reader: FakeVpcd, card: VpcdCard) -> None:
    card.present(UID)
    with pytest.raises(SimError, match="still on the reader"):
        card.present("A1B2C3D4")


def test_tap_holds_the_card_after_the_reader_notices_it(reader: FakeVpcd, card: VpcdCard) -> None:
    polls: list[bytes] = []
    def poll_until_gone() -> None:
        time.sleep(0.3)      # the reader first looks 0.3 s after the card arrived, longer than hold_s
        reader.accept()
        try:
            while True:
                polls.append(reader.transmit(bytes([CTRL_ATR])))
                time.sleep(0.01)
        except (ConnectionError, OSError):
            pass

    poller = threading.Thread(target=poll_until_gone)
    poller.start()
    stats = card.tap(UID, hold_s=0.2)
    poller.join(5)
    assert not poller.is_alive()
    assert len(polls) >= 2 and all(p == ATR_1K for p in polls)
    assert stats.atr_requests in (len(polls), len(polls) + 1) and stats.uid == UID   # + a poll cut off by removal
    assert stats.connected_at < stats.detected_at < stats.removed_at


def test_tap_fails_clearly_when_the_reader_never_polls(reader: FakeVpcd, card: VpcdCard) -> None:
    with pytest.raises(SimError, match="did not poll the card"):
        card.tap(UID, detect_timeout_s=0.2)
    assert card.present_uid is None


def test_slow_fault_delays_apdu_answers_but_not_the_polls(reader: FakeVpcd, card: VpcdCard) -> None:
    card.present(UID, delay_s=0.3)
    reader.accept()
    reader.conn.settimeout(0.2)  # type: ignore[union-attr]
    assert reader.transmit(bytes([CTRL_ATR])) == ATR_1K
    reader.send(codec.get_uid_command())
    with pytest.raises(TimeoutError):
        reader.recv()                                             # not within 0.2 s...
    reader.conn.settimeout(5)  # type: ignore[union-attr]
    assert reader.recv() == bytes.fromhex(UID + "9000")           # ...but it comes


def test_no_vpcd_listening_is_a_clear_error() -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    with pytest.raises(SimError, match=f"no vpcd card reader listens on 127.0.0.1:{port}"):
        VpcdCard("127.0.0.1", port).present(UID)


def test_stats_while_the_card_is_in_the_field(reader: FakeVpcd, card: VpcdCard) -> None:
    assert card.stats is None
    card.present(UID)
    reader.accept()
    reader.transmit(bytes([CTRL_ATR]))
    snapshot = card.stats
    assert snapshot is not None and (snapshot.uid, snapshot.atr_requests) == (UID, 1)
    reader.transmit(bytes([CTRL_ATR]))
    assert snapshot.atr_requests == 1 and card.stats.atr_requests == 2      # a copy, not the live counters
    card.remove()
    assert card.stats is None


def test_a_card_stays_in_the_field_when_vpcd_goes_away_and_answers_when_it_is_back(reader: FakeVpcd,
                                                                                   card: VpcdCard) -> None:
    card.present(UID)
    reader.accept()
    assert reader.transmit(bytes([CTRL_ATR])) == ATR_1K
    assert reader.conn is not None
    reader.conn.close()                                          # pcscd stopped: vpcd drops the card's connection
    reader.accept()                                              # vpcd is back: the card connects again
    assert reader.transmit(bytes([CTRL_ATR])) == ATR_1K
    assert reader.transmit(codec.get_uid_command()) == bytes.fromhex(UID + "9000")
    assert card.present_uid == UID
    stats = card.remove()
    assert stats is not None and (stats.reconnects, stats.atr_requests, stats.uid_reads) == (1, 2, 1)


def test_a_card_waiting_for_vpcd_to_come_back_can_still_be_removed(reader: FakeVpcd, card: VpcdCard) -> None:
    card.present(UID)
    reader.accept()
    reader.close()                                               # vpcd gone, and nobody listens any more
    assert card.stats is not None and card.present_uid == UID    # the card is still lying on the reader
    stats = card.remove()                                        # (the leak guard checks its thread ended)
    assert stats is not None and stats.reconnects == 0 and card.present_uid is None
