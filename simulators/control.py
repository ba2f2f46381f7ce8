"""The simulator's control socket: JSON lines over a Unix socket at ``DIR/control.sock``, and its client.

Request ``{"cmd": "take", "door": 2, "item": "MH20200001"}``, one per line; reply
``{"ok": true, "result": ...}`` or ``{"ok": false, "error": "door 2 is closed — unlock it first"}``.
"""

from __future__ import annotations

import inspect
import json
import logging
import os
import select
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from simulators.errors import SimError

LOGGER = logging.getLogger(__name__)

CONTROL_SOCKET = "control.sock"
CALL_TIMEOUT_S = 10.0
MAX_LINE = 64 * 1024
SUN_PATH_MAX = 107  # bytes in sockaddr_un.sun_path, less the terminating NUL


def control_path(link_dir: str | os.PathLike) -> Path:
    return Path(link_dir) / CONTROL_SOCKET


def call(link_dir: str | os.PathLike, cmd: str, *, timeout: float = CALL_TIMEOUT_S, **args: Any) -> Any:
    """Run ``cmd`` on the simulator whose links live in ``link_dir``; returns its result, raises SimError."""
    path = control_path(link_dir)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        try:
            sock.connect(str(path))
        except (FileNotFoundError, ConnectionRefusedError):
            raise SimError(f"no simulator is running at {link_dir} ({path} does not answer) — "
                           f"start one with: kiosk-sim world --config FILE --link-dir {link_dir}") from None
        sock.sendall(json.dumps({"cmd": cmd, **args}, ensure_ascii=False).encode("utf-8") + b"\n")
        reply = _read_line(sock)
    except TimeoutError:
        raise SimError(f"the simulator at {link_dir} did not answer {cmd!r} within {timeout:g} s") from None
    finally:
        sock.close()
    if reply is None:
        raise SimError(f"the simulator at {link_dir} closed the connection without answering {cmd!r}")
    message = json.loads(reply)
    if not message.get("ok"):
        raise SimError(message.get("error", "unknown error"))
    return message.get("result")


def _read_line(sock: socket.socket) -> bytes | None:
    buf = bytearray()
    while b"\n" not in buf:
        chunk = sock.recv(4096)
        if not chunk:
            return None
        buf += chunk
        if len(buf) > MAX_LINE:
            raise SimError(f"control line longer than {MAX_LINE} bytes")
    return bytes(buf[: buf.index(b"\n")])


class ControlServer:
    """Serves ``commands`` (name -> callable taking keyword arguments) at ``path``.

    A command raising SimError answers ``ok: false`` with its message; ``on_command(cmd, args, reply)``
    sees every request (the CLI prints them). One thread accepts, one per connection; ``stop`` joins all.
    """

    def __init__(self, path: str | os.PathLike, commands: dict[str, Callable[..., Any]], *,
                 on_command: Callable[[str, dict[str, Any], dict[str, Any]], None] | None = None) -> None:
        self.path = Path(path)
        self.commands = commands
        self.on_command = on_command
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._conns: dict[socket.socket, threading.Thread] = {}
        self._lock = threading.Lock()
        self._wake_r, self._wake_w = -1, -1

    def start(self) -> None:
        if len(os.fsencode(self.path)) > SUN_PATH_MAX:
            raise SimError(f"control socket path {self.path} is longer than {SUN_PATH_MAX} bytes: "
                           "use a shorter --link-dir")
        self._claim_path()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(str(self.path))
        sock.listen(8)
        self._sock = sock
        self._wake_r, self._wake_w = os.pipe()
        self._thread = threading.Thread(target=self._accept_loop, name="sim-control", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is None:
            return
        os.write(self._wake_w, b"x")
        self._thread.join()
        with self._lock:
            conns = list(self._conns.items())
        for conn, _ in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for _, thread in conns:
            thread.join()
        assert self._sock is not None
        self._sock.close()
        os.close(self._wake_r)
        os.close(self._wake_w)
        self._sock, self._thread = None, None
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass

    def dispatch(self, request: dict[str, Any]) -> dict[str, Any]:
        """Run one request; always returns a reply, never raises."""
        args = dict(request)
        cmd = args.pop("cmd", None)
        fn = self.commands.get(cmd) if isinstance(cmd, str) else None
        if fn is None:
            return {"ok": False, "error": f"unknown command {cmd!r} (known: {', '.join(sorted(self.commands))})"}
        try:
            inspect.signature(fn).bind(**args)
        except TypeError as exc:
            return {"ok": False, "error": f"{cmd}: {exc}"}
        try:
            return {"ok": True, "result": fn(**args)}
        except SimError as exc:
            return {"ok": False, "error": str(exc)}
        except Exception as exc:
            LOGGER.exception("control: %s failed", cmd)
            return {"ok": False, "error": f"{cmd} failed: {type(exc).__name__}: {exc}"}

    def _claim_path(self) -> None:
        if not self.path.exists() and not self.path.is_symlink():
            return
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(str(self.path))
        except OSError:
            self.path.unlink()  # stale socket of a simulator that died
            return
        finally:
            probe.close()
        raise SimError(f"another simulator is already running at {self.path.parent}")

    def _accept_loop(self) -> None:
        assert self._sock is not None
        while True:
            ready, _, _ = select.select([self._sock, self._wake_r], [], [])
            if self._wake_r in ready:
                return
            conn, _ = self._sock.accept()
            thread = threading.Thread(target=self._serve, args=(conn,), name="sim-control-conn", daemon=True)
            with self._lock:
                self._conns[conn] = thread
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            with conn, conn.makefile("rb") as lines:
                for line in lines:
                    if not line.strip():
                        continue
                    try:
                        request = json.loads(line)
                        if not isinstance(request, dict):
                            raise ValueError("expected a JSON object")
                    except ValueError as exc:
                        reply = {"ok": False, "error": f"not a JSON request: {exc}"}
                        request = {}
                    else:
                        reply = self.dispatch(request)
                    if self.on_command is not None and request:
                        args = {k: v for k, v in request.items() if k != "cmd"}
                        self.on_command(str(request.get("cmd")), args, reply)
                    conn.sendall(json.dumps(reply, ensure_ascii=False).encode("utf-8") + b"\n")
        except OSError:
            pass
        finally:
            with self._lock:
                self._conns.pop(conn, None)
