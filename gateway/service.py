"""The running gateway: builds the journal, the SIP2 pool, the MQTT consumer, the workers, acks and patrons.

Threads: paho's and the link's supervisor (kiosk.sync.link), the journal writer (consumer.py), ``pool_size``
workers (apply.py), the acker (acks.py), the patron service (patron_service.py), and the caller's thread, which
``run()`` keeps for the timers: gaps forgiven, heartbeat, the retained state message, systemd's watchdog.

The retained state message on ``<root>central/gateway/<id>/state`` (last will: offline)::

    {"v": 1, "id": …, "ts": …, "type": "gateway_state", "gateway": "gw-1", "online": true, "version": "0.1.0",
     "journal": "sqlite", "ils": {"up": true, "since": …, "last_error": null, …},
     "backlog": {"depth": 0, "received": 0, "held": 0, "sending": 0, "oldest_age_s": null, "acks_due": 0,
                 "review_open": 0}, "counters": {…}}
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from typing import Any

from gateway import __version__
from gateway.acks import Acker
from gateway.apply import Applier
from gateway.config import GatewayConfig
from gateway.consumer import Consumer, Publisher
from gateway.ils import IlsHealth, build_pool
from gateway.journal import Incoming, Journal, Recorded, now_iso, open_journal
from gateway.patron_service import PatronService
from kiosk.sdnotify import Notifier
from kiosk.sync.topics import Topics

LOGGER = logging.getLogger(__name__)

TICK_S = 0.5
STATE_MIN_INTERVAL_S = 1.0
HEARTBEAT_S = 5.0


class Gateway:
    def __init__(self, cfg: GatewayConfig, *, journal: Journal | None = None, pool: Any = None) -> None:
        self.cfg = cfg
        self.journal = journal or open_journal(cfg.journal)
        self.pool = pool if pool is not None else build_pool(cfg.ils)
        self.health = IlsHealth()
        self.prefix = f"{cfg.id}#{uuid.uuid4().hex[:8]}"
        self.topics = Topics(cfg.mqtt.topic_root, cfg.id)
        self.publisher = Publisher()
        self.patrons = PatronService(self.journal, self.publisher, self.topics, self.pool, cfg.patrons,
                                     f"{self.prefix}/patrons", self.health)
        self.applier = Applier(self.journal, cfg.id, cfg.order, cfg.ils, self.health, touched=self.patrons.touched)
        self.acker = Acker(self.journal, self.publisher, self.topics, f"{self.prefix}/acks", cfg.acks.batch,
                           cfg.acks.delay_ms)
        self.consumer = Consumer(cfg, self.journal, self.publisher, self._will, self._recorded)
        self.poll_s = 0.2 if self.journal.backend.kind == "postgresql" else 1.0
        self.started_at = now_iso()
        self._work = threading.Condition()
        self._stop = threading.Event()
        self._workers = [threading.Thread(target=self._worker, args=(n,), name=f"{cfg.id}-worker-{n}", daemon=True)
                         for n in range(cfg.ils.pool_size)]
        self._state_key: tuple | None = None
        self._state_at = self._beat_at = 0.0
        self._notifier = Notifier()

    # --- lifecycle ------------------------------------------------------------------------------------

    def start(self) -> None:
        taken = self.journal.expire_own(self.cfg.id)
        if taken:
            LOGGER.warning("gateway %s: %d event(s) were being sent when this gateway last stopped; the ILS is "
                           "asked what became of each before anything is sent again", self.cfg.id, taken)
        LOGGER.info("gateway %s: journal %s, ILS %s:%d (%d connections, %s), broker %s:%d", self.cfg.id,
                    self.journal.describe(), self.cfg.ils.host, self.cfg.ils.port, self.cfg.ils.pool_size,
                    self.cfg.ils.charset, self.cfg.mqtt.host, self.cfg.mqtt.port)
        self.journal.heartbeat(self.cfg.id, self.started_at, __version__, self._info())
        for w in self._workers:
            w.start()
        self.acker.start()
        self.patrons.start()
        self.consumer.start()
        self._notifier.ready(f"gateway {self.cfg.id}")

    def stop(self) -> None:
        """Finish the events in hand, send the acks due, say offline, close."""
        self._notifier.notify("STOPPING=1")
        self._stop.set()
        self.consumer.stop_consuming()
        with self._work:
            self._work.notify_all()
        for w in self._workers:
            w.join(60)
        self.patrons.stop()
        self.acker.stop()
        try:
            final = (self.topics.gateway_state(self.cfg.id), self._state(False, "stopped"))
        except Exception:
            LOGGER.exception("gateway %s: cannot build the final state message", self.cfg.id)
            final = None
        self.consumer.close(final)
        close = getattr(self.pool, "close", None)
        if close is not None:
            close()
        self.journal.close()
        LOGGER.info("gateway %s: stopped", self.cfg.id)

    def run(self, stop: threading.Event) -> None:
        """start(), then the timers on this thread until ``stop`` is set, then stop()."""
        self.start()
        try:
            while not stop.wait(TICK_S):
                self.tick()
        finally:
            self.stop()

    def tick(self) -> None:
        now = time.monotonic()
        try:
            if self.journal.forgive_gaps():
                self._wake()
            if now - self._beat_at >= HEARTBEAT_S:
                self._beat_at = now
                self.journal.heartbeat(self.cfg.id, self.started_at, __version__, self._info())
            self._publish_state(now)
        except Exception:
            LOGGER.exception("gateway %s: error in the timers; carrying on", self.cfg.id)
        self._notifier.watchdog()

    # --- workers -------------------------------------------------------------------------------------

    def _worker(self, n: int) -> None:
        owner = f"{self.prefix}/{n}"
        did = False
        while not self._stop.is_set():
            try:
                did = self.applier.work_once(self.pool, owner, busy=did)
            except Exception:
                LOGGER.exception("gateway %s: worker %d failed; it carries on", self.cfg.id, n)
                did = False
            if did:
                self.acker.wake()
                continue
            timeout = self.poll_s if self.health.up is not False else max(self.poll_s, self.applier._backoff)
            wake = self.journal.next_wake()
            if wake is not None:
                timeout = max(0.01, min(timeout, wake - time.time()))
            with self._work:
                if not self._stop.is_set():
                    self._work.wait(timeout)

    def _wake(self) -> None:
        with self._work:
            self._work.notify_all()

    def _recorded(self, pairs: list[tuple[Incoming, Recorded]]) -> None:
        new_txn = False
        for inc, rec in pairs:
            if rec.status == "duplicate" and inc.event is not None:
                self.acker.duplicate(inc.event["bookcase"], inc.event["id"], inc.event["seq"])
            elif rec.status == "new" and inc.event is not None and inc.event["type"] in ("loan", "return"):
                new_txn = True
        if new_txn:
            self._wake()
        self.acker.wake()

    # --- state ---------------------------------------------------------------------------------------

    def _info(self) -> dict:
        s = self.consumer.stats
        return {"online": self.consumer.online, "ils": self.health.snapshot(),
                "counters": {"received": s.received, "new": s.new, "duplicates": s.duplicates, "refused": s.refused,
                             "link_lost": s.link_lost, "applied": self.applier.applied,
                             "acks_sent": self.acker.sent_results, "statuses_published": self.patrons.published,
                             "patrons_refreshed": self.patrons.refreshed}}

    def _state(self, online: bool, reason: str | None = None) -> bytes:
        msg = {"v": 1, "id": str(uuid.uuid4()), "ts": now_iso(), "type": "gateway_state", "gateway": self.cfg.id,
               "online": online, "version": __version__, "journal": self.journal.backend.kind,
               "ils": self.health.snapshot(), "backlog": self.journal.backlog(), "counters": self._info()["counters"]}
        if reason:
            msg["reason"] = reason
        return json.dumps(msg, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()

    def _will(self) -> tuple[str, bytes]:
        msg = {"v": 1, "id": str(uuid.uuid4()), "ts": now_iso(), "type": "gateway_state", "gateway": self.cfg.id,
               "online": False, "version": __version__, "reason": "connection lost"}
        return self.topics.gateway_state(self.cfg.id), json.dumps(msg, separators=(",", ":")).encode()

    def _publish_state(self, now: float) -> None:
        if self.publisher.gen is None or now - self._state_at < STATE_MIN_INTERVAL_S:
            return
        backlog = self.journal.backlog()
        key = (backlog["depth"], backlog["review_open"], backlog["acks_due"], self.health.up)
        if key == self._state_key and now - self._state_at < self.cfg.state_interval_s:
            return
        if self.publisher.publish(self.topics.gateway_state(self.cfg.id), self._state(True), retain=True):
            self._state_key, self._state_at = key, now
