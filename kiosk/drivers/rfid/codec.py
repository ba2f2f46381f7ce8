"""Byte codec of the FEIG ISO-Host standard protocol for HF (ISO 15693) readers. Pure bytes, no I/O.

Request and response frames (38400 baud, 8E1, RS-485 bus, readers addressed by COM-ADR)::

    request   +-----+---------+-----+---------+---------+---------+
              | LEN | COM-ADR | CMD | DATA... | CRC-LSB | CRC-MSB |
              +-----+---------+-----+---------+---------+---------+
    response  +-----+---------+-----+--------+---------+---------+---------+
              | LEN | COM-ADR | CMD | STATUS | DATA... | CRC-LSB | CRC-MSB |
              +-----+---------+-----+--------+---------+---------+---------+

LEN counts the whole frame (5..255). CRC-16, reflected polynomial 0x8408, preset 0xFFFF, no final xor
(CRC-16/MCRF4XX), over every byte before the CRC. ``RawFrame.payload`` is everything between CMD and the
CRC, so a response's payload starts with STATUS.

ISO-Host commands (CMD 0xB0)::

    inventory      B0 | 01 | MODE                              MODE 0x00 new round, 0x80 rest of the round
      response     STATUS | COUNT | COUNT x (TR-TYPE | DSFID | UID[8])      (STATUS 0x00 or 0x94)
    read blocks    B0 | 23 | 0x01 | UID[8] | FIRST | N          addressed mode
      response     STATUS | N | SIZE | N x (SEC-STATUS | BLOCK[SIZE])        (STATUS 0x00)

UIDs travel most significant byte first, as printed (E0 ...). Any other STATUS carries no data.
"""

from __future__ import annotations

from dataclasses import dataclass

from kiosk.drivers.errors import CodecError

CMD_ISO_HOST = 0xB0
SUB_INVENTORY = 0x01
SUB_READ_BLOCKS = 0x23
STATUS_OK, STATUS_NO_TRANSPONDER, STATUS_RF_ERROR, STATUS_MORE_DATA = 0x00, 0x01, 0x83, 0x94
INVENTORY_MODE_NEW, INVENTORY_MODE_MORE = 0x00, 0x80
READ_MODE_ADDRESSED = 0x01
TR_TYPE_ISO15693 = 0x03
MAX_TAGS_PER_FRAME = 24
UID_LEN = 8
MIN_FRAME_LEN = 5
MAX_FRAME_LEN = 255
_TAG_ENTRY_LEN = 2 + UID_LEN

# The reader commands this codec recognises: ISO-Host (0xB0) and the reader-control commands baud rate
# detection, CPU reset, get software version, get reader info, RF reset and RF on/off. A candidate frame
# with any other CMD byte is line noise; keeping the set small lets a stray byte fall away at once.
KNOWN_COMMANDS = frozenset({CMD_ISO_HOST, 0x52, 0x63, 0x65, 0x66, 0x69, 0x6A})


def crc16(data: bytes) -> int:
    """CRC-16/MCRF4XX as FEIG uses it: reflected poly 0x8408, preset 0xFFFF, no final xor."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
    return crc


def _check_byte(name: str, value: int) -> None:
    if not 0 <= value <= 0xFF:
        raise ValueError(f"{name} must be one byte (0..255), got {value}")


def _check_uid(uid: bytes) -> None:
    if len(uid) != UID_LEN:
        raise ValueError(f"a UID is {UID_LEN} bytes, got {len(uid)}")


@dataclass(frozen=True)
class RawFrame:
    """One CRC-checked frame; ``payload`` is the bytes between CMD and the CRC."""

    address: int
    command: int
    payload: bytes = b""

    def __post_init__(self) -> None:
        _check_byte("COM-ADR", self.address)
        _check_byte("CMD", self.command)
        if MIN_FRAME_LEN + len(self.payload) > MAX_FRAME_LEN:
            raise ValueError(f"payload of {len(self.payload)} bytes makes the frame longer than {MAX_FRAME_LEN}")

    def to_bytes(self) -> bytes:
        body = bytes([MIN_FRAME_LEN + len(self.payload), self.address, self.command]) + bytes(self.payload)
        crc = crc16(body)
        return body + bytes([crc & 0xFF, crc >> 8])

    @classmethod
    def from_bytes(cls, data: bytes) -> RawFrame:
        data = bytes(data)
        if len(data) < MIN_FRAME_LEN:
            raise CodecError(f"reader frame of {len(data)} bytes is shorter than {MIN_FRAME_LEN}")
        if data[2] not in KNOWN_COMMANDS:
            raise CodecError(f"0x{data[2]:02x} is not a reader command this codec knows")
        if data[0] != len(data):
            raise CodecError(f"reader frame says LEN {data[0]} but has {len(data)} bytes")
        expected = crc16(data[:-2])
        got = data[-2] | data[-1] << 8
        if got != expected:
            raise CodecError(f"reader frame CRC mismatch: frame says 0x{got:04x}, bytes give 0x{expected:04x}")
        return cls(address=data[1], command=data[2], payload=data[3:-2])


def _frame_at(buf: bytes, pos: int) -> RawFrame | None | bool:
    """The valid frame at ``pos``; None if what is there cannot be one; True if it may still be arriving."""
    length = buf[pos]
    if length < MIN_FRAME_LEN:
        return None
    if len(buf) - pos > 2 and buf[pos + 2] not in KNOWN_COMMANDS:
        return None
    if len(buf) - pos < length:
        return True
    try:
        return RawFrame.from_bytes(buf[pos : pos + length])
    except ValueError:
        return None


def decode(buf: bytes) -> tuple[int, RawFrame | None]:
    """Find the first valid frame in ``buf``.

    Returns ``(consumed, frame)``: drop ``consumed`` bytes from the front of the buffer. The protocol has no
    start byte, so every position is a candidate LEN. A candidate is skipped one byte at a time when its LEN
    is below 5, its CMD byte is not in KNOWN_COMMANDS, or its CRC is wrong; a candidate that may still be
    arriving is kept. Checking CMD early lets a stray byte before a reply fall away at once instead of
    posing as a long frame. Never raises.
    """
    buf = bytes(buf)
    for pos in range(len(buf)):
        found = _frame_at(buf, pos)
        if found is None:
            continue
        if found is True:
            return pos, None
        return pos + len(found.to_bytes()), found
    return len(buf), None


@dataclass(frozen=True)
class InventoryRequest:
    """B0 01 <mode>: list the transponders in the field (mode 0x80 fetches the rest after STATUS 0x94)."""

    address: int
    mode: int = INVENTORY_MODE_NEW

    def __post_init__(self) -> None:
        _check_byte("COM-ADR", self.address)
        _check_byte("inventory mode", self.mode)

    def to_frame(self) -> RawFrame:
        return RawFrame(self.address, CMD_ISO_HOST, bytes([SUB_INVENTORY, self.mode]))

    def to_bytes(self) -> bytes:
        return self.to_frame().to_bytes()


@dataclass(frozen=True)
class ReadBlocksRequest:
    """B0 23 01 <UID> <first> <n>: read ``count`` blocks of one addressed transponder."""

    address: int
    uid: bytes
    first_block: int
    count: int

    def __post_init__(self) -> None:
        _check_byte("COM-ADR", self.address)
        _check_uid(self.uid)
        _check_byte("first block", self.first_block)
        _check_byte("block count", self.count)

    def to_frame(self) -> RawFrame:
        payload = (
            bytes([SUB_READ_BLOCKS, READ_MODE_ADDRESSED]) + bytes(self.uid) + bytes([self.first_block, self.count])
        )
        return RawFrame(self.address, CMD_ISO_HOST, payload)

    def to_bytes(self) -> bytes:
        return self.to_frame().to_bytes()


def parse_request(frame: RawFrame) -> InventoryRequest | ReadBlocksRequest:
    """The ISO-Host request a frame carries; CodecError for anything this bookcase never sends."""
    if frame.command != CMD_ISO_HOST:
        raise CodecError(f"reader command 0x{frame.command:02x} is not ISO-Host (0xb0)")
    payload = frame.payload
    if not payload:
        raise CodecError("ISO-Host request without a sub-command")
    if payload[0] == SUB_INVENTORY:
        if len(payload) != 2:
            raise CodecError(f"inventory request must carry one mode byte, got {len(payload) - 1} bytes")
        return InventoryRequest(frame.address, payload[1])
    if payload[0] == SUB_READ_BLOCKS:
        if len(payload) != 4 + UID_LEN:
            raise CodecError(f"read-blocks request must carry {3 + UID_LEN} bytes, got {len(payload) - 1}")
        if payload[1] != READ_MODE_ADDRESSED:
            raise CodecError(f"read-blocks mode 0x{payload[1]:02x} is not addressed mode (0x01)")
        return ReadBlocksRequest(frame.address, payload[2 : 2 + UID_LEN], payload[-2], payload[-1])
    raise CodecError(f"ISO-Host sub-command 0x{payload[0]:02x} is not supported")


def _response_payload(frame: RawFrame) -> tuple[int, bytes]:
    if frame.command != CMD_ISO_HOST:
        raise CodecError(f"reader answered with command 0x{frame.command:02x}, expected 0xb0")
    if not frame.payload:
        raise CodecError("reader answer has no STATUS byte")
    return frame.payload[0], frame.payload[1:]


@dataclass(frozen=True)
class TagEntry:
    """One transponder seen by an inventory."""

    uid: bytes
    dsfid: int = 0
    tr_type: int = TR_TYPE_ISO15693

    def __post_init__(self) -> None:
        _check_uid(self.uid)
        _check_byte("DSFID", self.dsfid)
        _check_byte("TR-TYPE", self.tr_type)


@dataclass(frozen=True)
class InventoryResponse:
    """Answer to an inventory: STATUS, and with STATUS 0x00/0x94 the tags of this frame."""

    address: int
    status: int
    tags: tuple[TagEntry, ...] = ()

    def __post_init__(self) -> None:
        _check_byte("COM-ADR", self.address)
        _check_byte("STATUS", self.status)
        object.__setattr__(self, "tags", tuple(self.tags))
        if self.status in (STATUS_OK, STATUS_MORE_DATA):
            if len(self.tags) > MAX_TAGS_PER_FRAME:
                raise ValueError(f"at most {MAX_TAGS_PER_FRAME} tags fit one frame, got {len(self.tags)}")
        elif self.tags:
            raise ValueError(f"STATUS 0x{self.status:02x} carries no tags")

    def to_frame(self) -> RawFrame:
        payload = bytearray([self.status])
        if self.status in (STATUS_OK, STATUS_MORE_DATA):
            payload.append(len(self.tags))
            for tag in self.tags:
                payload += bytes([tag.tr_type, tag.dsfid]) + bytes(tag.uid)
        return RawFrame(self.address, CMD_ISO_HOST, bytes(payload))

    def to_bytes(self) -> bytes:
        return self.to_frame().to_bytes()

    @classmethod
    def from_frame(cls, frame: RawFrame) -> InventoryResponse:
        status, data = _response_payload(frame)
        if status not in (STATUS_OK, STATUS_MORE_DATA):
            return cls(frame.address, status)
        if not data:
            raise CodecError("inventory answer has no tag count")
        count = data[0]
        if len(data) != 1 + count * _TAG_ENTRY_LEN:
            raise CodecError(
                f"inventory answer announces {count} tags ({count * _TAG_ENTRY_LEN} bytes) "
                f"but carries {len(data) - 1} bytes"
            )
        tags = tuple(
            TagEntry(uid=data[i + 2 : i + _TAG_ENTRY_LEN], dsfid=data[i + 1], tr_type=data[i])
            for i in range(1, len(data), _TAG_ENTRY_LEN)
        )
        try:
            return cls(frame.address, status, tags)
        except ValueError as exc:
            raise CodecError(str(exc)) from exc


@dataclass(frozen=True)
class ReadBlocksResponse:
    """Answer to a read-blocks request: STATUS, and with STATUS 0x00 (security status, bytes) per block."""

    address: int
    status: int
    block_size: int = 4
    blocks: tuple[tuple[int, bytes], ...] = ()

    def __post_init__(self) -> None:
        _check_byte("COM-ADR", self.address)
        _check_byte("STATUS", self.status)
        _check_byte("block size", self.block_size)
        object.__setattr__(self, "blocks", tuple((sec, bytes(data)) for sec, data in self.blocks))
        if self.status != STATUS_OK and self.blocks:
            raise ValueError(f"STATUS 0x{self.status:02x} carries no blocks")
        for sec, data in self.blocks:
            _check_byte("security status", sec)
            if len(data) != self.block_size:
                raise ValueError(f"block of {len(data)} bytes, block size is {self.block_size}")

    def data(self) -> bytes:
        """The blocks' bytes joined, in tag memory order."""
        return b"".join(data for _, data in self.blocks)

    def to_frame(self) -> RawFrame:
        payload = bytearray([self.status])
        if self.status == STATUS_OK:
            payload += bytes([len(self.blocks), self.block_size])
            for sec, data in self.blocks:
                payload.append(sec)
                payload += data
        return RawFrame(self.address, CMD_ISO_HOST, bytes(payload))

    def to_bytes(self) -> bytes:
        return self.to_frame().to_bytes()

    @classmethod
    def from_frame(cls, frame: RawFrame) -> ReadBlocksResponse:
        status, data = _response_payload(frame)
        if status != STATUS_OK:
            return cls(frame.address, status)
        if len(data) < 2:
            raise CodecError("read-blocks answer has no block count and size")
        count, size = data[0], data[1]
        if len(data) != 2 + count * (1 + size):
            raise CodecError(
                f"read-blocks answer announces {count} blocks of {size} bytes but carries {len(data) - 2} bytes"
            )
        step = 1 + size
        blocks = tuple((data[i], data[i + 1 : i + step]) for i in range(2, len(data), step))
        return cls(frame.address, status, size, blocks)
