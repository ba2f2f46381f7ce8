"""Byte vectors, round trips, split and garbage input of the lock-board codec."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kiosk.drivers.errors import CodecError
from kiosk.drivers.lockboard.codec import (
    ReadStateRequest,
    StateResponse,
    UnlockRequest,
    checksum,
    decode,
)

from .conftest import decode_stream, one_byte_at_a_time

VECTORS = [
    (UnlockRequest(board=0, lock=1), "02 00 31 03 36"),
    (UnlockRequest(board=0, lock=16), "02 0f 31 03 45"),
    (UnlockRequest(board=1, lock=16), "02 1f 31 03 55"),
    (UnlockRequest(board=15, lock=3), "02 f2 31 03 28"),
    (ReadStateRequest(board=0), "02 00 30 03 35"),
    (ReadStateRequest(board=1), "02 10 30 03 45"),
    (StateResponse(board=0, locks=0x0001, sensors=0x8000), "02 00 35 01 00 00 80 03 bb"),
    (StateResponse(board=2, locks=0xFFFF, sensors=0x0000), "02 20 35 ff ff 00 00 03 58"),
    (StateResponse(board=0, locks=0x0100, sensors=0x0002), "02 00 35 00 01 02 00 03 3d"),
]

boards = st.integers(0, 15)
frames = st.one_of(
    st.builds(UnlockRequest, board=boards, lock=st.integers(1, 16)),
    st.builds(ReadStateRequest, board=boards),
    st.builds(StateResponse, board=boards, locks=st.integers(0, 0xFFFF), sensors=st.integers(0, 0xFFFF)),
)


def test_checksum_is_low_byte_of_sum():
    assert checksum(b"\x02\x00\x31\x03") == 0x36
    assert checksum(b"\xff\xff\x03") == 0x01


@pytest.mark.parametrize(("frame", "wire"), VECTORS)
def test_encodes_hand_written_vectors(frame, wire):
    assert frame.to_bytes() == bytes.fromhex(wire)


@pytest.mark.parametrize(("frame", "wire"), VECTORS)
def test_decodes_hand_written_vectors(frame, wire):
    assert decode(bytes.fromhex(wire)) == (len(bytes.fromhex(wire)), frame)
    assert type(frame).from_bytes(bytes.fromhex(wire)) == frame


def test_lock_one_is_bit_zero_of_first_byte():
    state = StateResponse.from_bytes(bytes.fromhex("02 00 35 01 80 00 01 03 bc"))
    assert state.lock_bit(1) == 1 and state.lock_bit(16) == 1 and state.lock_bit(2) == 0
    assert state.sensor_bit(9) == 1 and state.sensor_bit(1) == 0


def test_state_reply_with_lock_nibble_in_addr_is_accepted():
    wire = bytearray(StateResponse(board=1, locks=3, sensors=0).to_bytes())
    wire[1] = 0x1A
    wire[-1] = checksum(wire[:-1])
    assert decode(bytes(wire)) == (9, StateResponse(board=1, locks=3, sensors=0))


@pytest.mark.parametrize(
    ("cls", "wire", "why"),
    [
        (UnlockRequest, "02 00 31 03 37", "checksum"),
        (UnlockRequest, "02 00 31 04 37", "0x03"),
        (UnlockRequest, "02 00 30 03 35", "command"),
        (StateResponse, "02 00 35 00 00 00 00 03", "9 bytes"),
    ],
)
def test_from_bytes_rejects_bad_frames(cls, wire, why):
    with pytest.raises(CodecError, match=why):
        cls.from_bytes(bytes.fromhex(wire))


@pytest.mark.parametrize("bad", [dict(board=16, lock=1), dict(board=0, lock=0), dict(board=0, lock=17)])
def test_unlock_request_validates_numbers(bad):
    with pytest.raises(ValueError):
        UnlockRequest(**bad)


def test_state_response_validates_bits():
    with pytest.raises(ValueError):
        StateResponse(board=0, locks=0x10000, sensors=0)


def test_partial_frame_is_kept():
    wire = UnlockRequest(0, 1).to_bytes()
    for cut in range(len(wire)):
        assert decode(wire[:cut]) == (0, None)


def test_garbage_without_stx_is_dropped():
    assert decode(b"\x00\xff\x35\x03") == (4, None)


def test_garbage_before_partial_frame_is_dropped_frame_kept():
    assert decode(b"\xaa\xbb\x02\x00") == (2, None)


def test_bad_checksum_skips_one_byte_and_resyncs():
    good = ReadStateRequest(1).to_bytes()
    bad = bytearray(UnlockRequest(0, 1).to_bytes())
    bad[-1] ^= 0xFF
    consumed, frame = decode(bytes(bad) + good)
    assert frame == ReadStateRequest(1)
    assert consumed == len(bad) + len(good)


def test_unknown_command_after_stx_is_skipped():
    good = UnlockRequest(3, 4).to_bytes()
    assert decode(b"\x02\x00\x99" + good) == (3 + len(good), UnlockRequest(3, 4))


@given(frames)
def test_round_trip(frame):
    assert type(frame).from_bytes(frame.to_bytes()) == frame
    assert decode(frame.to_bytes()) == (len(frame.to_bytes()), frame)


@given(st.lists(frames, min_size=1, max_size=6))
def test_stream_split_one_byte_at_a_time(items):
    wire = b"".join(f.to_bytes() for f in items)
    assert decode_stream(decode, one_byte_at_a_time(wire)) == (items, b"")


@given(
    st.lists(st.tuples(st.binary(max_size=12).map(lambda b: b.replace(b"\x02", b"")), frames), min_size=1, max_size=5),
    st.data(),
)
def test_garbage_between_frames_is_skipped(items, data):
    wire = b"".join(garbage + frame.to_bytes() for garbage, frame in items)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(wire)), max_size=6)))
    chunks = [wire[a:b] for a, b in zip([0, *cuts], [*cuts, len(wire)])]
    assert decode_stream(decode, chunks) == ([frame for _, frame in items], b"")


@given(st.binary(max_size=64))
def test_decode_never_raises(junk):
    consumed, frame = decode(junk)
    assert 0 <= consumed <= len(junk)
    assert frame is None or consumed > 0


@given(st.binary(max_size=40), frames)
def test_frame_after_arbitrary_junk_comes_out_given_enough_bytes(junk, frame):
    # Junk may hold a candidate STX that waits for up to 9 bytes; frames after it always come out.
    wire = junk + frame.to_bytes() + frame.to_bytes()
    found, _ = decode_stream(decode, [wire])
    assert frame in found
