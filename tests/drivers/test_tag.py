"""ISO 28560-3 fixed-length tag data: CRC, layout, reversed blocks, and why a tag does not decode."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kiosk.drivers.rfid.tag import LibraryTag, TagDecodeError, Usage, crc_ccitt, decode_tag


def test_crc_ccitt_false_check_value():
    assert crc_ccitt(b"123456789") == 0x29B1


def test_layout_by_hand():
    data = LibraryTag("31234567890123", usage=Usage.REFERENCE, parts_in_set=2, part_number=1).encode()
    assert len(data) == 32
    assert data[0] == 0x12
    assert data[1:3] == b"\x02\x01"
    assert data[3:19] == b"31234567890123\x00\x00"
    assert data[21:23] == b"CN"
    assert data[23:32] == b"CN-310112"
    crc = crc_ccitt(data[0:19] + data[21:32] + b"\x00\x00")
    assert data[19:21] == bytes([crc & 0xFF, crc >> 8])


def test_reversed_blocks_store_each_block_backwards():
    tag = LibraryTag("12345678")
    normal, backwards = tag.encode(), tag.encode(reversed_blocks=True)
    for i in range(0, 32, 4):
        assert backwards[i : i + 4] == normal[i : i + 4][::-1]
    assert decode_tag(normal) == (tag, False)
    assert decode_tag(backwards) == (tag, True)


def test_usage_comes_back_as_enum():
    tag, _ = decode_tag(LibraryTag("P0001", usage=Usage.PATRON_CARD).encode())
    assert tag.usage is Usage.PATRON_CARD


def test_unknown_usage_comes_back_as_int():
    tag, _ = decode_tag(LibraryTag("X1", usage=5).encode())
    assert tag.usage == 5


def test_crc_failure_says_both_orders():
    data = bytearray(LibraryTag("12345678").encode())
    data[5] ^= 0x01
    with pytest.raises(TagDecodeError, match="CRC mismatch in both byte orders"):
        decode_tag(bytes(data))


def test_blank_tag_does_not_decode():
    with pytest.raises(TagDecodeError, match="CRC"):
        decode_tag(bytes(32))


def _with_fixed_crc(data: bytearray) -> bytes:
    crc = crc_ccitt(bytes(data[0:19] + data[21:32]) + b"\x00\x00")
    data[19], data[20] = crc & 0xFF, crc >> 8
    return bytes(data)


def test_non_ascii_item_id_is_refused():
    data = bytearray(LibraryTag("12345678").encode())
    data[4] = 0xC3
    with pytest.raises(TagDecodeError, match="item id is not ASCII"):
        decode_tag(_with_fixed_crc(data))


def test_item_id_with_embedded_nul_is_refused():
    data = bytearray(LibraryTag("12345678").encode())
    data[5] = 0x00
    with pytest.raises(TagDecodeError, match="item id is not ASCII"):
        decode_tag(_with_fixed_crc(data))


def test_empty_item_id_is_refused():
    data = bytearray(LibraryTag("1").encode())
    data[3] = 0x00
    with pytest.raises(TagDecodeError, match="item id is empty"):
        decode_tag(_with_fixed_crc(data))


@pytest.mark.parametrize("size", [0, 31, 33])
def test_wrong_length_is_refused(size):
    with pytest.raises(TagDecodeError, match="expected 32"):
        decode_tag(bytes(size))


@pytest.mark.parametrize(
    "tag",
    [
        LibraryTag("12345678901234567"),
        LibraryTag(""),
        LibraryTag("书"),
        LibraryTag("1", country="CHN"),
        LibraryTag("1", isil="CN-3101120"),
        LibraryTag("1", usage=16),
        LibraryTag("1", parts_in_set=256),
    ],
)
def test_encode_refuses_what_does_not_fit(tag):
    with pytest.raises(ValueError):
        tag.encode()


ascii_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E))


@given(
    st.builds(
        LibraryTag,
        item_id=ascii_text.filter(lambda t: t and t == t.rstrip("\x00")).map(lambda t: t[:16]),
        usage=st.integers(0, 15),
        version=st.integers(0, 15),
        parts_in_set=st.integers(0, 255),
        part_number=st.integers(0, 255),
        country=ascii_text.map(lambda t: t[:2]),
        isil=ascii_text.map(lambda t: t[:9]),
    ),
    st.booleans(),
)
def test_round_trip(tag, reversed_blocks):
    decoded, was_reversed = decode_tag(tag.encode(reversed_blocks=reversed_blocks))
    assert decoded == tag
    data = tag.encode()
    palindromic = all(data[i : i + 4] == data[i : i + 4][::-1] for i in range(0, 32, 4))
    assert was_reversed == (reversed_blocks and not palindromic)


@given(st.binary(min_size=32, max_size=32))
def test_decode_raises_only_tag_decode_error(data):
    try:
        decode_tag(data)
    except TagDecodeError:
        pass
