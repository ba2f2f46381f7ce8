"""Helpers of the driver tests (the suite-wide tests/conftest.py guards against leftover threads and ptys)."""

from __future__ import annotations

from collections.abc import Callable, Iterable


def decode_stream(decode: Callable, chunks: Iterable[bytes]) -> tuple[list, bytes]:
    """Feed ``chunks`` one after the other through ``decode`` like a transport does; returns (frames, rest)."""
    buf = b""
    frames = []
    for chunk in chunks:
        buf += chunk
        while buf:
            consumed, frame = decode(buf)
            assert 0 <= consumed <= len(buf)
            buf = buf[consumed:]
            if frame is not None:
                frames.append(frame)
            elif consumed == 0:
                break
    return frames, buf


def one_byte_at_a_time(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]
