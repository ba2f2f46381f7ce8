"""Helpers of the simulator tests: bookcase configs and reading frames from a serial port."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import serial

DOOR = """
[[doors]]
number = {number}
board = {board}
lock = {lock}
reader = {reader}
capacity = {capacity}
"""


def write_config(directory: Path, *, doors: int = 4, lock_bit_unlocked: int = 1, sensor_bit_open: int = 1,
                 capacity: int = 80, boards: int = 1, unlock_pulse_ms: int = 500) -> Path:
    """A bookcase config like config/demo.toml, with ports pointing into ``directory/sim``."""
    text = f"""
library = "minhang"
secret = "test-secret-0123456789"
data_dir = "data"

[bookcase]
id = "MH-TEST"
name = "闵行区图书馆城市书柜 · 测试"

[lockboard]
port = "sim/lockboard"
lock_bit_unlocked = {lock_bit_unlocked}
sensor_bit_open = {sensor_bit_open}
unlock_pulse_ms = {unlock_pulse_ms}

[rfid]
port = "sim/rfid"

[scanner]
port = "sim/scanner"
"""
    per_board = -(-doors // boards)
    for n in range(1, doors + 1):
        board, lock = divmod(n - 1, per_board)
        text += DOOR.format(number=n, board=board, lock=lock + 1, reader=n, capacity=capacity)
    path = directory / "bookcase.toml"
    path.write_text(text, encoding="utf-8")
    return path


def read_frame(port: serial.Serial, decode: Callable, *, wait_s: float = 5.0, buf: bytearray | None = None):
    """Read from ``port`` until ``decode`` yields a frame; None if nothing valid came within ``wait_s``."""
    buf = bytearray() if buf is None else buf
    deadline = time.monotonic() + wait_s
    while True:
        consumed, frame = decode(bytes(buf))
        del buf[:consumed]
        if frame is not None:
            return frame
        if time.monotonic() > deadline:
            return None
        buf += port.read(256)


def read_quiet(port: serial.Serial, quiet_s: float = 0.3) -> bytes:
    """Everything the port delivers until it has been quiet for ``quiet_s``."""
    data = bytearray()
    last = time.monotonic()
    while time.monotonic() - last < quiet_s:
        chunk = port.read(256)
        if chunk:
            data += chunk
            last = time.monotonic()
    return bytes(data)
