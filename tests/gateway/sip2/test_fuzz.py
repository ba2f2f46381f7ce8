"""Hypothesis fuzz of the SIP2 decoder and framing: whatever the bytes, only Sip2FormatError may escape."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.sip2.codec import decode_frame, encode, next_line
from gateway.sip2.errors import Sip2FormatError
from gateway.sip2.messages import LAYOUTS
from tests.gateway.sip2.test_codec import EVERY

FUZZ = settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CHARSETS = st.sampled_from(["utf-8", "gb18030"])
VALID = st.tuples(st.sampled_from(EVERY), CHARSETS, st.booleans(), st.integers(0, 9)).map(
    lambda t: (encode(t[0], seq=t[3], charset=t[1], error_detection=t[2]), t[1]))


def _decode_or_format_error(data: bytes, charset: str) -> None:
    try:
        frame = decode_frame(data, charset)
    except Sip2FormatError:
        return
    assert frame.message.command in LAYOUTS


@FUZZ
@given(st.binary(max_size=400), CHARSETS)
def test_any_bytes(data, charset):
    _decode_or_format_error(data, charset)


@FUZZ
@given(st.sampled_from(sorted(LAYOUTS)), st.binary(max_size=200), CHARSETS)
def test_any_bytes_after_a_known_command(command, rest, charset):
    _decode_or_format_error(command.encode() + rest, charset)


@FUZZ
@given(VALID, st.data())
def test_mutated_valid_messages(valid, data):
    message, charset = valid
    body = bytearray(message[:-1])
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
        at = data.draw(st.integers(0, max(0, len(body) - 1)))
        if op == "flip" and body:
            body[at] = data.draw(st.integers(0, 255))
        elif op == "insert":
            body[at:at] = data.draw(st.binary(min_size=1, max_size=8))
        elif op == "delete" and body:
            del body[at]
        elif op == "truncate":
            del body[at:]
    _decode_or_format_error(bytes(body) + b"\r", charset)


@FUZZ
@given(st.lists(st.binary(max_size=120), max_size=12), st.integers(1, 300))
def test_framing_any_chunks(chunks, limit):
    buf = bytearray()
    for chunk in chunks:
        buf += chunk
        while True:
            try:
                consumed, line = next_line(buf, limit)
            except Sip2FormatError:
                return
            assert 0 <= consumed <= len(buf)
            del buf[:consumed]
            if line is None:
                break
            assert b"\r" not in line and len(line) <= limit
