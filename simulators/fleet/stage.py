"""The broker side of a demo fleet: Mosquitto with the fleet's ACL, a password per user, and a monitor.

Used by `make demo` (simulators/demo.py) and `python -m simulators.fleet`. Passwords are random, made for
the run and written to ``<workdir>/<user>.mqtt-password`` (mode 0600); the repo ships none.
"""

from __future__ import annotations

import json
import secrets
import sys
import threading
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt import publish
from paho.mqtt.enums import CallbackAPIVersion

from simulators.fleet.broker import Broker, add_password

ROOT = Path(__file__).resolve().parents[2]
ACL = ROOT / "config" / "mosquitto" / "citybook.acl"
MONITOR = "monitor"         # the ACL's read-only user
GATEWAY = "gateway"         # the ACL's one writer under central/: here it announces the demo's screen content


class FleetStage:
    """``start()`` Mosquitto on a free loopback port for ``bookcases`` (their ids are their user names) and
    a read-only monitor client that prints the transactions and holdings crossing it, and each bookcase
    going online or offline."""

    def __init__(self, workdir: Path, bookcases: list[str], print_lock: threading.Lock | None = None) -> None:
        self.workdir = workdir
        self.users = [*bookcases, MONITOR, GATEWAY]
        self.print_lock = print_lock or threading.Lock()
        self.broker = Broker(workdir / "broker", acl_file=ACL, password_file=workdir / "broker-passwd")
        self.monitor: mqtt.Client | None = None
        self._online: dict[str, Any] = {}       # per topic: state messages are shown when this changes only

    @property
    def port(self) -> int:
        return self.broker.port

    def password_file(self, user: str) -> Path:
        return self.workdir / f"{user}.mqtt-password"

    def start(self) -> None:
        """Raises BrokerError (Mosquitto missing, or it would not start) with the reason."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.broker.password_file.unlink(missing_ok=True)
        for user in self.users:
            password = secrets.token_urlsafe(18)
            add_password(self.broker.password_file, user, password)
            path = self.password_file(user)
            path.unlink(missing_ok=True)
            path.touch(mode=0o600)
            path.write_text(password + "\n")
        self.broker.start()
        self._start_monitor()

    def mqtt_settings(self, bookcase: str) -> dict[str, Any]:
        """The ``[mqtt]`` table of a bookcase's config for this broker."""
        return {"host": "127.0.0.1", "port": self.port, "username": bookcase,
                "password_file": str(self.password_file(bookcase)), "reconnect_min_s": 0.5, "reconnect_max_s": 5}

    def announce(self, url: str, version: int, library: str = "minhang") -> str:
        """Publish, as the gateway, the retained announcement of screen content ``version`` at ``url``;
        returns the topic."""
        topic = f"citybook/v1/{library}/central/content"
        publish.single(topic, json.dumps({"v": 1, "version": version, "url": url}), qos=1, retain=True,
                       hostname="127.0.0.1", port=self.port, client_id="demo-gateway", protocol=mqtt.MQTTv5,
                       auth={"username": GATEWAY, "password": self.password_file(GATEWAY).read_text().strip()})
        return topic

    def subscribe_hint(self) -> str:
        return (f"mosquitto_sub -p {self.port} -u {MONITOR} -P \"$(cat {self.password_file(MONITOR)})\" "
                "-t 'citybook/v1/#' -v")

    def stop(self) -> None:
        if self.monitor is not None:
            self.monitor.disconnect()
            self.monitor.loop_stop()
            self.monitor = None
        self.broker.stop()

    def _start_monitor(self) -> None:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="demo-monitor", protocol=mqtt.MQTTv5)
        client.username_pw_set(MONITOR, self.password_file(MONITOR).read_text().strip())
        client.on_connect = lambda c, u, f, rc, p: c.subscribe("citybook/v1/#", qos=1)
        client.on_message = lambda c, u, msg: self._show(msg.topic, msg.payload)
        client.connect("127.0.0.1", self.port)
        client.loop_start()
        self.monitor = client

    def _show(self, topic: str, payload: bytes) -> None:
        try:
            m = json.loads(payload)
        except ValueError:
            return
        if not isinstance(m, dict):
            return
        where = "/".join(topic.split("/")[-2:])
        kind = m.get("type")
        if kind == "state":
            online = bool(m.get("online"))
            if self._online.get(topic) == online:
                return                          # one a publish: outbox depth and counters, too chatty to show
            self._online[topic] = online
            text = f"{'online' if online else 'offline'}, {m.get('outbox_depth')} event(s) waiting"
        elif kind == "ack":
            text = "acks " + ", ".join(f"seq {r.get('seq')} {r.get('status')}" + (f" (due {r['due']})" if r.get("due")
                                       else "") for r in m.get("results", []) if isinstance(r, dict))
        elif kind == "gateway_state":
            ils = (m.get("ils") or {}).get("up")
            shown = (bool(m.get("online")), ils, (m.get("backlog") or {}).get("depth"))
            if self._online.get(topic) == shown:
                return                          # a heartbeat: shown when online, the ILS or the backlog changes
            self._online[topic] = shown
            reach = "up" if ils else "not reached yet" if ils is None else "DOWN"
            text = f"gateway {'online' if shown[0] else 'offline'}, ILS {reach}, backlog {shown[2]}"
        elif kind == "patron_status":
            shown = (m.get("status"), m.get("loans_elsewhere"))
            first = topic not in self._online
            if first or self._online.get(topic) == shown:
                self._online[topic] = shown
                return                          # every card's status at start: shown only when one changes
            self._online[topic] = shown
            text = f"card key {str(m.get('patron'))[:8]}… is now {shown[0]}, {shown[1]} loan(s) elsewhere"
        elif kind == "holdings":
            text = f"holds {len(m.get('items', []))} books"
        elif where == "central/content":
            text = f"the library announces screen content version {m.get('version')} at {m.get('url')}"
        elif kind in ("loan", "return"):
            text = f"seq {m.get('seq')} {kind} {m.get('item')} (door {m.get('door')})"
        else:
            text = f"seq {m.get('seq')} {kind}"
        with self.print_lock:
            print(f"   ⇄ broker  {where:<18} {text}", flush=True, file=sys.stdout)
