"""Fixtures of the SIP2 tests: the simulated ILS over real TCP, clients closed after the test, a scripted server."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

import pytest

from gateway.sip2 import Sip2Client
from gateway.sip2.codec import next_line
from simulators.ils import IlsServer, Library

USER, PASSWORD = "citybook", "s3cret-sip2"
NOW = datetime(2026, 12, 1, 10, 0).astimezone()


@dataclass
class Ils:
    library: Library
    server: IlsServer

    @property
    def port(self) -> int:
        return self.server.port

    def requests(self, command: str) -> int:
        return self.server.stats["requests"].get(command, 0)


@pytest.fixture
def ils() -> Iterator[Ils]:
    """The simulated ILS with 400 demo items, no timeout period of its own (the clients' timeouts rule)."""
    library = Library.demo(items=400, clock=lambda: NOW)
    server = IlsServer(library, user=USER, password=PASSWORD, timeout_period=999, retries_allowed=999).start()
    try:
        yield Ils(library, server)
    finally:
        server.stop()


@pytest.fixture
def client(ils: Ils) -> Iterator[Callable[..., Sip2Client]]:
    made: list[Sip2Client] = []

    def make(port: int | None = None, **kw) -> Sip2Client:
        kw.setdefault("user", USER)
        kw.setdefault("password", PASSWORD)
        kw.setdefault("location", "MH-BOOKCASES")
        kw.setdefault("institution", "CN-310112")
        kw.setdefault("timeout_s", 5.0)
        c = Sip2Client("127.0.0.1", port or ils.port, **kw)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


@dataclass
class Scripted:
    """A TCP server that answers each received line with the next scripted reply (bytes, or a callable of the
    line), sending each reply in ``chunk``-byte pieces. What it received is in ``received``."""
    replies: list
    chunk: int = 0
    received: list[bytes] = field(default_factory=list)
    port: int = 0

    def start(self) -> Scripted:
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self._thread = threading.Thread(target=self._run, name="scripted-sip2", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            conn, _ = self._sock.accept()
        except OSError:
            return
        self._conn = conn
        buf = bytearray()
        with conn:
            while self.replies:
                consumed, line = next_line(buf)
                if line is None:
                    del buf[:consumed]
                    try:
                        data = conn.recv(65536)
                    except OSError:
                        return
                    if not data:
                        return
                    buf += data
                    continue
                del buf[:consumed]
                self.received.append(line)
                reply = self.replies.pop(0)
                reply = reply(line) if callable(reply) else reply
                step = self.chunk or len(reply) or 1
                for i in range(0, len(reply), step):
                    conn.sendall(reply[i:i + step])
            try:
                conn.recv(1)                   # wait for the client to close
            except OSError:
                pass

    def stop(self) -> None:
        self._sock.close()
        conn = getattr(self, "_conn", None)
        if conn is not None:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._thread.join(5)


@pytest.fixture
def scripted() -> Iterator[Callable[..., Scripted]]:
    servers: list[Scripted] = []

    def make(replies: list, chunk: int = 0) -> Scripted:
        s = Scripted(list(replies), chunk).start()
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.stop()
