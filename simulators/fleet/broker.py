"""A Mosquitto broker on a free loopback port, with a throw-away config: for the fleet demo, tests and benchmark."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from simulators.children import tied_to_process

START_TIMEOUT_S = 10.0


class BrokerError(Exception):
    """Mosquitto is missing or would not start; the message says why."""


def find_mosquitto() -> str | None:
    return shutil.which("mosquitto") or next((p for p in ("/usr/sbin/mosquitto", "/sbin/mosquitto")
                                              if os.path.exists(p)), None)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class BrokerTls:
    """Server side of TLS: the CA that signed the bookcases' certificates, and the broker's own pair."""
    ca: Path
    cert: Path
    key: Path
    require_certificate: bool = True     # and the certificate's CN becomes the username the ACL sees


class Broker:
    """``start()``, ``stop()`` (graceful: Mosquitto saves its sessions and queued messages), ``restart()``.

    Persistence is on, so a restarted broker still has every bookcase's session, subscriptions and the
    QoS 1 messages queued for it, as a production broker would.
    """

    def __init__(self, folder: Path, *, port: int | None = None, acl_file: Path | None = None,
                 password_file: Path | None = None, tls: BrokerTls | None = None, binary: str | None = None,
                 extra: tuple[str, ...] = (), conf: str | None = None) -> None:
        """``conf``: run this config instead of writing one (e.g. config/mosquitto/mosquitto.conf with its
        paths and ports made local); ``port`` must then be one of its listeners. The log still goes to
        ``log_path``."""
        if conf is not None and port is None:
            raise ValueError("a broker run on a config of its own needs the port of one of its listeners")
        self.conf = conf
        self.folder = Path(folder)
        self.port = port or free_port()
        self.acl_file = acl_file
        self.password_file = password_file
        self.tls = tls
        self.binary = binary or find_mosquitto()
        self.extra = extra
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    @property
    def conf_path(self) -> Path:
        return self.folder / "mosquitto.conf"

    @property
    def log_path(self) -> Path:
        return self.folder / "mosquitto.log"

    def _run_lines(self) -> list[str]:
        """What every run needs whatever the config: the log in our folder (stderr is a pipe nobody reads)."""
        lines = [f"log_dest file {self.log_path}"]
        if os.getuid() == 0:
            lines.append(f"user {pwd.getpwuid(0).pw_name}")   # as root, stay root: the files are ours
        return lines

    def config_text(self) -> str:
        if self.conf is not None:
            return self.conf.rstrip("\n") + "\n# Added for this run:\n" + "\n".join(self._run_lines()) + "\n"
        lines = [
            "# Written by simulators.fleet for one run; see config/mosquitto/ for a fleet's broker.",
            "per_listener_settings false",
            "persistence true",
            f"persistence_location {self.folder}/",
            "persistence_file mosquitto.db",
            *self._run_lines(),
            "log_type error", "log_type warning", "log_type notice", "log_type information",
            "connection_messages true",
            "max_queued_messages 200000",
            "max_inflight_messages 100",
            f"listener {self.port} 127.0.0.1",
        ]
        if self.tls:
            lines += [f"cafile {self.tls.ca}", f"certfile {self.tls.cert}", f"keyfile {self.tls.key}",
                      f"require_certificate {str(self.tls.require_certificate).lower()}",
                      f"use_identity_as_username {str(self.tls.require_certificate).lower()}"]
        if self.password_file:
            lines.append(f"password_file {self.password_file}")
        if self.acl_file:
            lines.append(f"acl_file {self.acl_file}")
        lines.append("allow_anonymous " + ("false" if self.password_file or self.tls else "true"))
        return "\n".join([*lines, *self.extra]) + "\n"

    def start(self) -> "Broker":
        if self.binary is None:
            raise BrokerError("mosquitto is not installed (apt-get install mosquitto mosquitto-clients, "
                              "or scripts/bootstrap.sh)")
        if self.proc is not None:
            return self
        self.folder.mkdir(parents=True, exist_ok=True)
        self.conf_path.write_text(self.config_text(), encoding="utf-8")
        self.proc = subprocess.Popen([self.binary, "-c", str(self.conf_path)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, start_new_session=True, **tied_to_process())
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._answers():
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                self.proc = None
                raise BrokerError(f"mosquitto exited at start: {err.strip() or self.log_tail()}")
            if time.monotonic() > deadline:
                self.stop(kill=True)
                raise BrokerError(f"mosquitto did not listen on port {self.port} within {START_TIMEOUT_S:.0f} s")
            time.sleep(0.02)
        self.starts += 1
        return self

    def stop(self, kill: bool = False) -> None:
        """Stop the broker: SIGTERM (it saves its persistence file) or, with ``kill``, SIGKILL."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        if proc.stderr:
            proc.stderr.close()

    def restart(self, down_s: float = 0.0) -> None:
        self.stop()
        if down_s:
            time.sleep(down_s)
        self.start()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return True
        except OSError:
            return False

    def __enter__(self) -> "Broker":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def add_password(password_file: Path, username: str, password: str, binary: str | None = None) -> None:
    """Add a user to a Mosquitto password file (hashed by mosquitto_passwd; the file is created if need be)."""
    tool = binary or shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
    if not os.path.exists(tool):
        raise BrokerError("mosquitto_passwd is not installed (it comes with the mosquitto package)")
    args = [tool, "-b", str(password_file), username, password]
    if not password_file.exists():
        password_file.touch(mode=0o600)
    result = subprocess.run(args, capture_output=True, text=True, timeout=20)
    if result.returncode != 0:
        raise BrokerError(f"mosquitto_passwd failed: {result.stderr.strip() or result.stdout.strip()}")
