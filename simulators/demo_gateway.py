"""The library's side of `make demo`'s fleet: the simulated ILS (`kiosk-sim ils`) and the gateway in front of it.

The gateway runs config/gateway-demo.toml as a run copy (.gateway-demo.run.toml beside the demo's config) whose
broker and ILS ports are this run's: it logs in to the demo broker as the ACL's ``gateway`` user, talks SIP2 to the simulated
ILS (its control socket at var/demo/ils: `kiosk-sim ctl var/demo/ils status`), keeps a fresh journal under
var/demo/gateway, and imports the demo's patrons (card -> ILS patron id, the bookcases' secret) before it
starts. Its secrets are files under var/demo/secrets, made for the run. The operators' console runs beside it
on a free port of 127.0.0.1 (plain HTTP on this machine: cookies without Secure), with one account made for the
run, ``demo`` (operator), whose password is printed with the console's address.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import shutil
import socket
import threading
from dataclasses import replace
from pathlib import Path

from gateway.config import load_gateway_config
from gateway.patrons import import_export
from gateway.service import Gateway
from kiosk.demodata import demo_patrons
from simulators.fleet.stage import GATEWAY, FleetStage
from simulators.ils.cli import IlsSimulator
from simulators.ils.library import Library
from simulators.ils.server import IlsServer

LOGGER = logging.getLogger(__name__)

TEMPLATE = Path(__file__).resolve().parents[1] / "config" / "gateway-demo.toml"

ILS_LATENCY_MS = 5            # a real ILS's database takes a few ms an answer
CONSOLE_USER = "demo"


class DemoLibrary:
    """``start()``: the simulated ILS on a free port, then the gateway (a thread of this process)."""

    def __init__(self, config_dir: Path, var_dir: Path, stage: FleetStage, secret: str) -> None:
        """``config_dir``: the demo config's folder (the run copy goes there: its paths are relative to it);
        ``var_dir``: the demo's var/demo."""
        self.template = TEMPLATE
        self.run_config = config_dir / ".gateway-demo.run.toml"
        self.var_dir = var_dir
        self.ils_dir = var_dir / "ils"
        self.stage = stage
        self.secret = secret
        self.ils: IlsSimulator | None = None
        self.gateway: Gateway | None = None
        self.console = None
        self.console_password = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        shutil.rmtree(self.var_dir / "gateway", ignore_errors=True)
        folder = self.var_dir / "secrets"
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        sip2_password = secrets.token_urlsafe(12)
        _secret_file(folder / "sip2-password", sip2_password)
        _secret_file(folder / "patron-secret", self.secret)
        _secret_file(folder / "gateway-mqtt-password", self.stage.password_file(GATEWAY).read_text().strip())
        cfg_text = self.template.read_text(encoding="utf-8")
        user = re.search(r'(?m)^user = "([^"]+)"', cfg_text)[1]
        library = Library.demo()
        self.ils = IlsSimulator(self.ils_dir, library, IlsServer(library, user=user, password=sip2_password,
                                                                 latency_ms=ILS_LATENCY_MS)).start()
        self.run_config.write_text(
            f"# A run copy of {self.template.name} for one `make demo` (pid {os.getpid()}): this run's ports.\n"
            + _with_ports(cfg_text, self.stage.port, self.ils.server.port), encoding="utf-8")
        cfg = load_gateway_config(self.run_config)
        self.gateway = Gateway(cfg)
        export = self.var_dir / "gateway" / "patrons-export.csv"
        export.write_text("card,class,status,loans_elsewhere\n" + "".join(
            f"{p.card_number},{p.patron_class},{p.status},{p.loans_elsewhere}\n" for p in demo_patrons()),
            encoding="utf-8")
        import_export(self.gateway.journal, export, cfg.patrons.secret, snapshot=cfg.patrons.snapshot)
        self._start_console(cfg)
        self._thread = threading.Thread(target=self.gateway.run, args=(self._stop,), name="demo-gateway",
                                        daemon=True)
        self._thread.start()

    def _start_console(self, cfg) -> None:
        from gateway.console import ConsoleServer
        from gateway.console.auth import hash_password
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        cfg = replace(cfg, console=replace(cfg.console, listen=f"127.0.0.1:{port}", secure_cookies=False))
        self.console_password = secrets.token_urlsafe(9)
        self.gateway.journal.user_set(CONSOLE_USER, hash_password(self.console_password), "operator")
        self.console = ConsoleServer(cfg, self.gateway.journal)
        self.console.start()

    def console_bookcases(self) -> list[str]:
        """Log in to the console as the demo's account and read its fleet page: the bookcases it lists."""
        import http.cookiejar
        import urllib.parse
        import urllib.request
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        form = urllib.parse.urlencode({"user": CONSOLE_USER, "password": self.console_password}).encode()
        with opener.open(self.console_url.rstrip("/") + "/login", data=form, timeout=10) as page:     # redirected to /
            html = page.read().decode("utf-8", "replace")
        return sorted(set(re.findall(r'data-bookcase="([^"]+)"', html)))

    @property
    def console_url(self) -> str:
        return self.console.url if self.console is not None else ""

    @property
    def online(self) -> bool:
        return self.gateway is not None and self.gateway.consumer.online

    @property
    def ils_port(self) -> int:
        return self.ils.server.port if self.ils else 0

    def transactions(self, item: str) -> list[dict]:
        return [t for t in self.ils.library.transactions() if t["item"] == item] if self.ils else []

    def stop(self) -> None:
        if self.console is not None:
            self.console.stop()
        self._stop.set()
        if self._thread is not None:
            self._thread.join(60)
        if self.ils is not None:
            self.ils.stop()
        self.run_config.unlink(missing_ok=True)


def _secret_file(path: Path, value: str) -> None:
    path.unlink(missing_ok=True)
    path.touch(mode=0o600)
    path.write_text(value + "\n", encoding="utf-8")


def _with_ports(text: str, mqtt_port: int, ils_port: int) -> str:
    """config/gateway-demo.toml with this run's broker port in [mqtt] and the ILS's in [ils]."""
    out, section = [], ""
    for line in text.splitlines(keepends=True):
        head = re.match(r"\s*\[([^\]]+)\]", line)
        if head:
            section = head[1].strip()
        if section in ("mqtt", "ils") and re.match(r"\s*port\s*=", line):
            line = f"port = {mqtt_port if section == 'mqtt' else ils_port}\n"
        out.append(line)
    return "".join(out)
