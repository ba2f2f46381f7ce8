"""Line codec of the serial 2D scanner: one scan per line, ended by CR, LF or CRLF. Pure bytes.

::

    +-------------------------------+------------------+
    | scanned text (UTF-8, <= 256)  | CR | LF | CR LF  |
    +-------------------------------+------------------+

Empty lines are skipped. A line that is not printable UTF-8 text, or longer than MAX_LINE bytes, comes out
as a ``ScanLine`` with ``error`` set, so the device can report it instead of acting on it.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_LINE = 256
_TERMINATORS = b"\r\n"


@dataclass(frozen=True)
class ScanLine:
    """One scanned line; ``error`` says why it is unusable. ``terminated`` is False for an over-long line
    cut off before its end of line arrived: the rest of that line follows as another line."""

    text: str
    error: str | None = None
    terminated: bool = True


def encode_line(text: str) -> bytes:
    """The bytes a scanner sends for ``text``."""
    return text.encode("utf-8") + b"\r\n"


def _first_terminator(buf: bytes, start: int) -> int:
    positions = [p for p in (buf.find(b"\r", start), buf.find(b"\n", start)) if p >= 0]
    return min(positions) if positions else -1


def _line(raw: bytes) -> ScanLine:
    text = raw.decode("utf-8", errors="replace")
    if len(raw) > MAX_LINE:
        return ScanLine(text, f"line of {len(raw)} bytes is longer than {MAX_LINE}")
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return ScanLine(text, "line is not valid UTF-8 text")
    bad = next((ch for ch in text if not ch.isprintable()), None)
    if bad is not None:
        return ScanLine(text, f"line contains the control character 0x{ord(bad):02x}")
    return ScanLine(text)


def decode(buf: bytes) -> tuple[int, ScanLine | None]:
    """Find the first line in ``buf``; returns ``(consumed, line)``. Never raises.

    Leading CR/LF bytes (empty lines) are consumed without a line. A line longer than MAX_LINE with no end of
    line yet is consumed whole and returned as an error line with ``terminated=False``.
    """
    buf = bytes(buf)
    start = 0
    while start < len(buf) and buf[start] in _TERMINATORS:
        start += 1
    end = _first_terminator(buf, start)
    if end < 0:
        if len(buf) - start > MAX_LINE:
            raw = buf[start:]
            text = raw[:MAX_LINE].decode("utf-8", errors="replace")
            error = f"line of more than {MAX_LINE} bytes has no end of line ({len(raw)} bytes so far)"
            return len(buf), ScanLine(text, error, terminated=False)
        return start, None
    consumed = end + 1
    if buf[end] == 0x0D and consumed < len(buf) and buf[consumed] == 0x0A:
        consumed += 1
    return consumed, _line(buf[start:end])
