"""Library tag data: ISO 28560-3 fixed-length ("Danish") model, 32 bytes in blocks 0-7. Pure bytes.

::

    byte  0       version (high nibble, 1) | usage (low nibble)
    byte  1       parts in set
    byte  2       part number
    bytes 3-18    primary item identifier (barcode), NUL-padded ASCII
    bytes 19-20   CRC, LSB first
    bytes 21-22   country, ASCII
    bytes 23-31   ISIL of the owner library, NUL-padded ASCII

CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF) over bytes 0-18, then 21-31, then two zero bytes.
Some tags store each 4-byte block reversed; decoding tries that order when the CRC fails.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

TAG_DATA_LEN = 32
BLOCK_SIZE = 4
ITEM_ID_LEN = 16
COUNTRY_LEN = 2
ISIL_LEN = 9


class Usage(IntEnum):
    CIRCULATING = 1
    REFERENCE = 2
    DISCARDED = 7
    PATRON_CARD = 8


class TagDecodeError(ValueError):
    """Tag memory that is not a valid ISO 28560-3 fixed-length record; the message says why."""


def crc_ccitt(data: bytes) -> int:
    """CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, not reflected, no final xor."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


def _record_crc(data: bytes) -> int:
    return crc_ccitt(data[0:19] + data[21:32] + b"\x00\x00")


def _reverse_blocks(data: bytes) -> bytes:
    return b"".join(data[i : i + BLOCK_SIZE][::-1] for i in range(0, len(data), BLOCK_SIZE))


def _ascii_field(name: str, value: str, size: int) -> bytes:
    try:
        raw = value.encode("ascii")
    except UnicodeEncodeError:
        raise ValueError(f"{name} {value!r} is not ASCII") from None
    if len(raw) > size:
        raise ValueError(f"{name} {value!r} is longer than {size} characters")
    if b"\x00" in raw:
        raise ValueError(f"{name} {value!r} contains a NUL character")
    return raw.ljust(size, b"\x00")


def _text_field(name: str, raw: bytes) -> str:
    text = raw.rstrip(b"\x00")
    if b"\x00" in text or any(not 0x20 <= b < 0x7F for b in text):
        raise TagDecodeError(f"{name} is not ASCII text: {raw.hex(' ')}")
    return text.decode("ascii")


@dataclass(frozen=True)
class LibraryTag:
    """The decoded contents of a library tag."""

    item_id: str
    usage: int = Usage.CIRCULATING
    version: int = 1
    parts_in_set: int = 1
    part_number: int = 1
    country: str = "CN"
    isil: str = "CN-310112"

    def encode(self, reversed_blocks: bool = False) -> bytes:
        """The 32 bytes of tag memory; ``reversed_blocks`` stores each 4-byte block reversed."""
        if not self.item_id:
            raise ValueError("item id is empty")
        for name, value in (("version", self.version), ("usage", self.usage)):
            if not 0 <= value <= 0x0F:
                raise ValueError(f"{name} must be 0..15, got {value}")
        for name, value in (("parts in set", self.parts_in_set), ("part number", self.part_number)):
            if not 0 <= value <= 0xFF:
                raise ValueError(f"{name} must be 0..255, got {value}")
        data = bytearray(TAG_DATA_LEN)
        data[0] = self.version << 4 | self.usage
        data[1] = self.parts_in_set
        data[2] = self.part_number
        data[3:19] = _ascii_field("item id", self.item_id, ITEM_ID_LEN)
        data[21:23] = _ascii_field("country", self.country, COUNTRY_LEN)
        data[23:32] = _ascii_field("ISIL", self.isil, ISIL_LEN)
        crc = _record_crc(bytes(data))
        data[19], data[20] = crc & 0xFF, crc >> 8
        return _reverse_blocks(bytes(data)) if reversed_blocks else bytes(data)


def decode_tag(data: bytes) -> tuple[LibraryTag, bool]:
    """Decode 32 bytes of tag memory; returns ``(tag, was_reversed)``. Raises TagDecodeError."""
    data = bytes(data)
    if len(data) != TAG_DATA_LEN:
        raise TagDecodeError(f"tag data is {len(data)} bytes, expected {TAG_DATA_LEN}")
    for candidate, was_reversed in ((data, False), (_reverse_blocks(data), True)):
        if candidate[19] | candidate[20] << 8 == _record_crc(candidate):
            break
    else:
        raise TagDecodeError("CRC mismatch in both byte orders")
    item_id = _text_field("item id", candidate[3:19])
    if not item_id:
        raise TagDecodeError("item id is empty")
    usage_nibble = candidate[0] & 0x0F
    usage = Usage(usage_nibble) if usage_nibble in Usage._value2member_map_ else usage_nibble
    tag = LibraryTag(
        item_id=item_id,
        usage=usage,
        version=candidate[0] >> 4,
        parts_in_set=candidate[1],
        part_number=candidate[2],
        country=_text_field("country", candidate[21:23]),
        isil=_text_field("ISIL", candidate[23:32]),
    )
    return tag, was_reversed
