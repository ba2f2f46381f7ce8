"""Serial transport: owns one port, reads and frames its bytes on a thread, reconnects when it vanishes."""

from __future__ import annotations

import logging
import os
import termios
import threading
from collections.abc import Callable
from typing import Any

import serial

from kiosk.drivers.errors import DeviceTimeout, DeviceUnavailable

LOGGER = logging.getLogger(__name__)

READ_TIMEOUT_S = 0.05
WRITE_TIMEOUT_S = 1.0
FIRST_OPEN_WAIT_S = 2.0
MAX_BUFFER_BYTES = 64 * 1024

Decoder = Callable[[bytes], tuple[int, Any]]
LinkCallback = Callable[[bool, str], None]
TraceHook = Callable[[str, bytes], None]


class SerialTransport:
    """One serial port read by a daemon thread.

    The thread opens ``url`` with ``serial.serial_for_url`` (so a device path, a pty symlink, ``loop://`` or
    ``socket://`` all work), appends what it reads to a buffer, runs ``decode`` over it until it needs more
    bytes, and hands every frame to ``on_frame``. Frames are found by bytes and checksums, never by timing.
    When the port cannot be opened or a read fails (device unplugged), ``on_link(False, reason)`` is called
    once, the port is closed and opening is retried every ``reconnect_interval_s``; ``on_link(True, ...)``
    follows each successful open. ``trace("rx" | "tx", data)`` sees the raw bytes.
    """

    def __init__(
        self,
        url: str,
        *,
        baudrate: int,
        parity: str = serial.PARITY_NONE,
        name: str,
        decode: Decoder,
        on_frame: Callable[[Any], None],
        on_link: LinkCallback | None = None,
        reconnect_interval_s: float = 1.0,
        trace: TraceHook | None = None,
    ) -> None:
        self.url = url
        self.baudrate = baudrate
        self.parity = parity
        self.name = name
        self.reconnect_interval_s = reconnect_interval_s
        self.garbage_bytes = 0
        self._decode = decode
        self._on_frame = on_frame
        self._on_link = on_link
        self._trace = trace
        self._port: serial.SerialBase | None = None
        self._port_lock = threading.Lock()
        self._buffer = bytearray()
        self._buffer_lock = threading.Lock()
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._first_attempt = threading.Event()
        self._broken = threading.Event()
        self._link_up: bool | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ public API

    @property
    def connected(self) -> bool:
        """True while the port is open."""
        return self._connected.is_set()

    def start(self) -> None:
        """Start the reader thread; returns once the first attempt to open the port has been made."""
        if self._thread is not None:
            raise RuntimeError(f"{self.name}: transport already started")
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"serial {self.name}", daemon=True)
        self._thread.start()
        self._first_attempt.wait(FIRST_OPEN_WAIT_S)

    def wait_connected(self, timeout_s: float) -> bool:
        """Block until the port is open or ``timeout_s`` passes; returns whether it is open."""
        return self._connected.wait(timeout_s)

    def write(self, data: bytes) -> None:
        """Send ``data``; raises DeviceUnavailable when the port is not open or the write fails."""
        with self._port_lock:
            port = self._port
            if port is None:
                raise DeviceUnavailable(f"{self.name}: port is not open")
            self._emit_trace("tx", data)
            try:
                port.write(data)
            except serial.SerialTimeoutException as exc:
                raise DeviceTimeout(f"{self.name}: could not send within {WRITE_TIMEOUT_S} s ({exc})") from exc
            except (serial.SerialException, OSError, termios.error) as exc:
                self._broken.set()
                raise DeviceUnavailable(f"{self.name}: sending failed ({exc})") from exc

    def discard_input(self) -> None:
        """Drop bytes received but not yet framed (a half-duplex master does this before each request)."""
        with self._buffer_lock:
            if self._buffer:
                self._count_garbage(bytes(self._buffer), "stale")
                self._buffer.clear()

    def close(self) -> None:
        """Stop the reader thread, wait for it, and close the port. Safe to call twice."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        self._close_port()

    # ------------------------------------------------------------------ reader thread

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    self._step()
                except Exception as exc:  # noqa: BLE001 - the reader thread must outlive any surprise
                    LOGGER.exception("%s: unexpected error in the reader", self.name)
                    self._lose_link(f"unexpected error ({exc!r})")
        finally:
            self._first_attempt.set()
            self._close_port()

    def _step(self) -> None:
        port = self._port
        if port is None:
            port = self._open()
            self._first_attempt.set()
            if port is None:
                self._stop.wait(self.reconnect_interval_s)
                return
        if self._broken.is_set():
            self._lose_link("sending failed")
            return
        try:
            data = port.read(max(1, port.in_waiting))
        except Exception as exc:  # noqa: BLE001 - any failure of the port means the link is gone
            # Besides SerialException/OSError, a vanished fd can surface as termios.error, TypeError, ...
            self._lose_link(f"connection lost ({exc})")
            return
        if data:
            self._emit_trace("rx", data)
            self._feed(data)

    def _line_parity(self) -> str:
        # Pseudo-terminals (simulators, tests) have no parity: Linux drops PARENB from a pty's termios,
        # and then refuses (EINVAL) a later tcsetattr that asks for it again, so every reopen would fail.
        if self.parity != serial.PARITY_NONE and "://" not in self.url:
            if os.path.realpath(self.url).startswith("/dev/pts/"):
                return serial.PARITY_NONE
        return self.parity

    def _open(self) -> serial.SerialBase | None:
        try:
            port = serial.serial_for_url(
                self.url,
                baudrate=self.baudrate,
                parity=self._line_parity(),
                timeout=READ_TIMEOUT_S,
                write_timeout=WRITE_TIMEOUT_S,
            )
        except Exception as exc:  # noqa: BLE001 - e.g. termios.error from a pty that is going away
            retry = f"retrying every {self.reconnect_interval_s:g} s"
            self._report_link(False, f"{self.name}: cannot open the port ({exc}); {retry}")
            return None
        with self._buffer_lock:
            self._buffer.clear()
        self._broken.clear()
        with self._port_lock:
            self._port = port
        self._connected.set()
        self._report_link(True, f"{self.name}: connected")
        return port

    def _lose_link(self, reason: str) -> None:
        self._close_port()
        self._report_link(False, f"{self.name}: {reason}; retrying every {self.reconnect_interval_s:g} s")
        self._stop.wait(self.reconnect_interval_s)

    def _close_port(self) -> None:
        self._connected.clear()
        with self._port_lock:
            port, self._port = self._port, None
        if port is not None:
            try:
                port.close()
            except Exception as exc:  # noqa: BLE001
                LOGGER.debug("%s: error while closing the port: %s", self.name, exc)

    def _feed(self, data: bytes) -> None:
        frames = []
        with self._buffer_lock:
            self._buffer += data
            while self._buffer:
                view = bytes(self._buffer)
                try:
                    consumed, frame = self._decode(view)
                except Exception:
                    LOGGER.exception("%s: decoder failed; dropping %d buffered bytes", self.name, len(view))
                    consumed, frame = len(view), None
                if frame is None:
                    if consumed:
                        self._count_garbage(view[:consumed], "garbage")
                    del self._buffer[:consumed]
                    if consumed == 0:
                        break
                    continue
                frame_len = len(frame.to_bytes()) if hasattr(frame, "to_bytes") else consumed
                if consumed > frame_len:
                    self._count_garbage(view[: consumed - frame_len], "garbage")
                del self._buffer[:consumed]
                frames.append(frame)
            if len(self._buffer) > MAX_BUFFER_BYTES:
                self._count_garbage(bytes(self._buffer), "overflow")
                self._buffer.clear()
        for frame in frames:
            try:
                self._on_frame(frame)
            except Exception:
                LOGGER.exception("%s: frame handler failed on %r", self.name, frame)

    def _count_garbage(self, data: bytes, what: str) -> None:
        self.garbage_bytes += len(data)
        LOGGER.debug("%s: dropped %d %s bytes: %s", self.name, len(data), what, data.hex(" "))

    def _report_link(self, up: bool, message: str) -> None:
        if self._link_up is up:
            LOGGER.debug("%s", message)
            return
        self._link_up = up
        (LOGGER.info if up else LOGGER.warning)("%s", message)
        if self._on_link is not None:
            try:
                self._on_link(up, message)
            except Exception:
                LOGGER.exception("%s: link handler failed", self.name)

    def _emit_trace(self, direction: str, data: bytes) -> None:
        if self._trace is not None:
            try:
                self._trace(direction, bytes(data))
            except Exception:
                LOGGER.exception("%s: trace hook failed", self.name)
