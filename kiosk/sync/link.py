"""The MQTT link: one paho client per connection, reconnecting with backoff; it only posts events to the core loop.

Each connection gets a fresh paho client (MQTT 5, ``clean_start=False``, a session-expiry interval, a
retained last will saying "offline"). paho keeps unacknowledged messages in memory only, so nothing is
carried from one connection to the next: when a connection drops, the outbox relay resends every unsent
row on the next one. Inbound QoS 1 messages are acknowledged by hand, after the core loop has applied
them; an acknowledgement for a connection that has since dropped is not sent (the broker redelivers the
message, and the inbox makes the redelivery a no-op).

Threads: a supervisor thread connects, waits and backs off; paho's own network thread runs each
connection. ``publish`` and ``ack`` are called from the core loop and never block on the network.
"""

from __future__ import annotations

import logging
import random
import ssl
import threading
import time
from typing import Callable

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from kiosk.config import MqttConfig
from kiosk.sync.events import LinkDown, LinkUp, Published, Received, SyncEvent

LOGGER = logging.getLogger(__name__)
PAHO_LOGGER = logging.getLogger("kiosk.sync.paho")

CONNACK_TIMEOUT_S = 15.0
STABLE_S = 30.0                 # a connection that lasted this long resets the backoff
FINAL_PUBLISH_TIMEOUT_S = 2.0   # on shutdown: wait this long for the broker to take the "offline" state
# Inbound QoS 1 messages the broker may have in flight to us. We acknowledge after applying, so this also
# bounds how many inbound messages can queue in the core loop ahead of a patron's card.
RECEIVE_MAXIMUM = 16
EXTRA_INFLIGHT = 16             # room in paho's window for state and holdings next to the outbox window
MQTT_MAX_PACKET = 268_435_455   # the largest packet MQTT can describe


class Backoff:
    """Delays between connection attempts: from ``min_s`` doubling up to ``max_s``, each drawn between half
    and all of the current step, so that 500 bookcases cut off together do not reconnect in step."""

    def __init__(self, min_s: float, max_s: float, rng: random.Random | None = None) -> None:
        self.min_s = min_s
        self.max_s = max_s
        self.rng = rng or random.Random()
        self.step = min_s

    def next(self) -> float:
        """The delay before the next attempt; the one after is twice as long (up to ``max_s``)."""
        delay = self.step * (0.5 + self.rng.random() / 2)
        self.step = min(self.step * 2, self.max_s)
        return delay

    def reset(self) -> None:
        """After a connection that lasted: the next drop is retried quickly again."""
        self.step = self.min_s


class _Conn:
    """One connection: its generation number, paho client, and what its callbacks have seen."""

    def __init__(self, gen: int, client: mqtt.Client) -> None:
        self.gen = gen
        self.client = client
        self.up = False
        self.up_at: float | None = None
        self.subscribed: list[tuple[str, SubscribeOptions]] = []
        self.ended = threading.Event()
        self.wake = threading.Event()           # the link thread looks again: the connection ended, or stop

    def end(self) -> None:
        self.ended.set()
        self.wake.set()


class Link:
    """Keeps one bookcase connected to its broker. ``start()``, then ``publish``/``ack`` from the core loop."""

    def __init__(self, cfg: MqttConfig, subscriptions: Callable[[bool], list[tuple[str, SubscribeOptions]]],
                 post: Callable[[SyncEvent], None], will: Callable[[], tuple[str, bytes] | None], name: str, *,
                 every_retained: bool = False) -> None:
        """``subscriptions(every_retained)``: what to subscribe to on each connection; ``every_retained``
        asks for every retained message until one subscription has succeeded (see Topics.subscriptions)."""
        self.cfg = cfg
        self.subscriptions = subscriptions
        self.every_retained = every_retained
        self.post = post
        self.will = will
        self.name = name
        self.failures = 0
        self._lock = threading.Lock()
        self._conn: _Conn | None = None
        self._stop = threading.Event()
        self._final: tuple[str, bytes] | None = None
        self.backoff = Backoff(cfg.reconnect_min_s, cfg.reconnect_max_s)
        self._thread = threading.Thread(target=self._run, name=f"mqtt-{name}", daemon=True)

    @property
    def broker(self) -> str:
        return f"{self.cfg.host}:{self.cfg.port}"

    def start(self) -> None:
        if self.cfg.password and not self.cfg.tls:
            LOGGER.warning("bookcase %s: the MQTT password goes to %s without TLS; set tls = true outside a "
                           "test bench", self.name, self.broker)
        self._thread.start()

    def close(self, final: tuple[str, bytes] | None = None, timeout_s: float = 10.0) -> None:
        """Stop: publish ``final`` (topic, retained payload) if connected, disconnect, join the threads."""
        self._final = final
        self._stop.set()
        with self._lock:
            if self._conn is not None:
                self._conn.wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                LOGGER.warning("bookcase %s: the MQTT link did not stop within %.0f s", self.name, timeout_s)

    # --- called from the core loop ---------------------------------------------------------------

    def publish(self, gen: int, topic: str, payload: bytes, retain: bool = False) -> int | None:
        """Hand a QoS 1 message to connection ``gen``; its mid, or None if that connection is gone."""
        conn = self._conn
        if conn is None or conn.gen != gen or not conn.up:
            return None
        try:
            info = conn.client.publish(topic, payload, qos=1, retain=retain)
        except OSError as exc:
            # The connection is being torn down under us (the supervisor closes its sockets): LinkDown follows.
            LOGGER.debug("bookcase %s: publish on a closing connection: %s", self.name, exc)
            return None
        except (ValueError, RuntimeError) as exc:
            LOGGER.error("bookcase %s: cannot publish on %s: %s", self.name, topic, exc)
            return None
        return info.mid if info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS else None

    def ack(self, gen: int, mid: int, qos: int) -> None:
        """Acknowledge an applied inbound message, on the connection it came in on only."""
        conn = self._conn
        if qos == 0 or conn is None or conn.gen != gen or not conn.up:
            return
        try:
            conn.client.ack(mid, qos)
        except (OSError, ValueError, RuntimeError) as exc:
            # Not acknowledged: the broker sends it again on the next connection, and the inbox ignores it.
            LOGGER.debug("bookcase %s: acknowledgement on a closing connection: %s", self.name, exc)

    # --- the supervisor thread --------------------------------------------------------------------

    def _run(self) -> None:
        gen = 0
        while not self._stop.is_set():
            gen += 1
            try:
                conn = self._connect(gen)
            except Exception as exc:    # OSError, ssl.SSLError, ValueError from paho: all mean "not now"
                self._failed(f"cannot connect to the broker at {self.broker}: {_why(exc)}")
            else:
                try:
                    self._serve(conn)
                except Exception:
                    # Whatever paho or the network threw, this thread must live on to reconnect (rule 8).
                    LOGGER.exception("bookcase %s: the connection to %s failed unexpectedly; reconnecting",
                                     self.name, self.broker)
                if conn.up_at is not None and time.monotonic() - conn.up_at >= STABLE_S:
                    self.backoff.reset()
            if self._stop.wait(self.backoff.next()):
                break

    def _connect(self, gen: int) -> _Conn:
        cfg = self.cfg
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=cfg.client_id, protocol=mqtt.MQTTv5,
                             reconnect_on_failure=False, manual_ack=True)
        conn = _Conn(gen, client)
        client.on_connect = lambda c, u, flags, rc, props: self._guard(self._on_connect, conn, flags, rc)
        client.on_disconnect = lambda c, u, flags, rc, props: self._guard(self._on_disconnect, conn, rc)
        client.on_publish = lambda c, u, mid, rc, props: self._guard(self._on_publish, conn, mid, rc)
        client.on_message = lambda c, u, msg: self._guard(self._on_message, conn, msg)
        client.on_subscribe = lambda c, u, mid, rcs, props: self._guard(self._on_subscribe, conn, rcs)
        if PAHO_LOGGER.isEnabledFor(logging.DEBUG):
            client.enable_logger(PAHO_LOGGER)     # paho's own lines (it logs a dropped socket as an error)
        if cfg.username:
            client.username_pw_set(cfg.username, cfg.password)
        if cfg.tls:
            context = ssl.create_default_context(cafile=str(cfg.tls_ca) if cfg.tls_ca else None)
            if cfg.tls_cert:
                context.load_cert_chain(str(cfg.tls_cert), str(cfg.tls_key))
            client.tls_set_context(context)
        will = self.will()
        if will is not None:                       # a read-only client (the operators' console) leaves none
            client.will_set(will[0], will[1], qos=1, retain=True)
        client.max_inflight_messages_set(cfg.inflight + EXTRA_INFLIGHT)
        client.max_queued_messages_set(0)
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = cfg.session_expiry_s
        props.ReceiveMaximum = RECEIVE_MAXIMUM
        # Packets far beyond the payload limit are dropped by the broker; those just over it reach us and
        # are refused (and counted) unread.
        props.MaximumPacketSize = min(cfg.max_payload_kb * 1024 * 4 + 65536, MQTT_MAX_PACKET)
        client.connect(cfg.host, cfg.port, keepalive=cfg.keepalive_s, clean_start=False, properties=props)
        return conn

    def _serve(self, conn: _Conn) -> None:
        with self._lock:
            self._conn = conn
        conn.client.loop_start()
        deadline = time.monotonic() + CONNACK_TIMEOUT_S
        try:
            # Asleep until the connection ends, the link stops or CONNACK is overdue: no polling (a fleet
            # simulator runs hundreds of links in one process).
            while True:
                conn.wake.clear()
                if conn.ended.is_set():
                    break
                if self._stop.is_set():
                    self._finish(conn)
                    break
                left = deadline - time.monotonic()
                if not conn.up and left <= 0:
                    self._failed(f"the broker at {self.broker} did not answer CONNECT within "
                                 f"{CONNACK_TIMEOUT_S:.0f} s")
                    break
                conn.wake.wait(None if conn.up else left)
        finally:
            with self._lock:
                self._conn = None
            if conn.up:
                # Going down without paho's on_disconnect (a surprise above): the core loop must know, unless
                # the whole link is stopping.
                conn.up = False
                if not self._stop.is_set():
                    self.post(LinkDown(conn.gen, "the connection was closed by this bookcase"))
            try:
                conn.client.disconnect()
            finally:
                conn.client.loop_stop()

    def _finish(self, conn: _Conn) -> None:
        if conn.up and self._final is not None:
            topic, payload = self._final
            try:
                conn.client.publish(topic, payload, qos=1, retain=True).wait_for_publish(FINAL_PUBLISH_TIMEOUT_S)
            except (ValueError, RuntimeError) as exc:
                LOGGER.info("bookcase %s: could not say goodbye to the broker (%s)", self.name, exc)

    def _failed(self, message: str) -> None:
        self.failures += 1
        if self.failures == 1 or self.failures % 20 == 0:
            LOGGER.warning("bookcase %s: %s (attempt %d); retrying, at most every %.0f s", self.name, message,
                           self.failures, self.cfg.reconnect_max_s)
        else:
            LOGGER.debug("bookcase %s: %s (attempt %d)", self.name, message, self.failures)

    # --- paho callbacks (paho's network thread): post, never raise ---------------------------------

    def _guard(self, callback: Callable, *args: object) -> None:
        # Rule 8: an exception escaping a paho callback would end its network thread.
        try:
            callback(*args)
        except Exception:
            LOGGER.exception("bookcase %s: error in an MQTT callback; the link carries on", self.name)

    def _on_connect(self, conn: _Conn, flags: mqtt.ConnectFlags, rc: mqtt.ReasonCode) -> None:
        if rc.is_failure:
            self._failed(f"the broker at {self.broker} refused the connection: {rc}"
                         + (" (check username, password or client certificate)" if rc.value in (0x86, 0x87) else ""))
            conn.end()
            return
        conn.up, conn.up_at = True, time.monotonic()
        if self.failures:
            LOGGER.info("bookcase %s: reached the broker at %s after %d failed attempt(s)", self.name, self.broker,
                        self.failures)
        self.failures = 0
        # Subscribe on every connection, even to a session the broker kept: a session can outlive its
        # subscriptions (the link dropped between CONNACK and SUBSCRIBE, or the broker lost them), and a
        # bookcase that trusted it would hear nothing from the fleet until the session expired. Subscribing
        # again changes nothing else: retained messages come again only while ``every_retained`` asks for them.
        conn.subscribed = self.subscriptions(self.every_retained)
        conn.client.subscribe(conn.subscribed)
        self.post(LinkUp(conn.gen, bool(flags.session_present)))

    def _on_disconnect(self, conn: _Conn, rc: mqtt.ReasonCode) -> None:
        was_up, conn.up = conn.up, False
        conn.end()
        if was_up and not self._stop.is_set():
            self.post(LinkDown(conn.gen, "the connection closed" if rc.value == 0x80 else str(rc)))

    def _on_publish(self, conn: _Conn, mid: int, rc: mqtt.ReasonCode) -> None:
        self.post(Published(conn.gen, mid, rc.value, str(rc)))

    def _on_message(self, conn: _Conn, msg: mqtt.MQTTMessage) -> None:
        try:
            topic = msg.topic
        except UnicodeDecodeError:
            topic = repr(msg._topic)    # a topic that is not UTF-8: refused downstream as a wrong topic
        self.post(Received(conn.gen, topic, bytes(msg.payload), msg.mid, msg.qos, bool(msg.retain)))

    def _on_subscribe(self, conn: _Conn, codes: list[mqtt.ReasonCode]) -> None:
        refused = False
        for (topic, _), rc in zip(conn.subscribed, codes):
            if rc.is_failure:
                refused = True
                LOGGER.error("bookcase %s: the broker refused the subscription to %s: %s (check its ACL)",
                             self.name, topic, rc)
        if not refused:
            self.every_retained = False     # the broker has sent (or queued for us) every retained message


def _why(exc: Exception) -> str:
    if isinstance(exc, ssl.SSLError):
        return f"TLS: {exc.reason or exc}"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__
