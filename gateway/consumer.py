"""The gateway's MQTT side: the bookcases' events in (journaled, then acknowledged), our messages out with PUBACK.

The connection is kiosk.sync.link.Link, the bookcase's own (MQTT 5, ``clean_start=False`` with a session-expiry
interval, reconnect with backoff, manual acknowledgements, a retained last will), subscribed to the shared
subscription ``$share/gateway/<root>bookcase/+/event``: each event reaches one of the gateway processes.

A message is acknowledged (PUBACK) only after its outcome is durable in the journal: the writer thread takes
what paho received, checks each with kiosk.sync.schema (an invalid event is journaled as refused, with the
schema's reason, and acknowledged too: never left to come back forever), writes a batch in one transaction,
then acknowledges the batch in the order it arrived (MQTT 5 §4.6). If the journal cannot be written, nothing is
acknowledged and the batch is tried again; a connection that dropped meanwhile gets its messages again from the
broker, and the journal takes each id once.
"""

from __future__ import annotations

import logging
import queue
import re
import threading
from dataclasses import dataclass
from typing import Callable

from paho.mqtt.subscribeoptions import SubscribeOptions

from gateway.config import GatewayConfig
from gateway.journal import Incoming, Journal, Recorded
from kiosk.logtext import shown
from kiosk.sync import retry, schema
from kiosk.sync.events import LinkDown, LinkUp, Published, Received, SyncEvent
from kiosk.sync.link import Link
from kiosk.sync.schema import MessageError

LOGGER = logging.getLogger(__name__)

SHARE_GROUP = "gateway"
BATCH_MAX = 500
RETRY_S = 1.0
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class _Pending:
    """A QoS 1 publication waiting for the broker's PUBACK."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.reason_code = -1

    def wait(self, timeout_s: float) -> bool:
        """True if the broker took it (reason code under 0x80) within ``timeout_s``."""
        return self.done.wait(timeout_s) and 0 <= self.reason_code < 0x80


class Publisher:
    """Publishes on the link's current connection and tells when the broker acknowledged."""

    def __init__(self) -> None:
        self.link: Link | None = None
        self.gen: int | None = None
        self._lock = threading.Lock()
        self._pending: dict[tuple[int, int], _Pending] = {}
        self._early: dict[tuple[int, int], int] = {}

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> _Pending | None:
        """None when not connected (or paho refused); else wait() on the result for the PUBACK."""
        gen, link = self.gen, self.link
        if gen is None or link is None:
            return None
        mid = link.publish(gen, topic, payload, retain=retain)
        if mid is None:
            return None
        pending = _Pending()
        with self._lock:
            # On loopback the PUBACK can come back before publish() returned the mid to us.
            rc = self._early.pop((gen, mid), None)
            if rc is None:
                self._pending[(gen, mid)] = pending
            else:
                pending.reason_code = rc
                pending.done.set()
        return pending

    def published(self, event: Published) -> None:
        with self._lock:
            pending = self._pending.pop((event.gen, event.mid), None)
            if pending is None:
                self._early[(event.gen, event.mid)] = event.reason_code
                if len(self._early) > 10000:       # never waited for: forget the oldest
                    self._early.pop(next(iter(self._early)))
                return
        pending.reason_code = event.reason_code
        pending.done.set()

    def up(self, gen: int) -> None:
        self.gen = gen

    def down(self, gen: int) -> None:
        with self._lock:
            if self.gen == gen:
                self.gen = None
            lost = [k for k in self._pending if k[0] == gen]
            for key in lost:
                self._pending.pop(key).done.set()    # reason code stays -1: not acknowledged
            self._early = {k: v for k, v in self._early.items() if k[0] != gen}


@dataclass
class ConsumerStats:
    received: int = 0
    new: int = 0
    duplicates: int = 0
    refused: int = 0
    link_lost: int = 0


class Consumer:
    """Owns the MQTT link: journals inbound events, acknowledges them, and routes PUBACKs to the Publisher."""

    def __init__(self, cfg: GatewayConfig, journal: Journal, publisher: Publisher,
                 will: Callable[[], tuple[str, bytes]], on_recorded: Callable[[list[tuple[Incoming, Recorded]]], None]
                 ) -> None:
        self.cfg = cfg
        self.journal = journal
        self.publisher = publisher
        self.on_recorded = on_recorded
        self.root = cfg.mqtt.topic_root
        self.max_bytes = cfg.mqtt.max_payload_kb * 1024
        self.stats = ConsumerStats()
        self.online = False
        self.link = Link(cfg.mqtt, self._subscriptions, self._post, will, f"gateway {cfg.id}")
        publisher.link = self.link
        self._inbox: queue.Queue[Received | None] = queue.Queue()
        self._stop = threading.Event()
        self._writer = threading.Thread(target=self._write_loop, name=f"gateway-{cfg.id}-journal", daemon=True)

    def topic_filter(self) -> str:
        return f"$share/{SHARE_GROUP}/{self.root}bookcase/+/event"

    def _subscriptions(self, every_retained: bool) -> list[tuple[str, SubscribeOptions]]:
        return [(self.topic_filter(), SubscribeOptions(qos=1))]

    def start(self) -> None:
        self._writer.start()
        self.link.start()

    def stop_consuming(self) -> None:
        """Stop writing (what is still queued is not acknowledged: the broker keeps it for our session)."""
        self._stop.set()
        self._inbox.put(None)
        self._writer.join(30)

    def close(self, final: tuple[str, bytes] | None) -> None:
        if not self._stop.is_set():
            self.stop_consuming()
        self.link.close(final)

    # --- from paho's thread: hand over, never block --------------------------------------------------

    def _post(self, event: SyncEvent) -> None:
        if isinstance(event, Received):
            self._inbox.put(event)
        elif isinstance(event, Published):
            self.publisher.published(event)
        elif isinstance(event, LinkUp):
            self.online = True
            self.publisher.up(event.gen)
            LOGGER.info("gateway %s: connected to the broker at %s (%s session), consuming %s", self.cfg.id,
                        self.link.broker, "resumed" if event.session_present else "new", self.topic_filter())
        elif isinstance(event, LinkDown):
            self.online = False
            self.stats.link_lost += 1
            self.publisher.down(event.gen)
            LOGGER.warning("gateway %s: lost the broker at %s (%s); unacknowledged events come again",
                           self.cfg.id, self.link.broker, event.reason)

    # --- the writer thread --------------------------------------------------------------------------

    def _write_loop(self) -> None:
        while not self._stop.is_set():
            first = self._inbox.get()
            if first is None:
                break
            batch = [first]
            while len(batch) < BATCH_MAX:
                try:
                    more = self._inbox.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._stop.set()
                    break
                batch.append(more)
            self._write(batch)

    def _write(self, batch: list[Received]) -> None:
        checked = [self._check(m.topic, m.payload) for m in batch]
        recorded = self._record(checked)
        if recorded is None:
            return                               # stopping: not acknowledged, the broker keeps them for us
        for msg in batch:
            self.link.ack(msg.gen, msg.mid, msg.qos)
        self.stats.received += len(batch)
        for inc, rec in zip(checked, recorded):
            if rec.status == "duplicate":
                self.stats.duplicates += 1
            elif rec.status == "refused":
                self.stats.refused += 1
                LOGGER.warning("gateway %s: refused a message on %s: %s%s — journaled, not applied", self.cfg.id,
                               shown(inc.topic), schema.REASONS.get(inc.reason or "", inc.reason),
                               f" ({shown(inc.detail)})" if inc.detail else "")
            else:
                self.stats.new += 1
        try:
            self.on_recorded(list(zip(checked, recorded)))
        except Exception:
            LOGGER.exception("gateway %s: error after journaling a batch; the events are safe in the journal",
                             self.cfg.id)

    def _record(self, checked: list[Incoming]) -> list[Recorded] | None:
        """Journal a batch, the bookcase's rule (docs/design.md §6): a failure of the journal (ours: it is down or
        locked) is tried again until it passes, the messages unacknowledged meanwhile; a failure caused by what a
        message is gets the batch journaled one by one, and a message that still cannot be stored is journaled
        as refused ("unreadable") — never a batch retried forever behind one bad message."""
        while True:
            try:
                return self.journal.record(checked, self.cfg.id, self.cfg.order.hold_s)
            except Exception as exc:
                if not self._ours(exc):
                    return [self._record_one(inc) for inc in checked]
                LOGGER.error("gateway %s: cannot write %d event(s) to the journal (%s); trying again in %.0f s",
                             self.cfg.id, len(checked), shown(exc), RETRY_S)
                if self._stop.wait(RETRY_S):
                    return None

    def _record_one(self, inc: Incoming) -> Recorded:
        try:
            return self.journal.record([inc], self.cfg.id, self.cfg.order.hold_s)[0]
        except Exception as exc:
            if self._ours(exc):
                raise
            LOGGER.error("gateway %s: a message on %s cannot be journaled as it is (%s); journaled as refused",
                         self.cfg.id, shown(inc.topic), shown(exc))
            bare = Incoming(inc.topic, inc.bookcase, b"", reason="unreadable", detail=f"{type(exc).__name__}")
            return self.journal.record([bare], self.cfg.id, self.cfg.order.hold_s)[0]

    def _ours(self, exc: BaseException) -> bool:
        """The journal's own failure (down, locked, out of space): as kiosk.sync.retry.ours, with the backend's."""
        return isinstance(exc, self.journal.backend.transient) or retry.ours(exc)

    def _check(self, topic: str, payload: bytes) -> Incoming:
        """check(), and whatever it raises is the message's fault: refused, never the writer thread's end."""
        try:
            return self.check(topic, payload)
        except Exception as exc:
            LOGGER.exception("gateway %s: checking a message on %s failed; it is refused", self.cfg.id,
                             shown(topic))
            return Incoming(topic, self._bookcase(topic), payload, reason="unreadable",
                            detail=f"{type(exc).__name__}")

    def check(self, topic: str, payload: bytes) -> Incoming:
        """One inbound message -> an Incoming: the checked event, or why it is refused (and its envelope)."""
        bookcase = self._bookcase(topic)
        try:
            if bookcase is None:
                raise MessageError("wrong_topic", topic[:200])
            msg = schema.decode(payload, self.max_bytes)
            envelope = _envelope(msg, bookcase)
            try:
                event = schema.check_event(msg)
            except MessageError as exc:
                return Incoming(topic, bookcase, payload, reason=exc.reason, detail=exc.detail, envelope=envelope)
            if event["bookcase"] != bookcase:
                raise MessageError("wrong_sender", f"the event says bookcase {event['bookcase']!r}, the topic says "
                                                   f"{bookcase!r}")
            return Incoming(topic, bookcase, payload, event=event)
        except MessageError as exc:
            return Incoming(topic, bookcase, payload, reason=exc.reason, detail=exc.detail)

    def _bookcase(self, topic: str) -> str | None:
        if not topic.startswith(self.root):
            return None
        parts = topic[len(self.root):].split("/")
        if len(parts) == 3 and parts[0] == "bookcase" and parts[2] == "event" and parts[1]:
            return parts[1]
        return None


def _envelope(msg: dict, bookcase: str) -> dict | None:
    """A refused event's id, bookcase and seq, when they can be trusted enough to send the bookcase an ack."""
    event_id, seq = msg.get("id"), msg.get("seq")
    if not (isinstance(event_id, str) and _UUID.fullmatch(event_id) and isinstance(seq, int)
            and not isinstance(seq, bool) and 1 <= seq < 2 ** 62 and msg.get("bookcase") == bookcase):
        return None
    return {"id": event_id, "bookcase": bookcase, "seq": seq, "ts": str(msg.get("ts", ""))[:40],
            "type": str(msg.get("type", "?"))[:40]}
