"""`kiosk content serve`: a content folder over HTTP with Range requests, and faults for testers (slow, drop, corrupt).

What the library's web server does for the bookcases, small enough for a laptop and for tests: GET and HEAD
of the files in one folder, a single byte range per request (``bytes=N-``, ``bytes=N-M``, ``bytes=-N``:
206 with Content-Range; 416 when the range starts beyond the file) so downloads resume, and nothing outside
the folder (no ``..``, no symlink out, no hidden files, no key files, no directory listings).

Faults, changeable while it runs (``server.faults``): a rate limit in KB/s, dropping the connection after N
bytes of any body, corrupting the files named (every 1024th byte inverted, the same bytes on every request,
so a resumed download stays corrupt), and a delay before each answer. ``server.served`` records every
request: path, Range header, status and the body bytes actually sent.
"""

from __future__ import annotations

import logging
import mimetypes
import re
import socket
import socketserver
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Self

LOGGER = logging.getLogger(__name__)

CHUNK = 64 * 1024
CORRUPT_EVERY = 1024            # a corrupted file has every 1024th byte inverted, from offset 0
REFUSED_SUFFIXES = (".pem", ".key")
_RANGE = re.compile(r"bytes=([0-9]*)-([0-9]*)")


@dataclass
class Faults:
    """What the server does wrong on purpose; all off by default."""
    rate_kbps: float = 0                 # KB/s for every body (0: as fast as it goes)
    drop_after: int | None = None        # close the connection after this many bytes of a body
    corrupt: set[str] = field(default_factory=set)    # paths (relative to the folder) served corrupted
    delay_ms: int = 0                    # wait before answering each request

    def __str__(self) -> str:
        said = [f"rate {self.rate_kbps:g} KB/s" if self.rate_kbps else "",
                f"drop after {self.drop_after} bytes" if self.drop_after is not None else "",
                f"corrupt {', '.join(sorted(self.corrupt))}" if self.corrupt else "",
                f"delay {self.delay_ms} ms" if self.delay_ms else ""]
        return "; ".join(s for s in said if s) or "none"


@dataclass(frozen=True)
class Served:
    """One request as the server answered it."""
    method: str
    path: str
    range: str | None
    status: int
    sent: int                            # body bytes written
    dropped: bool = False


def parse_range(header: str | None, size: int) -> tuple[int, int] | None | str:
    """The inclusive byte range ``(first, last)`` that a Range header asks of a ``size``-byte file; None to
    serve the whole file (no header, several ranges or one that does not parse: RFC 9110 lets us ignore it);
    "unsatisfiable" when it starts at or beyond the end."""
    if not header:
        return None
    m = _RANGE.fullmatch(header.strip())
    if m is None:
        return None
    first, last = m.groups()
    if not first and not last:
        return None
    if not first:                                       # bytes=-N: the last N bytes
        n = int(last)
        if n == 0 or size == 0:
            return "unsatisfiable"
        return max(0, size - n), size - 1
    start = int(first)
    end = int(last) if last else size - 1
    if last and end < start:
        return None
    if start >= size:
        return "unsatisfiable"
    return start, min(end, size - 1)


class _Handler(BaseHTTPRequestHandler):
    server: ContentServer
    protocol_version = "HTTP/1.1"
    timeout = 60                        # an idle keep-alive connection is closed after this long
    server_version = "kiosk-content"

    def do_GET(self) -> None:
        self._serve(body=True)

    def do_HEAD(self) -> None:
        self._serve(body=False)

    def log_message(self, format: str, *args: object) -> None:
        LOGGER.debug("%s %s", self.address_string(), format % args)

    def _serve(self, body: bool) -> None:
        faults = self.server.faults
        if faults.delay_ms:
            time.sleep(faults.delay_ms / 1000)
        rel, file = self.server.resolve(self.path)
        wanted = self.headers.get("Range")
        if file is None:
            self._answer_empty(HTTPStatus.NOT_FOUND, rel, wanted)
            return
        try:
            size = file.stat().st_size
        except OSError:                 # removed since it was looked up
            self._answer_empty(HTTPStatus.NOT_FOUND, rel, wanted)
            return
        span = parse_range(wanted, size)
        if span == "unsatisfiable":
            self._answer_empty(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE, rel, wanted,
                               {"Content-Range": f"bytes */{size}"})
            return
        first, last = span if isinstance(span, tuple) else (0, size - 1)
        length = last - first + 1
        self.send_response(HTTPStatus.PARTIAL_CONTENT if isinstance(span, tuple) else HTTPStatus.OK)
        self.send_header("Content-Type", mimetypes.guess_type(rel)[0] or "application/octet-stream")
        self.send_header("Content-Length", str(length))
        self.send_header("Accept-Ranges", "bytes")
        if isinstance(span, tuple):
            self.send_header("Content-Range", f"bytes {first}-{last}/{size}")
        self.end_headers()
        status = 206 if isinstance(span, tuple) else 200
        sent, dropped = (self._body(file, rel, first, length, faults) if body else (0, False))
        self.server.record(Served(self.command, rel, wanted, status, sent, dropped), self.client_address[0])

    def _answer_empty(self, status: HTTPStatus, rel: str, wanted: str | None,
                      headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", "0")
        self.end_headers()
        self.server.record(Served(self.command, rel, wanted, int(status), 0), self.client_address[0])

    def _body(self, file: Path, rel: str, offset: int, length: int, faults: Faults) -> tuple[int, bool]:
        limit = faults.drop_after if faults.drop_after is not None and faults.drop_after < length else None
        corrupt = rel in faults.corrupt
        rate = faults.rate_kbps * 1024
        started, sent = time.monotonic(), 0
        with file.open("rb") as f:
            f.seek(offset)
            while sent < length and (limit is None or sent < limit):
                want = min(CHUNK, length - sent, *([limit - sent] if limit is not None else []))
                if rate:
                    want = min(want, max(1, int(rate / 20)))
                data = f.read(want)
                if not data:
                    break                     # the file shrank while we served it
                if corrupt:
                    data = _corrupt(data, offset + sent)
                try:
                    self.wfile.write(data)
                except OSError:             # the client went away
                    self.close_connection = True
                    return sent, False
                sent += len(data)
                if rate:
                    ahead = sent / rate - (time.monotonic() - started)
                    if ahead > 0:
                        time.sleep(ahead)
        if limit is not None and sent >= limit:
            self.wfile.flush()
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return sent, True
        return sent, False


def _corrupt(data: bytes, offset: int) -> bytes:
    buf = bytearray(data)
    for i in range(-offset % CORRUPT_EVERY, len(buf), CORRUPT_EVERY):
        buf[i] ^= 0xFF
    return bytes(buf)


class ContentServer(ThreadingHTTPServer):
    """Serves ``folder`` on ``bind``:``port`` (0: a free port). ``start()`` runs it on a thread of its own,
    ``close()`` stops it and ends every connection; ``url`` ends in "/"."""

    daemon_threads = True

    def __init__(self, folder: Path, *, port: int = 0, bind: str = "127.0.0.1", faults: Faults | None = None) -> None:
        self.root = Path(folder).resolve()
        if not self.root.is_dir():
            raise NotADirectoryError(f"{folder} is not a folder")
        self.faults = faults or Faults()
        self.served: list[Served] = []
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._thread: threading.Thread | None = None
        if ":" in bind:
            self.address_family = socket.AF_INET6
        super().__init__((bind, port), _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks the host name up (getfqdn), which can stall on a machine without DNS.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[0], self.server_address[1]

    @property
    def url(self) -> str:
        host = self.server_address[0]
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.server_address[1]}/"

    def start(self) -> Self:
        """Serve in a thread of its own; a second call (``with ContentServer(f).start()``) does nothing."""
        if self._thread is not None:
            return self
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="content-server", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        if self._thread is not None:
            self.shutdown()
            self._thread.join()
            self._thread = None
        with self._lock:
            open_now = list(self._connections)
        for conn in open_now:           # idle keep-alive connections: end them so their threads finish
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- used by the handler ----------------------------------------------------------------------

    def process_request(self, request, client_address) -> None:   # type: ignore[no-untyped-def]
        with self._lock:            # here, on the serving thread: close() sees every accepted connection
            self._connections.add(request)
        super().process_request(request, client_address)

    def process_request_thread(self, request, client_address) -> None:   # type: ignore[no-untyped-def]
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._lock:
                self._connections.discard(request)

    def resolve(self, url_path: str) -> tuple[str, Path | None]:
        """The folder-relative path a request names, and its file if it may be served (else None)."""
        path = urllib.parse.unquote(urllib.parse.urlsplit(url_path).path)
        parts = [p for p in path.split("/") if p]
        rel = "/".join(parts)
        if any(p in (".", "..") or p.startswith(".") or "\\" in p or "\0" in p for p in parts) \
                or rel.lower().endswith(REFUSED_SUFFIXES) or not parts:
            return rel, None
        file = (self.root / rel).resolve()
        if not file.is_relative_to(self.root) or not file.is_file():
            return rel, None
        return rel, file

    def record(self, served: Served, client: str) -> None:
        with self._lock:
            self.served.append(served)
        LOGGER.info("%s %s /%s%s -> %d, %d bytes%s", client, served.method, served.path,
                    f" ({served.range})" if served.range else "", served.status, served.sent,
                    " (connection dropped: fault)" if served.dropped else "")

    def requests_for(self, path: str) -> list[Served]:
        """What was served for ``path``, in order."""
        with self._lock:
            return [s for s in self.served if s.path == path]
