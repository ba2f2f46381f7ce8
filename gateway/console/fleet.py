"""What the fleet says of itself, live: every bookcase's retained ``state`` and ``holdings``, and each gateway's.

A read-only MQTT client (the bookcase's own kiosk.sync.link.Link, with its reconnects and backoff, but no last
will) subscribes to ``<root>bookcase/+/state``, ``<root>bookcase/+/holdings`` and ``<root>central/gateway/+/state``
and asks for the retained messages on every subscription, so a restarted console knows the fleet at once.
Messages are checked with the fleet's own schemas (kiosk.sync.schema); a bad one is counted and ignored.
Waiters (the browsers' event streams) are woken on every change; ``version`` tells them whether anything moved.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace
from typing import Callable

from paho.mqtt.subscribeoptions import SubscribeOptions

from kiosk.config import MqttConfig
from kiosk.logtext import shown
from kiosk.sync import schema
from kiosk.sync.events import Received, SyncEvent
from kiosk.sync.link import Link

LOGGER = logging.getLogger(__name__)


class FleetWatch:
    """The latest state and holdings of every bookcase, and the gateways' states; thread-safe."""

    def __init__(self, cfg: MqttConfig | None, root: str, name: str = "console",
                 clock: Callable[[], float] = time.time) -> None:
        self.root = root
        self.clock = clock
        self.states: dict[str, dict] = {}          # bookcase -> its last state message
        self.holdings: dict[str, dict] = {}        # bookcase -> {door: count}, items held
        self.gateways: dict[str, dict] = {}
        self.seen: dict[str, float] = {}           # bookcase -> when its state last came (epoch)
        self.refused = 0
        self.version = 0
        self._changed = threading.Condition()
        self.link = Link(replace(cfg, client_id=f"{cfg.client_id}-{name}"), self._subscriptions, self._post,
                         lambda: None, name) if cfg is not None else None

    def start(self) -> None:
        if self.link is not None:
            self.link.start()

    def close(self) -> None:
        if self.link is not None:
            self.link.close()
        with self._changed:
            self.version += 1
            self._changed.notify_all()

    def _subscriptions(self, _every_retained: bool) -> list[tuple[str, SubscribeOptions]]:
        every = SubscribeOptions(qos=1, retainHandling=SubscribeOptions.RETAIN_SEND_ON_SUBSCRIBE)
        return [(f"{self.root}bookcase/+/state", every), (f"{self.root}bookcase/+/holdings", every),
                (f"{self.root}central/gateway/+/state", every)]

    def _post(self, event: SyncEvent) -> None:
        """On paho's thread: take in a message, then acknowledge it (nothing of ours can fail after this)."""
        if isinstance(event, Received):
            try:
                self.take(event.topic, event.payload)
            except Exception:
                LOGGER.exception("console: a message on %s could not be taken in", shown(event.topic))
            self.link.ack(event.gen, event.mid, event.qos)

    def take(self, topic: str, payload: bytes) -> bool:
        """One message of the watched topics; True if it changed what the console shows."""
        if not topic.startswith(self.root):
            return False
        parts = topic[len(self.root):].split("/")
        if len(parts) != 3 or parts[0] not in ("bookcase", "central"):
            return False
        kind, who = parts[2], parts[1]
        if not payload:                              # a retained message cleared: the bookcase was retired
            return self._update(lambda: (self.states.pop(who, None), self.holdings.pop(who, None)))
        try:
            msg = schema.decode(payload, 4 * 1024 * 1024)
            if parts[0] == "central":
                if msg.get("gateway") != who:
                    raise schema.MessageError("wrong_sender", f"the state says gateway {msg.get('gateway')!r}")
                return self._update(lambda: self.gateways.__setitem__(who, msg))
            schema.check_message(kind, msg)
            if msg["bookcase"] != who:
                raise schema.MessageError("wrong_sender", f"the message says bookcase {msg['bookcase']!r}")
        except schema.MessageError as exc:
            self.refused += 1
            LOGGER.warning("console: ignored a message on %s: %s", shown(topic), shown(exc))
            return False
        if kind == "state":
            with self._changed:
                before = self.states.get(who)
                self.seen[who] = self.clock()
                if before is not None and _shown(before) == _shown(msg):
                    self.states[who] = msg     # a heartbeat: nothing on screen changes, no page is told
                    return False
            return self._update(lambda: self.states.__setitem__(who, msg))
        doors: dict[int, int] = {}
        for item in msg["items"]:
            doors[item.get("door") or 0] = doors.get(item.get("door") or 0, 0) + 1
        summary = {"ts": msg["ts"], "items": len(msg["items"]), "doors": dict(sorted(doors.items()))}
        return self._update(lambda: self.holdings.__setitem__(who, summary))

    def _update(self, change: Callable[[], object]) -> bool:
        with self._changed:
            change()
            self.version += 1
            self._changed.notify_all()
        return True

    def wait(self, version: int, timeout_s: float) -> int:
        """Block until the version moves past ``version`` (or ``timeout_s``); returns the version now."""
        with self._changed:
            self._changed.wait_for(lambda: self.version != version, timeout_s)
            return self.version

    def snapshot(self) -> tuple[dict[str, dict], dict[str, dict], dict[str, dict]]:
        with self._changed:
            return dict(self.states), dict(self.holdings), dict(self.gateways)


def _shown(msg: dict) -> tuple:
    """What the console shows of a state message, without its id and time (a heartbeat changes only those)."""
    return tuple(sorted((k, repr(v)) for k, v in msg.items() if k not in ("id", "ts", "last_sync", "counters")))
