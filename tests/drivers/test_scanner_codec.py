"""Line codec of the serial 2D scanner: terminators, split input, bad and over-long lines."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kiosk.drivers.scanner.codec import MAX_LINE, ScanLine, decode, encode_line

from .conftest import decode_stream, one_byte_at_a_time


def test_encode_line_ends_with_crlf():
    assert encode_line("ABC") == b"ABC\r\n"


@pytest.mark.parametrize(
    ("wire", "expected"),
    [
        (b"ABC\r\n", (5, ScanLine("ABC"))),
        (b"ABC\r", (4, ScanLine("ABC"))),
        (b"ABC\n", (4, ScanLine("ABC"))),
        (b"\r\n\r\nABC\n", (8, ScanLine("ABC"))),
        (b"ABC\nDEF\n", (4, ScanLine("ABC"))),
        (b"ABC", (0, None)),
        (b"\r\n", (2, None)),
        (b"", (0, None)),
        ("读者证:123\r\n".encode(), (len("读者证:123\r\n".encode()), ScanLine("读者证:123"))),
    ],
)
def test_vectors(wire, expected):
    assert decode(wire) == expected


def test_cr_and_lf_split_across_reads_give_one_line():
    assert decode_stream(decode, [b"ABC\r", b"\nDEF\r", b"\n"]) == ([ScanLine("ABC"), ScanLine("DEF")], b"")


def test_invalid_utf8_is_an_error_line():
    consumed, line = decode(b"AB\xff\xfe\r\n")
    assert consumed == 6
    assert line.error == "line is not valid UTF-8 text"


def test_control_character_is_an_error_line():
    _, line = decode(b"AB\x1bC\n")
    assert line.error == "line contains the control character 0x1b"


def test_overlong_terminated_line_is_an_error_line():
    _, line = decode(b"A" * 300 + b"\r\n")
    assert line.error == f"line of 300 bytes is longer than {MAX_LINE}"


def test_line_of_exactly_max_length_is_fine():
    assert decode(b"A" * MAX_LINE + b"\n") == (MAX_LINE + 1, ScanLine("A" * MAX_LINE))
    assert decode(b"A" * MAX_LINE) == (0, None)


def test_overlong_line_without_terminator_is_discarded_as_error():
    consumed, line = decode(b"A" * (MAX_LINE + 1))
    assert consumed == MAX_LINE + 1
    assert line.error is not None and not line.terminated


printable = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp", "Cf", "Co", "Cn", "Zs")), min_size=1)


@given(
    st.lists(printable.filter(lambda t: len(t.encode()) <= MAX_LINE), min_size=1, max_size=5),
    st.sampled_from(["\r", "\n", "\r\n"]),
)
def test_stream_one_byte_at_a_time(texts, end):
    wire = b"".join(t.encode() + end.encode() for t in texts)
    assert decode_stream(decode, one_byte_at_a_time(wire)) == ([ScanLine(t) for t in texts], b"")


@given(st.binary(max_size=600))
def test_decode_never_raises(junk):
    consumed, line = decode(junk)
    assert 0 <= consumed <= len(junk)
    assert line is None or consumed > 0
