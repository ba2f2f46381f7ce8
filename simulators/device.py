"""Shared plumbing of the simulated serial devices: buffer the line, decode with the driver's codec, dispatch."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from simulators.pty import PtyLink

LOGGER = logging.getLogger(__name__)


class FrameDevice:
    """A device behind a ``PtyLink`` that answers framed requests.

    Subclasses set ``decode`` (the driver codec's ``decode(buf) -> (consumed, frame | None)``) and
    implement ``handle_frame``; ``send`` writes a response frame and counts it.
    """

    decode: Callable[[bytes], tuple[int, Any]]

    def __init__(self, link: PtyLink) -> None:
        self.link = link
        self._buf = bytearray()
        link.on_bytes = self.feed

    @property
    def stats(self):
        return self.link.stats

    def feed(self, data: bytes) -> None:
        """Bytes from the host: decode every complete frame and handle it (garbage is skipped)."""
        self._buf += data
        while self._buf:
            consumed, frame = type(self).decode(bytes(self._buf))
            del self._buf[:consumed]
            if frame is None:
                break
            self.stats.frames_in += 1
            LOGGER.debug("%s: <- %r", self.link.name, frame)
            self.handle_frame(frame)

    def handle_frame(self, frame: Any) -> None:
        raise NotImplementedError

    def send(self, frame: Any) -> bool:
        """Write one response frame (paced, subject to the link's faults)."""
        LOGGER.debug("%s: -> %r", self.link.name, frame)
        sent = self.link.write(frame.to_bytes())
        if sent:
            self.stats.frames_out += 1
        return sent
