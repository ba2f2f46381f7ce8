"""Simulated FEIG ISO-Host HF readers, one per compartment, sharing one RS-485 bus (38400 8E1)."""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from kiosk.drivers.errors import CodecError
from kiosk.drivers.rfid import codec
from kiosk.drivers.rfid.codec import (
    CMD_ISO_HOST,
    INVENTORY_MODE_MORE,
    MAX_TAGS_PER_FRAME,
    STATUS_MORE_DATA,
    STATUS_NO_TRANSPONDER,
    STATUS_OK,
    InventoryRequest,
    InventoryResponse,
    RawFrame,
    ReadBlocksRequest,
    ReadBlocksResponse,
    TagEntry,
    parse_request,
)
from kiosk.drivers.rfid.tag import BLOCK_SIZE, TAG_DATA_LEN
from simulators.device import FrameDevice
from simulators.pty import PtyLink
from simulators.world import Book, World

AIR_MS_PER_TAG = 8.0          # anticollision + UID transfer per tag and round
STATUS_UNKNOWN_COMMAND = 0x80  # FEIG: the reader does not know the command
STATUS_ISO_ERROR = 0x95        # FEIG: the transponder answered with an ISO 15693 error code
ISO_ERROR_BLOCK_NOT_AVAILABLE = 0x10
TAG_BLOCKS = TAG_DATA_LEN // BLOCK_SIZE


class RfidBusSim(FrameDevice):
    """The readers on the bus, by COM-ADR (``world.readers``); an address not on the bus never answers.

    Inventory: the air time (``air_ms`` per answering tag) is slept before the first frame of a round;
    each tag is missed with probability ``miss`` per round (seeded); flaky tags alternate rounds (the
    world decides). More than 24 tags: STATUS 0x94 and the host fetches the rest with mode 0x80.
    """

    decode = staticmethod(codec.decode)
    HANDLERS = {InventoryRequest: "_handle_inventory", ReadBlocksRequest: "_handle_read_blocks"}

    def __init__(self, world: World, link: PtyLink, *, air_ms: float = AIR_MS_PER_TAG, miss: float = 0.0,
                 seed: int = 0, sleep: Callable[[float], None] = time.sleep) -> None:
        super().__init__(link)
        if not 0.0 <= miss <= 1.0:
            raise ValueError(f"miss probability must be 0..1, got {miss}")
        self.world = world
        self.air_s_per_tag = air_ms / 1000
        self.miss = miss
        self._rng = random.Random(seed)
        self._sleep = sleep
        self._pending: dict[int, list[Book]] = {}  # reader -> tags of the round not sent yet

    def handle_frame(self, frame: RawFrame) -> None:
        if frame.address not in self.world.readers:
            return  # no reader with that COM-ADR on the bus
        try:
            request = parse_request(frame)
        except CodecError:
            self.send(RawFrame(frame.address, frame.command, bytes([STATUS_UNKNOWN_COMMAND])))
            return
        getattr(self, self.HANDLERS[type(request)])(request)

    def _handle_inventory(self, request: InventoryRequest) -> None:
        reader = request.address
        if request.mode & INVENTORY_MODE_MORE:
            tags = self._pending.pop(reader, [])
        else:
            self._pending.pop(reader, None)
            tags = [book for book in self.world.inventory_round(reader)
                    if not (self.miss and self._rng.random() < self.miss)]
            air_s = self.air_s_per_tag * len(tags)
            self._sleep(air_s)
            self.stats.air_time_s += air_s
        batch, rest = tags[:MAX_TAGS_PER_FRAME], tags[MAX_TAGS_PER_FRAME:]
        if rest:
            self._pending[reader] = rest
        if not batch:
            self.send(InventoryResponse(reader, STATUS_NO_TRANSPONDER))
            return
        status = STATUS_MORE_DATA if rest else STATUS_OK
        self.send(InventoryResponse(reader, status, tuple(TagEntry(uid=book.uid) for book in batch)))

    def _handle_read_blocks(self, request: ReadBlocksRequest) -> None:
        reader = request.address
        book = self.world.readable(reader, bytes(request.uid))
        if book is None:
            self.send(ReadBlocksResponse(reader, STATUS_NO_TRANSPONDER))
            return
        last = request.first_block + request.count
        if request.count == 0 or last > TAG_BLOCKS:
            # ISO 15693: the tag refuses a block it does not have; the reader relays the error code.
            self.send(RawFrame(reader, CMD_ISO_HOST, bytes([STATUS_ISO_ERROR, ISO_ERROR_BLOCK_NOT_AVAILABLE])))
            return
        blocks = tuple((0, book.tag_data[i * BLOCK_SIZE:(i + 1) * BLOCK_SIZE])
                       for i in range(request.first_block, last))
        self.send(ReadBlocksResponse(reader, STATUS_OK, BLOCK_SIZE, blocks))
