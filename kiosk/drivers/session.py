"""Request/response session over a half-duplex bus: one request at a time, reply matching, timeouts, retries."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from kiosk.drivers.errors import DeviceTimeout, DeviceUnavailable
from kiosk.drivers.transport import SerialTransport

LOGGER = logging.getLogger(__name__)

BACKOFF_S = 0.02


class _Interrupt:
    """Queued to wake a waiting request: the session closed or the link went down."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def __repr__(self) -> str:
        return f"<interrupt: {self.reason}>"


class Transport(Protocol):
    """What a session needs of its transport (SerialTransport provides it)."""

    name: str

    @property
    def connected(self) -> bool: ...

    def start(self) -> None: ...

    def write(self, data: bytes) -> None: ...

    def discard_input(self) -> None: ...

    def close(self) -> None: ...


class RequestSession:
    """Matches replies to requests on a master/slave bus such as RS-485.

    ``transport_factory(on_frame)`` builds the transport and is handed the session's frame sink. ``request``
    holds a lock for the whole exchange (the bus is half duplex and many threads may call), drops stale
    frames and bytes, writes, and waits for the first frame that ``match`` accepts; frames it does not accept
    are dropped. An unanswered request is sent again after a short backoff, ``retries`` times. Wire the
    transport's ``on_link`` to ``link_changed`` so a request fails at once when the device goes away.
    """

    def __init__(
        self,
        transport_factory: Callable[[Callable[[Any], None]], Transport],
        *,
        backoff_s: float = BACKOFF_S,
    ) -> None:
        self._frames: queue.Queue[Any] = queue.Queue()
        self._bus_lock = threading.Lock()
        self._closed = threading.Event()
        self.backoff_s = backoff_s
        self.transport = transport_factory(self._frames.put)

    @classmethod
    def over_serial(cls, url: str, *, baudrate: int, parity: str, name: str, decode: Callable,
                    on_link: Callable[[bool, str], None], reconnect_interval_s: float = 1.0,
                    trace: Callable[[str, bytes], None] | None = None) -> RequestSession:
        """A session over a SerialTransport on ``url`` (a device path, a pty symlink, loop://, socket://)."""
        return cls(lambda on_frame: SerialTransport(
            url, baudrate=baudrate, parity=parity, name=name, decode=decode, on_frame=on_frame, on_link=on_link,
            reconnect_interval_s=reconnect_interval_s, trace=trace))

    @property
    def name(self) -> str:
        return self.transport.name

    @property
    def connected(self) -> bool:
        return self.transport.connected

    def start(self) -> None:
        self._closed.clear()
        self.transport.start()

    def close(self) -> None:
        self._closed.set()
        self._frames.put(_Interrupt("closed"))
        self.transport.close()

    def link_changed(self, up: bool, message: str) -> None:
        """Tell the session the link went up or down; a request waiting on a lost link fails at once."""
        if not up:
            self._frames.put(_Interrupt(message))

    def request(
        self,
        data: bytes,
        match: Callable[[Any], bool],
        timeout_s: float,
        retries: int,
        *,
        what: str = "from the device",
    ) -> Any:
        """Send ``data`` and return the first frame ``match`` accepts.

        Raises DeviceUnavailable when the port is not open, DeviceTimeout when ``retries + 1`` tries went
        unanswered; ``what`` completes the timeout message ("no answer <what> after 3 tries").
        """
        tries = retries + 1
        with self._bus_lock:
            for attempt in range(1, tries + 1):
                if self._closed.is_set():
                    raise DeviceUnavailable(f"{self.name}: closed")
                self._drop_stale()
                self.transport.write(data)
                frame = self._wait_for(match, timeout_s)
                if frame is not None:
                    return frame
                LOGGER.debug("%s: no answer %s (try %d of %d)", self.name, what, attempt, tries)
                if attempt < tries and self._closed.wait(self.backoff_s * attempt):
                    break
        if not self.transport.connected:
            raise DeviceUnavailable(f"{self.name}: port is not open")
        raise DeviceTimeout(f"{self.name}: no answer {what} after {tries} {'try' if tries == 1 else 'tries'}")

    def _drop_stale(self) -> None:
        self.transport.discard_input()
        while True:
            try:
                frame = self._frames.get_nowait()
            except queue.Empty:
                return
            LOGGER.debug("%s: dropped stale frame %r", self.name, frame)

    def _wait_for(self, match: Callable[[Any], bool], timeout_s: float) -> Any:
        deadline = time.monotonic() + timeout_s
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            try:
                frame = self._frames.get(timeout=remaining)
            except queue.Empty:
                return None
            if isinstance(frame, _Interrupt):
                reason = frame.reason
                raise DeviceUnavailable(reason if reason.startswith(self.name) else f"{self.name}: {reason}")
            try:
                accepted = match(frame)
            except Exception:
                LOGGER.exception("%s: reply matcher failed on %r", self.name, frame)
                accepted = False
            if accepted:
                return frame
            LOGGER.debug("%s: dropped unmatched frame %r", self.name, frame)
