"""Gateway test parts: configs written to disk, bookcase events as a bookcase builds them, a journal per backend."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from gateway.config import GatewayConfig, JournalConfig, load_gateway_config
from gateway.journal import Incoming, Journal, PatronRow, open_journal
from kiosk.core.policy import patron_key
from kiosk.sync import schema
from simulators.fleet.bookcases import SECRET

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=timezone(timedelta(hours=8)))
ROOT = "citybook/v1/minhang/"


def key(card: str) -> str:
    return patron_key(SECRET, card)


class Bookcase:
    """Builds one bookcase's events: ids, seqs and times as the outbox would."""

    def __init__(self, name: str, start: datetime = T0, clock: list[datetime] | None = None) -> None:
        """``clock``: a one-element list shared by several bookcases, so their events' times agree."""
        self.name = name
        self.seq = 0
        self.clock = clock if clock is not None else [start]
        self.session = str(uuid.uuid4())

    @property
    def now(self) -> datetime:
        return self.clock[0]

    def event(self, type_: str, minutes: float = 1, **fields: Any) -> dict:
        self.seq += 1
        self.clock[0] += timedelta(minutes=minutes)
        ev = {"v": 1, "id": str(uuid.uuid4()), "bookcase": self.name, "seq": self.seq,
              "ts": self.now.isoformat(timespec="milliseconds"), "type": type_, **fields}
        if type_ in ("loan", "return"):
            ev.setdefault("session", self.session)
            ev.setdefault("door", 1)
        if type_ == "loan":
            ev.setdefault("due", (self.now + timedelta(days=30)).date().isoformat())
        return schema.check_event(ev)

    def loan(self, item: str, card: str, minutes: float = 1) -> dict:
        return self.event("loan", minutes, item=item, patron=key(card))

    def ret(self, item: str, minutes: float = 1) -> dict:
        return self.event("return", minutes, item=item)


def incoming(ev: dict) -> Incoming:
    return Incoming(f"{ROOT}bookcase/{ev['bookcase']}/event", ev["bookcase"], schema.encode(ev), event=ev)


def record(journal: Journal, *events: dict, hold_s: float = 60.0) -> list:
    return journal.record([incoming(e) for e in events], "gw-test", hold_s)


def sqlite_journal(folder: Path) -> Journal:
    return open_journal(JournalConfig(path=folder / "journal.sqlite3"))


def add_patrons(journal: Journal, cards: dict[str, str] | list[str], status: str = "active") -> None:
    """Patron map rows: card -> ILS patron id (the card itself, as most ILSs key patrons)."""
    pairs = cards.items() if isinstance(cards, dict) else [(c, c) for c in cards]
    journal.import_patrons([PatronRow(key(card), ils, "adult", status, 0) for card, ils in pairs], full=False)


def write_gateway_config(folder: Path, *, mqtt_port: int = 1883, ils_port: int = 6001, journal: str | None = None,
                         gateway_id: str = "gw-1", extra: str = "", ils_extra: str = "",
                         hold_s: float = 3) -> Path:
    """A gateway.toml with its secret files beside it. ``journal``: a postgresql:// url, else an SQLite file.
    ``hold_s``: how long a return waits for its loan; a test whose bookcases publish one after another (a return
    may reach the broker long before its loan on a loaded machine) needs it longer than its slowest publisher."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sip2-password").write_text("sip2-test-password\n")
    (folder / "patron-secret").write_text(SECRET + "\n")
    journal_line = f'url = "{journal}"' if journal else 'path = "journal.sqlite3"'
    text = f"""library = "minhang"
[gateway]
id = "{gateway_id}"
state_interval_s = 2
[mqtt]
host = "127.0.0.1"
port = {mqtt_port}
reconnect_min_s = 0.2
reconnect_max_s = 1.0
keepalive_s = 10
[ils]
host = "127.0.0.1"
port = {ils_port}
user = "citybook"
password_file = "sip2-password"
location = "MH-BOOKCASES"
institution = "CN-310112"
backoff_min_s = 0.2
backoff_max_s = 1.0
timeout_s = 3
{ils_extra}
[journal]
{journal_line}
[patrons]
secret_file = "patron-secret"
snapshot = "patrons.jsonl"
refresh_delay_s = 0.2
[order]
hold_s = {hold_s}
lease_s = 20
[acks]
delay_ms = 20
{extra}
"""
    path = folder / f"{gateway_id}.toml"
    path.write_text(text)
    return path


def load(path: Path) -> GatewayConfig:
    return load_gateway_config(path)


class Publisher:
    """A bookcase's side of the broker for tests: publishes events (QoS 1) and waits for every PUBACK."""

    def __init__(self, port: int, client_id: str = "test-bookcases") -> None:
        import threading

        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion
        self.acked: set[int] = set()
        self.lock = threading.Lock()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        self.client.on_publish = self._on_publish
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)
        self.client.connect("127.0.0.1", port, keepalive=10)
        self.client.loop_start()
        from tests.scenarios.harness import wait_for
        wait_for(self.client.is_connected, 10, "the test publisher to connect")

    def _on_publish(self, client, userdata, mid, rc, props) -> None:
        with self.lock:
            self.acked.add(mid)

    def send(self, *events: dict | tuple[str, bytes], wait: bool = True) -> None:
        mids = []
        for ev in events:
            topic, body = ev if isinstance(ev, tuple) else (f"{ROOT}bookcase/{ev['bookcase']}/event",
                                                            schema.encode(ev))
            mids.append(self.client.publish(topic, body, qos=1).mid)
        if wait:
            from tests.scenarios.harness import wait_for
            wait_for(lambda: all(m in self.acked for m in mids), 30, "the broker to take the events")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
