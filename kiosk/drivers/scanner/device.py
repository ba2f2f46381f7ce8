"""2D scanner driver: turns the lines a serial scanner sends into scans."""

from __future__ import annotations

import logging
from collections.abc import Callable

import serial

from kiosk.drivers.scanner import codec
from kiosk.drivers.scanner.codec import ScanLine
from kiosk.drivers.transport import SerialTransport

LOGGER = logging.getLogger(__name__)


class Scanner:
    """A serial 2D scanner: ``on_scan(text)`` per scanned line, ``on_bad_line(reason)`` per unusable line.

    Callbacks run on the transport's reader thread and must not block.
    """

    def __init__(
        self,
        url: str,
        *,
        baudrate: int = 9600,
        on_scan: Callable[[str], None],
        on_bad_line: Callable[[str], None] | None = None,
        on_link: Callable[[bool, str], None] | None = None,
        reconnect_interval_s: float = 1.0,
        trace: Callable[[str, bytes], None] | None = None,
    ) -> None:
        self.url = url
        self.name = f"scanner on {url}"
        self._on_scan = on_scan
        self._on_bad_line = on_bad_line
        self._discarding = False
        self.transport = SerialTransport(
            url,
            baudrate=baudrate,
            parity=serial.PARITY_NONE,
            name=self.name,
            decode=self._decode,
            on_frame=self._handle_line,
            on_link=on_link,
            reconnect_interval_s=reconnect_interval_s,
            trace=trace,
        )

    def start(self) -> None:
        """Open the port (retrying in the background if it is missing)."""
        self.transport.start()

    def close(self) -> None:
        """Close the port and join the reader thread. Safe to call twice."""
        self.transport.close()

    def _decode(self, buf: bytes) -> tuple[int, ScanLine | None]:
        # Runs on the reader thread only. After an over-long line cut off before its end, the rest of
        # that line is dropped up to the next CR/LF instead of passing for a scan of its own.
        skipped = 0
        if self._discarding:
            ends = [p for p in (buf.find(b"\r"), buf.find(b"\n")) if p >= 0]
            if not ends:
                return len(buf), None
            self._discarding = False
            skipped = min(ends)
        consumed, line = codec.decode(buf[skipped:])
        if line is not None and not line.terminated:
            self._discarding = True
        return skipped + consumed, line

    def _handle_line(self, line: ScanLine) -> None:
        if line.error is not None:
            LOGGER.warning("%s: unusable line: %s", self.name, line.error)
            if self._on_bad_line is not None:
                self._on_bad_line(line.error)
            return
        LOGGER.debug("%s: scanned %r", self.name, line.text)
        self._on_scan(line.text)
