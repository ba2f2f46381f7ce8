"""A tiny test-local device on the far side of a pseudo-terminal, framed with the drivers' own codecs."""

from __future__ import annotations

import os
import queue
import select
import threading
import tty
from collections.abc import Callable
from pathlib import Path
from typing import Any


class FakeDevice:
    """The far end of a pty behind a stable symlink.

    Every frame decoded from what the host writes goes to ``received`` and to ``respond(frame)``, whose
    return value (bytes or None) is written back. ``unplug()`` closes the pty and leaves the symlink
    dangling, as a vanished /dev/pts/N would; ``plug()`` makes a new pty behind the same symlink.
    """

    def __init__(self, link_path: Path, decode: Callable[[bytes], tuple[int, Any]],
                 respond: Callable[[Any], bytes | None] | None = None) -> None:
        self.link_path = Path(link_path)
        self.decode = decode
        self.respond = respond or (lambda frame: None)
        self.received: queue.Queue[Any] = queue.Queue()
        self.garbage_bytes = 0
        self._master: int | None = None
        self._slave: int | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._write_lock = threading.Lock()

    def __enter__(self) -> FakeDevice:
        self.plug()
        return self

    def __exit__(self, *exc: object) -> None:
        self.unplug()

    @property
    def url(self) -> str:
        return str(self.link_path)

    def plug(self) -> None:
        self.unplug()
        master, slave = os.openpty()
        tty.setraw(slave)
        tmp = self.link_path.with_name(self.link_path.name + ".tmp")
        if tmp.is_symlink():
            tmp.unlink()
        tmp.symlink_to(os.ttyname(slave))
        os.replace(tmp, self.link_path)
        self._master, self._slave = master, slave
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(master, self._stop), name="fake device", daemon=True)
        self._thread.start()

    def unplug(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
        with self._write_lock:
            for fd in (self._master, self._slave):
                if fd is not None:
                    os.close(fd)
            self._master = self._slave = None

    def write(self, data: bytes) -> None:
        """Send raw bytes to the host (garbage, unsolicited frames, one byte at a time...)."""
        with self._write_lock:
            if self._master is not None:
                os.write(self._master, data)

    def next_request(self, timeout_s: float = 5.0) -> Any:
        return self.received.get(timeout=timeout_s)

    def _serve(self, master: int, stop: threading.Event) -> None:
        buf = b""
        while not stop.is_set():
            ready, _, _ = select.select([master], [], [], 0.02)
            if not ready:
                continue
            try:
                chunk = os.read(master, 4096)
            except OSError:
                return
            buf += chunk
            while buf:
                consumed, frame = self.decode(buf)
                if frame is None:
                    self.garbage_bytes += consumed
                buf = buf[consumed:]
                if frame is None:
                    if consumed == 0:
                        break
                    continue
                self.received.put(frame)
                answer = self.respond(frame)
                if answer:
                    self.write(answer)
