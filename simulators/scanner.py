"""Simulated serial 2D barcode/QR scanner (9600 8N1): one line per scan, CR LF terminated."""

from __future__ import annotations

from kiosk.drivers.scanner.codec import encode_line
from simulators.errors import SimError
from simulators.pty import PtyLink


class ScannerSim:
    """Writes what is scanned; ignores whatever the host sends (configuration commands)."""

    def __init__(self, link: PtyLink) -> None:
        self.link = link
        link.on_bytes = self._handle_bytes

    @property
    def stats(self):
        return self.link.stats

    def scan(self, text: str) -> bool:
        """Send one scan; False if the line swallowed it (silence). SimError if unplugged or not one line."""
        if not text or "\r" in text or "\n" in text:
            raise SimError(f"a scan is one non-empty line of text, got {text!r}")
        if not self.link.plugged:
            raise SimError("the scanner is unplugged — replug it first")
        sent = self.link.write(encode_line(text))
        if sent:
            self.stats.frames_out += 1
        return sent

    def _handle_bytes(self, data: bytes) -> None:
        return None
