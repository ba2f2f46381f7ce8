"""Byte vectors, round trips, split and garbage input of the FEIG ISO-Host codec."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kiosk.drivers.errors import CodecError
from kiosk.drivers.rfid.codec import (
    CMD_ISO_HOST,
    INVENTORY_MODE_MORE,
    MAX_TAGS_PER_FRAME,
    STATUS_MORE_DATA,
    STATUS_NO_TRANSPONDER,
    STATUS_OK,
    STATUS_RF_ERROR,
    InventoryRequest,
    InventoryResponse,
    RawFrame,
    ReadBlocksRequest,
    ReadBlocksResponse,
    TagEntry,
    crc16,
    decode,
    parse_request,
)

from .conftest import decode_stream, one_byte_at_a_time

UID_A = bytes.fromhex("E004010012345678")
UID_B = bytes.fromhex("E0040100ABCDEF01")


def with_crc(hex_body: str) -> bytes:
    body = bytes.fromhex(hex_body)
    crc = crc16(body)
    return body + bytes([crc & 0xFF, crc >> 8])


def test_crc16_check_value_is_mcrf4xx():
    assert crc16(b"123456789") == 0x6F91


def test_crc16_of_empty_is_preset():
    assert crc16(b"") == 0xFFFF


VECTORS = [
    (InventoryRequest(address=0xFF), "07 ff b0 01 00 1c 56"),
    (InventoryRequest(address=1), "07 01 b0 01 00 75 8f"),
    (InventoryResponse(address=1, status=STATUS_NO_TRANSPONDER), "06 01 b0 01 80 39"),
]


@pytest.mark.parametrize(("message", "wire"), VECTORS)
def test_hand_checked_vectors(message, wire):
    assert message.to_bytes() == bytes.fromhex(wire)


@pytest.mark.parametrize(
    ("message", "body"),
    [
        (InventoryRequest(address=2, mode=INVENTORY_MODE_MORE), "07 02 b0 01 80"),
        (
            ReadBlocksRequest(address=3, uid=UID_A, first_block=0, count=8),
            "11 03 b0 23 01 e0 04 01 00 12 34 56 78 00 08",
        ),
        (InventoryResponse(address=1, status=STATUS_OK), "07 01 b0 00 00"),
        (
            InventoryResponse(address=1, status=STATUS_OK, tags=(TagEntry(UID_A), TagEntry(UID_B, dsfid=0x11))),
            "1b 01 b0 00 02 03 00 e0 04 01 00 12 34 56 78 03 11 e0 04 01 00 ab cd ef 01",
        ),
        (InventoryResponse(address=1, status=STATUS_RF_ERROR), "06 01 b0 83"),
        (
            ReadBlocksResponse(4, STATUS_OK, block_size=4, blocks=((0, b"\x11\x22\x33\x44"), (1, b"ABCD"))),
            "12 04 b0 00 02 04 00 11 22 33 44 01 41 42 43 44",
        ),
        (ReadBlocksResponse(address=4, status=STATUS_NO_TRANSPONDER), "06 04 b0 01"),
    ],
)
def test_layout_vectors(message, body):
    wire = with_crc(body)
    assert message.to_bytes() == wire
    consumed, frame = decode(wire)
    assert consumed == len(wire)
    assert frame == message.to_frame()
    if isinstance(message, (InventoryRequest, ReadBlocksRequest)):
        assert parse_request(frame) == message
    else:
        assert type(message).from_frame(frame) == message


def test_raw_frame_len_counts_whole_frame():
    wire = RawFrame(1, CMD_ISO_HOST, b"\x01\x00").to_bytes()
    assert wire[0] == len(wire) == 7


def test_raw_frame_rejects_oversize_payload():
    with pytest.raises(ValueError):
        RawFrame(1, CMD_ISO_HOST, bytes(251))
    assert len(RawFrame(1, CMD_ISO_HOST, bytes(250)).to_bytes()) == 255


def test_inventory_response_limits_tags_per_frame():
    tags = tuple(TagEntry(bytes([0xE0, 0, 0, 0, 0, 0, 0, i])) for i in range(MAX_TAGS_PER_FRAME + 1))
    full = InventoryResponse(1, STATUS_MORE_DATA, tags[:-1])
    assert len(full.to_bytes()) <= 255
    with pytest.raises(ValueError):
        InventoryResponse(1, STATUS_OK, tags)


def test_error_status_carries_no_tags():
    with pytest.raises(ValueError):
        InventoryResponse(1, STATUS_RF_ERROR, (TagEntry(UID_A),))


@pytest.mark.parametrize(
    ("frame", "why"),
    [
        (RawFrame(1, 0x65, b""), "not ISO-Host"),
        (RawFrame(1, CMD_ISO_HOST, b""), "sub-command"),
        (RawFrame(1, CMD_ISO_HOST, b"\x01"), "mode byte"),
        (RawFrame(1, CMD_ISO_HOST, b"\x23\x01" + UID_A), "read-blocks"),
        (RawFrame(1, CMD_ISO_HOST, b"\x23\x00" + UID_A + b"\x00\x08"), "addressed"),
        (RawFrame(1, CMD_ISO_HOST, b"\x24"), "not supported"),
    ],
)
def test_parse_request_rejects(frame, why):
    with pytest.raises(CodecError, match=why):
        parse_request(frame)


@pytest.mark.parametrize(
    ("cls", "payload", "why"),
    [
        (InventoryResponse, b"", "STATUS"),
        (InventoryResponse, b"\x00", "tag count"),
        (InventoryResponse, b"\x00\x02" + bytes(10), "announces 2 tags"),
        (ReadBlocksResponse, b"\x00\x01", "block count"),
        (ReadBlocksResponse, b"\x00\x02\x04" + bytes(5), "announces 2 blocks"),
    ],
)
def test_from_frame_rejects_inconsistent_payloads(cls, payload, why):
    with pytest.raises(CodecError, match=why):
        cls.from_frame(RawFrame(1, CMD_ISO_HOST, payload))


def test_from_frame_rejects_other_command():
    with pytest.raises(CodecError, match="0x65"):
        InventoryResponse.from_frame(RawFrame(1, 0x65, b"\x00\x00"))


def test_raw_from_bytes_rejects_len_and_crc():
    wire = bytearray(InventoryRequest(1).to_bytes())
    with pytest.raises(CodecError, match="LEN"):
        RawFrame.from_bytes(bytes(wire[:-1]))
    wire[-1] ^= 1
    with pytest.raises(CodecError, match="CRC"):
        RawFrame.from_bytes(bytes(wire))


def test_partial_frame_is_kept():
    wire = InventoryResponse(1, STATUS_OK, (TagEntry(UID_A),)).to_bytes()
    for cut in range(len(wire)):
        assert decode(wire[:cut]) == (0, None)


def test_short_len_bytes_are_garbage():
    assert decode(b"\x00\x01\x02\x03\x04") == (5, None)


def test_corrupted_crc_is_skipped_and_next_frame_found():
    bad = bytearray(InventoryRequest(1).to_bytes())
    bad[-2] ^= 0x55
    good = InventoryRequest(2).to_bytes()
    assert decode_stream(decode, [bytes(bad) + good]) == ([InventoryRequest(2).to_frame()], b"")


def test_unknown_command_byte_is_noise():
    frame = bytearray(InventoryRequest(1).to_bytes())
    frame[2] = 0x01
    consumed, found = decode(bytes(frame) + b"\x00\x00")
    assert found is None and consumed >= 3


uids = st.binary(min_size=8, max_size=8)
tag_entries = st.builds(TagEntry, uid=uids, dsfid=st.integers(0, 255), tr_type=st.integers(0, 255))
inventory_responses = st.one_of(
    st.builds(
        InventoryResponse,
        address=st.integers(0, 255),
        status=st.sampled_from([STATUS_OK, STATUS_MORE_DATA]),
        tags=st.lists(tag_entries, max_size=MAX_TAGS_PER_FRAME).map(tuple),
    ),
    st.builds(
        InventoryResponse,
        address=st.integers(0, 255),
        status=st.integers(0, 255).filter(lambda s: s not in (STATUS_OK, STATUS_MORE_DATA)),
    ),
)


@st.composite
def read_blocks_responses(draw):
    size = draw(st.integers(0, 8))
    count = draw(st.integers(0, min(255, 247 // (size + 1))))
    blocks = tuple((draw(st.integers(0, 255)), draw(st.binary(min_size=size, max_size=size))) for _ in range(count))
    return ReadBlocksResponse(draw(st.integers(0, 255)), STATUS_OK, size, blocks)


requests = st.one_of(
    st.builds(InventoryRequest, address=st.integers(0, 255), mode=st.integers(0, 255)),
    st.builds(
        ReadBlocksRequest,
        address=st.integers(0, 255),
        uid=uids,
        first_block=st.integers(0, 255),
        count=st.integers(0, 255),
    ),
)


@given(inventory_responses)
def test_inventory_response_round_trip(message):
    consumed, frame = decode(message.to_bytes())
    assert consumed == len(message.to_bytes())
    assert InventoryResponse.from_frame(frame) == message


@given(read_blocks_responses())
def test_read_blocks_response_round_trip(message):
    _, frame = decode(message.to_bytes())
    assert ReadBlocksResponse.from_frame(frame) == message
    assert message.data() == b"".join(b for _, b in message.blocks)


@given(requests)
def test_request_round_trip(message):
    _, frame = decode(message.to_bytes())
    assert parse_request(frame) == message


@given(st.lists(st.one_of(requests, inventory_responses), min_size=1, max_size=5))
def test_stream_split_one_byte_at_a_time(messages):
    wire = b"".join(m.to_bytes() for m in messages)
    assert decode_stream(decode, one_byte_at_a_time(wire)) == ([m.to_frame() for m in messages], b"")


@given(
    st.lists(st.tuples(st.binary(max_size=10), st.one_of(requests, inventory_responses)), min_size=1, max_size=4),
    st.data(),
)
def test_garbage_before_and_between_frames_is_skipped(items, data):
    # A junk byte may pose as the LEN of a long frame; it falls away once that many bytes have arrived
    # (in service the session also drops stale input before each request). Padding resolves every candidate.
    padding = [InventoryRequest(9)] * 40
    wire = b"".join(garbage + m.to_bytes() for garbage, m in items) + b"".join(m.to_bytes() for m in padding)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(wire)), max_size=5)))
    chunks = [wire[a:b] for a, b in zip([0, *cuts], [*cuts, len(wire)])]
    frames, _ = decode_stream(decode, chunks)
    expected = [m.to_frame() for _, m in items]
    assert frames[: len(expected)] == expected


@pytest.mark.parametrize("noise", [b"\xff", b"\xff\xff", b"\x80\x00", b"\xc8\x01\x02"])
def test_line_noise_before_a_reply_falls_away_at_once(noise):
    reply = InventoryResponse(1, STATUS_OK, (TagEntry(UID_A),)).to_bytes()
    assert decode(noise + reply) == (len(noise) + len(reply), RawFrame.from_bytes(reply))


@given(st.binary(max_size=300))
def test_decode_never_raises(junk):
    consumed, frame = decode(junk)
    assert 0 <= consumed <= len(junk)
    assert frame is None or consumed > 0


@given(st.binary(max_size=60))
def test_from_frame_and_parse_request_raise_only_codec_errors(payload):
    frame = RawFrame(1, CMD_ISO_HOST, payload)
    for parse in (InventoryResponse.from_frame, ReadBlocksResponse.from_frame, parse_request):
        try:
            parse(frame)
        except CodecError:
            pass
