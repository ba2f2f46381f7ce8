"""A running console for the tests: real Mosquitto, a real journal file, uvicorn on a free port, two accounts."""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from pathlib import Path

import httpx

from gateway.config import GatewayConfig, load_gateway_config
from gateway.console import ConsoleServer
from gateway.console.auth import hash_password
from gateway.journal import Journal, open_journal
from simulators.console_sample import ROOT
from tests.gateway.support import write_gateway_config
from tests.sync.fleet import publish

OPERATOR, VIEWER, PASSWORD = "zhang", "li", "correct horse battery"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class RunningConsole:
    server: ConsoleServer
    journal: Journal
    cfg: GatewayConfig
    broker_port: int

    @property
    def url(self) -> str:
        return self.server.url.rstrip("/")

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, follow_redirects=False, timeout=10)

    def login(self, name: str = OPERATOR, password: str = PASSWORD) -> httpx.Client:
        client = self.client()
        answer = client.post("/login", data={"user": name, "password": password})
        assert answer.status_code == 303, answer.text
        return client

    def publish_state(self, msg: dict) -> None:
        publish(self.broker_port, f"{ROOT}bookcase/{msg['bookcase']}/state", json.dumps(msg).encode(), retain=True)


def start_console(folder: Path, broker_port: int, **console: object) -> RunningConsole:
    options = {"listen": f'"127.0.0.1:{free_port()}"', "secure_cookies": "false", **console}
    extra = "[console]\n" + "".join(f"{k} = {v}\n" for k, v in options.items())
    cfg = load_gateway_config(write_gateway_config(folder, mqtt_port=broker_port, extra=extra))
    journal = open_journal(cfg.journal)
    journal.user_set(OPERATOR, hash_password(PASSWORD), "operator")
    journal.user_set(VIEWER, hash_password(PASSWORD), "viewer")
    server = ConsoleServer(cfg, journal)
    server.start()
    return RunningConsole(server, journal, cfg, broker_port)


def csrf_of(client: httpx.Client) -> str:
    """The CSRF token the console put in its pages for this session."""
    page = client.get("/alarms").text
    marker = 'name="csrf" value="'
    return page[page.index(marker) + len(marker):].split('"', 1)[0]
