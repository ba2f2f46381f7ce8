"""Byte codec of the Kerong CU-style lock-control board (RS-485, 19200 8N1). Pure bytes, no I/O.

Requests (5 bytes)::

    +------+------+------+------+------+
    | STX  | ADDR | CMD  | ETX  | SUM  |
    | 0x02 |      |      | 0x03 |      |
    +------+------+------+------+------+
    ADDR = board << 4 | (lock - 1)      locks are numbered 1..16
    CMD  = 0x31 unlock one lock, 0x30 read the state of a board (lock nibble 0)

State reply to both commands (9 bytes)::

    +------+------+------+-------+--------+-------+--------+------+------+
    | STX  | ADDR | 0x35 | L1-8  | L9-16  | S1-8  | S9-16  | ETX  | SUM  |
    +------+------+------+-------+--------+-------+--------+------+------+
    ADDR = board << 4; bit 0 of L1-8 is lock 1, bit 0 of L9-16 is lock 9;
    L = lock bits, S = door-sensor bits, raw (the polarity is the device layer's business).

SUM is the low byte of the sum of every byte before it.
"""

from __future__ import annotations

from dataclasses import dataclass

from kiosk.drivers.errors import CodecError

STX, ETX = 0x02, 0x03
CMD_READ_STATE, CMD_UNLOCK, CMD_STATE = 0x30, 0x31, 0x35
LOCKS_PER_BOARD = 16
MAX_BOARD = 15
REQUEST_LEN = 5
STATE_LEN = 9
_FRAME_LEN = {CMD_READ_STATE: REQUEST_LEN, CMD_UNLOCK: REQUEST_LEN, CMD_STATE: STATE_LEN}


def checksum(data: bytes) -> int:
    """Low byte of the sum of ``data``."""
    return sum(data) & 0xFF


def _seal(body: bytes) -> bytes:
    framed = bytes([STX]) + body + bytes([ETX])
    return framed + bytes([checksum(framed)])


def _check_frame(data: bytes, cmd: int, length: int) -> None:
    if len(data) != length:
        raise CodecError(f"lock board frame must be {length} bytes, got {len(data)}")
    if data[0] != STX:
        raise CodecError(f"lock board frame must start with 0x02, got 0x{data[0]:02x}")
    if data[2] != cmd:
        raise CodecError(f"expected lock board command 0x{cmd:02x}, got 0x{data[2]:02x}")
    if data[-2] != ETX:
        raise CodecError(f"lock board frame must end with 0x03 before the checksum, got 0x{data[-2]:02x}")
    if data[-1] != checksum(data[:-1]):
        raise CodecError(
            f"lock board checksum mismatch: frame says 0x{data[-1]:02x}, bytes sum to 0x{checksum(data[:-1]):02x}"
        )


def _check_board(board: int) -> None:
    if not 0 <= board <= MAX_BOARD:
        raise ValueError(f"board number must be 0..{MAX_BOARD}, got {board}")


@dataclass(frozen=True)
class UnlockRequest:
    """Command 0x31: pulse one lock open."""

    board: int
    lock: int

    def __post_init__(self) -> None:
        _check_board(self.board)
        if not 1 <= self.lock <= LOCKS_PER_BOARD:
            raise ValueError(f"lock number must be 1..{LOCKS_PER_BOARD}, got {self.lock}")

    def to_bytes(self) -> bytes:
        return _seal(bytes([self.board << 4 | (self.lock - 1), CMD_UNLOCK]))

    @classmethod
    def from_bytes(cls, data: bytes) -> UnlockRequest:
        _check_frame(data, CMD_UNLOCK, REQUEST_LEN)
        return cls(board=data[1] >> 4, lock=(data[1] & 0x0F) + 1)


@dataclass(frozen=True)
class ReadStateRequest:
    """Command 0x30: ask a board for its lock and sensor bits."""

    board: int

    def __post_init__(self) -> None:
        _check_board(self.board)

    def to_bytes(self) -> bytes:
        return _seal(bytes([self.board << 4, CMD_READ_STATE]))

    @classmethod
    def from_bytes(cls, data: bytes) -> ReadStateRequest:
        # Boards ignore the lock nibble of a state read, and so do we.
        _check_frame(data, CMD_READ_STATE, REQUEST_LEN)
        return cls(board=data[1] >> 4)


@dataclass(frozen=True)
class StateResponse:
    """Reply 0x35: raw lock and sensor bits of one board; bit i is lock i + 1."""

    board: int
    locks: int
    sensors: int

    def __post_init__(self) -> None:
        _check_board(self.board)
        for name, value in (("locks", self.locks), ("sensors", self.sensors)):
            if not 0 <= value <= 0xFFFF:
                raise ValueError(f"{name} must be a 16-bit value, got {value}")

    def to_bytes(self) -> bytes:
        return _seal(
            bytes(
                [
                    self.board << 4,
                    CMD_STATE,
                    self.locks & 0xFF,
                    self.locks >> 8,
                    self.sensors & 0xFF,
                    self.sensors >> 8,
                ]
            )
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> StateResponse:
        # Some boards echo the lock nibble of the request in ADDR: only the board nibble counts.
        _check_frame(data, CMD_STATE, STATE_LEN)
        return cls(board=data[1] >> 4, locks=data[3] | data[4] << 8, sensors=data[5] | data[6] << 8)

    def lock_bit(self, lock: int) -> int:
        """Raw lock bit (0 or 1) of lock number ``lock`` (1..16)."""
        return (self.locks >> (lock - 1)) & 1

    def sensor_bit(self, lock: int) -> int:
        """Raw door-sensor bit (0 or 1) of lock number ``lock`` (1..16)."""
        return (self.sensors >> (lock - 1)) & 1


Frame = UnlockRequest | ReadStateRequest | StateResponse
_PARSERS = {CMD_READ_STATE: ReadStateRequest, CMD_UNLOCK: UnlockRequest, CMD_STATE: StateResponse}


def decode(buf: bytes) -> tuple[int, Frame | None]:
    """Find the first valid frame in ``buf``.

    Returns ``(consumed, frame)``: drop ``consumed`` bytes from the front of the buffer. With no complete
    frame yet, ``frame`` is None and ``consumed`` covers only garbage, so a partial frame stays in the
    buffer. A candidate STX whose command, ETX or SUM is wrong is skipped one byte at a time. Never raises.
    """
    buf = bytes(buf)
    start = 0
    while True:
        start = buf.find(STX, start)
        if start < 0:
            return len(buf), None
        if len(buf) - start < 3:
            return start, None
        length = _FRAME_LEN.get(buf[start + 2])
        if length is None:
            start += 1
            continue
        if len(buf) - start < length:
            return start, None
        candidate = buf[start : start + length]
        try:
            frame = _PARSERS[candidate[2]].from_bytes(candidate)
        except ValueError:
            start += 1
            continue
        return start + length, frame
