"""RFID reader bus driver: inventory and tag reads on FEIG ISO-Host readers sharing one RS-485 bus."""

from __future__ import annotations

import logging
from collections.abc import Callable

import serial

from kiosk.drivers.errors import CodecError, DeviceError, ProtocolError
from kiosk.drivers.rfid.codec import (
    CMD_ISO_HOST,
    INVENTORY_MODE_MORE,
    INVENTORY_MODE_NEW,
    STATUS_MORE_DATA,
    STATUS_NO_TRANSPONDER,
    STATUS_OK,
    STATUS_RF_ERROR,
    UID_LEN,
    InventoryRequest,
    InventoryResponse,
    RawFrame,
    ReadBlocksRequest,
    ReadBlocksResponse,
    TagEntry,
    decode,
)
from kiosk.drivers.rfid.tag import BLOCK_SIZE, TAG_DATA_LEN
from kiosk.drivers.session import RequestSession
from kiosk.drivers.transport import SerialTransport

LOGGER = logging.getLogger(__name__)

BROADCAST_ADDRESS = 0xFF
MAX_MORE_DATA_FRAMES = 64
TAG_BLOCKS = TAG_DATA_LEN // BLOCK_SIZE


class RfidError(DeviceError):
    """The reader answered with an error status (RF communication error, tag gone, ...)."""


def _status_words(status: int) -> str:
    return {
        STATUS_NO_TRANSPONDER: "no transponder answered",
        STATUS_RF_ERROR: "RF communication error",
    }.get(status, f"reader status 0x{status:02x}")


class RfidBus:
    """One RS-485 bus (38400 8E1) with many readers, each addressed by its COM-ADR."""

    def __init__(
        self,
        url: str,
        *,
        baudrate: int = 38400,
        timeout_s: float = 5.0,
        retries: int = 2,
        on_link: Callable[[bool, str], None] | None = None,
        reconnect_interval_s: float = 1.0,
        trace: Callable[[str, bytes], None] | None = None,
    ) -> None:
        self.url = url
        self.name = f"RFID readers on {url}"
        self.timeout_s = timeout_s
        self.retries = retries
        self._on_link = on_link
        self._session = RequestSession.over_serial(
            url, baudrate=baudrate, parity=serial.PARITY_EVEN, name=self.name, decode=decode,
            on_link=self._link_changed, reconnect_interval_s=reconnect_interval_s, trace=trace)

    @property
    def transport(self) -> SerialTransport:
        return self._session.transport

    def start(self) -> None:
        """Open the port (retrying in the background if it is missing)."""
        self._session.start()

    def close(self) -> None:
        """Close the port and join the reader thread. Safe to call twice."""
        self._session.close()

    def inventory(self, address: int) -> list[TagEntry]:
        """One inventory round of reader ``address``: every tag in its field, in the order reported.

        Follows STATUS 0x94 (more data) with "rest of the round" requests until the final answer.
        Raises RfidError on an RF communication error, DeviceTimeout / DeviceUnavailable on no answer.
        """
        tags: dict[bytes, TagEntry] = {}
        mode = INVENTORY_MODE_NEW
        for _ in range(MAX_MORE_DATA_FRAMES):
            frame = self._exchange(InventoryRequest(address, mode).to_bytes(), address, "to an inventory")
            response = self._parse(InventoryResponse.from_frame, frame, address)
            if response.status == STATUS_NO_TRANSPONDER:
                break
            if response.status not in (STATUS_OK, STATUS_MORE_DATA):
                raise RfidError(f"{self.name}: reader {address}: inventory failed: {_status_words(response.status)}")
            for tag in response.tags:
                tags.setdefault(bytes(tag.uid), tag)
            if response.status == STATUS_OK:
                break
            mode = INVENTORY_MODE_MORE
        else:
            raise ProtocolError(
                f"{self.name}: reader {address} still had more inventory data after {MAX_MORE_DATA_FRAMES} frames"
            )
        return list(tags.values())

    def read_tag(self, address: int, uid: bytes) -> bytes:
        """The 32 bytes of blocks 0-7 of tag ``uid`` in reader ``address``'s field, in tag memory order."""
        uid = bytes(uid)
        if len(uid) != UID_LEN:
            raise ValueError(f"a UID is {UID_LEN} bytes, got {len(uid)}")
        request = ReadBlocksRequest(address, uid, first_block=0, count=TAG_BLOCKS)
        frame = self._exchange(request.to_bytes(), address, f"to reading tag {uid.hex().upper()}")
        response = self._parse(ReadBlocksResponse.from_frame, frame, address)
        if response.status != STATUS_OK:
            raise RfidError(
                f"{self.name}: reader {address}: reading tag {uid.hex().upper()} failed: "
                f"{_status_words(response.status)}"
            )
        if response.block_size != BLOCK_SIZE or len(response.blocks) != TAG_BLOCKS:
            raise ProtocolError(
                f"{self.name}: reader {address} returned {len(response.blocks)} blocks of {response.block_size} bytes "
                f"for tag {uid.hex().upper()}, expected {TAG_BLOCKS} of {BLOCK_SIZE}"
            )
        return response.data()

    # ------------------------------------------------------------------ internals

    def _exchange(self, data: bytes, address: int, what: str) -> RawFrame:
        def is_reply(frame: object) -> bool:
            # A half-duplex adapter may echo the request back: that is not the reader's answer.
            return (
                isinstance(frame, RawFrame)
                and frame.command == CMD_ISO_HOST
                and (address == BROADCAST_ADDRESS or frame.address == address)
                and frame.to_bytes() != data
            )

        return self._session.request(data, is_reply, self.timeout_s, self.retries, what=f"from reader {address} {what}")

    def _parse(self, parse: Callable[[RawFrame], object], frame: RawFrame, address: int):
        try:
            return parse(frame)
        except CodecError as exc:
            raise ProtocolError(f"{self.name}: reader {address} sent a malformed answer: {exc}") from exc

    def _link_changed(self, up: bool, message: str) -> None:
        self._session.link_changed(up, message)
        if self._on_link is not None:
            self._on_link(up, message)
