"""Fleet test parts: bookcases that talk MQTT, and an independent subscriber that records what passes."""

from __future__ import annotations

import json
import threading
import uuid
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from kiosk.config import load_config
from simulators.bookcase import SimulatedBookcase
from simulators.fleet.bookcases import carry, fleet_world, write_fleet_config
from tests.scenarios.harness import Bookcase, wait_for

ROOT_TOPIC = "citybook/v1/minhang/"


def mqtt_section(port: int, **extra: Any) -> dict[str, Any]:
    """An [mqtt] section for the test broker: quick reconnects, small windows to exercise them."""
    return {"host": "127.0.0.1", "port": port, "reconnect_min_s": 0.2, "reconnect_max_s": 1.0, "keepalive_s": 10,
            **extra}


class FleetCase(Bookcase):
    """A simulated bookcase of the fleet: its own id, items ``first_item``… (no barcode shared with the others)."""

    def __init__(self, folder: Path, bookcase_id: str, mqtt_cfg: dict[str, Any] | None, *, first_item: int,
                 doors: int = 3, books_per_door: int = 6, **session: Any) -> None:
        self.folder = folder
        self.config_path = write_fleet_config(folder, bookcase_id, f"测试书柜 {bookcase_id}", mqtt_cfg, doors=doors,
                                              session=session)
        self.cfg = load_config(self.config_path)
        world = fleet_world(self.cfg, first_item, books_per_door, seed=first_item, pop_delay_ms=30)
        self.sim = SimulatedBookcase(self.cfg, folder / "sim", world=world, air_ms=1.0, seed=first_item)
        self.app = None
        self.thread = None
        self.proc = None
        self._view = None

    @property
    def id(self) -> str:
        return self.cfg.bookcase.id

    def carry_to(self, other: "FleetCase", item: str) -> None:
        carry(item, self.sim.world, other.sim.world)

    def remote_loans(self, open_only: bool = False) -> list[dict]:
        where = " WHERE returned_utc IS NULL" if open_only else ""
        return [dict(r) for r in self.view.db.query(f"SELECT * FROM remote_loans{where} ORDER BY loaned_utc")]

    def counters(self) -> dict[str, int]:
        """The sync counters: live from an in-process daemon, else as last saved in the database."""
        if self.app is not None and self.app.sync is not None:
            return dict(self.app.sync.counters)
        from kiosk.store.replica import load_meta
        return load_meta(self.view.db)[0]

    def depth(self) -> int:
        return self.view.outbox_depth()


class Watcher:
    """An MQTT client of its own (the library's side, in effect) recording every message it is sent."""

    def __init__(self, port: int, topics: tuple[str, ...] = (ROOT_TOPIC + "#",), *, client_id: str | None = None,
                 persistent: bool = False, username: str | None = None, password: str | None = None,
                 tls: Any = None) -> None:
        self.topics = topics
        self.messages: list[tuple[str, bytes, bool]] = []
        self.lock = threading.Lock()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id or f"watcher-{uuid.uuid4().hex[:8]}",
                                  protocol=mqtt.MQTTv5)
        self.client.on_connect = self._on_connect
        self.subscribed = threading.Event()
        self.client.on_subscribe = lambda *args: self.subscribed.set()
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(0.1, 0.5)
        if username:
            self.client.username_pw_set(username, password)
        if tls is not None:
            self.client.tls_set_context(tls)
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600 if persistent else 0
        self.client.connect_async("127.0.0.1", port, keepalive=10, clean_start=not persistent, properties=props)
        self.client.loop_start()

    def _on_connect(self, client, userdata, flags, rc, props) -> None:
        if not rc.is_failure:
            client.subscribe([(t, 1) for t in self.topics])

    def _on_message(self, client, userdata, msg) -> None:
        with self.lock:
            self.messages.append((msg.topic, bytes(msg.payload), bool(msg.retain)))

    def wait_connected(self, timeout: float = 10) -> None:
        """Until connected and subscribed."""
        wait_for(lambda: self.client.is_connected() and self.subscribed.is_set(), timeout, "the watcher to subscribe")

    def on(self, suffix: str) -> list[dict]:
        """Parsed payloads of messages whose topic ends with ``suffix``, in arrival order."""
        with self.lock:
            found = [p for t, p, _ in self.messages if t.endswith(suffix)]
        return [json.loads(p) for p in found if p]

    def events(self, bookcase: str | None = None) -> list[dict]:
        return self.on(f"bookcase/{bookcase}/event" if bookcase else "/event")

    def last(self, suffix: str) -> dict | None:
        found = self.on(suffix)
        return found[-1] if found else None

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def publish(port: int, topic: str, payload: bytes | str | dict, *, retain: bool = False, username: str | None = None,
            password: str | None = None, tls: Any = None) -> mqtt.ReasonCode | None:
    """Publish one QoS 1 message with a client of its own; returns the PUBACK's reason code."""
    result: dict[str, Any] = {}
    done = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"pub-{uuid.uuid4().hex[:8]}", protocol=mqtt.MQTTv5)
    if username:
        client.username_pw_set(username, password)
    if tls is not None:
        client.tls_set_context(tls)

    def on_publish(c, u, mid, rc, props) -> None:
        result["rc"] = rc
        done.set()

    client.on_publish = on_publish
    body = json.dumps(payload, ensure_ascii=False).encode() if isinstance(payload, dict) else (
        payload.encode() if isinstance(payload, str) else payload)
    client.connect("127.0.0.1", port, keepalive=10)
    client.loop_start()
    try:
        wait_for(client.is_connected, 10, "the publisher to connect")
        client.publish(topic, body, qos=1, retain=retain)
        done.wait(10)
    finally:
        client.disconnect()
        client.loop_stop()
    return result.get("rc")


def leave_session(port: int, client_id: str, subscriptions: list | None) -> None:
    """Connect as ``client_id`` with a session the broker keeps, subscribe (or not), take whatever retained
    messages come, and go: what a bookcase's previous database, or a link cut before SUBSCRIBE, leaves behind."""
    got_suback, client = threading.Event(), mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                                         protocol=mqtt.MQTTv5)
    received: list[str] = []
    client.on_subscribe = lambda *args: got_suback.set()
    client.on_message = lambda c, u, msg: received.append(msg.topic)
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 3600
    client.connect("127.0.0.1", port, keepalive=10, clean_start=False, properties=props)
    client.loop_start()
    try:
        wait_for(client.is_connected, 10, f"{client_id} to connect")
        if subscriptions:
            client.subscribe(subscriptions)
            assert got_suback.wait(10), "no SUBACK"
            wait_for(lambda: any(t.endswith("/holdings") for t in received), 10, "the retained holdings")
    finally:
        client.disconnect()
        client.loop_stop()
