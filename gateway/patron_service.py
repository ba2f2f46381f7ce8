"""The running gateway's patron work: publish changed statuses retained, and ask the ILS (63/64) what changed.

One thread. Each round it publishes the journal's dirty patron rows (retained ``central/patron/<key>``, marked
clean on the broker's PUBACK), asks the ILS about patrons a loan or return touched ([patrons] refresh_delay_s
after it, so a session's several books make one request), and walks every patron once per
[patrons] refresh_interval_s, at most max_refresh_per_s and only while no loan or return waits (transactions
first). ``loans_elsewhere`` for a key = the ILS's charged items minus the loans made at bookcases under that
key which the journal knows open (the bookcases count those themselves).

The journal marks the patrons a loan or return touched in the same transaction as its outcome (ASK_SOON: asked
longest ago of all), and asking the ILS clears the mark; the plan in memory only times the question. A question
lost (the gateway killed between an outcome and its question, the ILS down when it was due) leaves the mark, and
the sweep asks those patrons before any other once the loans and returns are done.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from typing import Any

from gateway.config import PatronsConfig
from gateway.consumer import Publisher
from gateway.ils import IlsHealth
from gateway.journal import Journal, now_iso
from gateway.patrons import status_from_ils
from gateway.sip2 import Sip2Error, Sip2Unavailable
from kiosk.sync import schema
from kiosk.sync.topics import Topics

LOGGER = logging.getLogger(__name__)

TICK_S = 0.2
PUBLISH_BATCH = 500
PUBACK_TIMEOUT_S = 10.0


class PatronService:

    def __init__(self, journal: Journal, publisher: Publisher, topics: Topics, pool: Any, cfg: PatronsConfig,
                 owner: str, health: IlsHealth) -> None:
        self.journal = journal
        self.publisher = publisher
        self.topics = topics
        self.pool = pool
        self.cfg = cfg
        self.owner = owner
        self.health = health
        self.published = 0
        self.refreshed = 0
        self._keys: dict[str, float] = {}         # patron key a transaction touched -> when to ask
        self._due: dict[str, float] = {}          # ILS patron id -> when to ask
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._tokens = 0.0
        self._last = time.monotonic()
        self._thread = threading.Thread(target=self._loop, name=f"{owner}-patrons", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)

    def touched(self, keys: set[str]) -> None:
        """Patron keys a transaction concerned: ask the ILS about them soon."""
        when = time.monotonic() + self.cfg.refresh_delay_s
        with self._lock:
            for key in keys:
                self._keys.setdefault(key, when)

    def _loop(self) -> None:
        while not self._stop.wait(TICK_S):
            try:
                self.publish_dirty()
                self._refresh_touched()
                self._sweep()
            except Sip2Unavailable as exc:
                self.health.down(str(exc))
            except Exception:
                LOGGER.exception("%s: error in the patron status round; next round in %.1f s", self.owner, TICK_S)

    def publish_dirty(self) -> int:
        """Publish changed statuses (retained); clean on PUBACK. Returns how many were acknowledged."""
        done = 0
        while self.publisher.gen is not None and not self._stop.is_set():
            rows = self.journal.claim_dirty(self.owner, PUBLISH_BATCH)
            if not rows:
                break
            waiting = []
            for row in rows:
                msg = {"v": schema.VERSION, "id": str(uuid.uuid4()), "ts": now_iso(), "type": "patron_status",
                       "patron": row.key, "patron_class": row.patron_class, "status": row.status,
                       "loans_elsewhere": row.loans_elsewhere}
                schema.check_message("patron_status", msg)
                waiting.append((row, self.publisher.publish(self.topics.patron(row.key), schema.encode(msg),
                                                            retain=True)))
            ok = [row for row, p in waiting if p is not None and p.wait(PUBACK_TIMEOUT_S)]
            failed = [row for row, p in waiting if row not in ok]
            self.journal.mark_published(ok, self.owner)
            if failed:
                self.journal.release_published(failed, self.owner)
            done += len(ok)
            self.published += len(ok)
            if failed:
                break
        return done

    def _refresh_touched(self) -> None:
        """Patrons a transaction touched. While loans and returns wait, at most max_refresh_per_s of them, so a
        backlog drains at the pool's full speed; the rest follow once it has."""
        now = time.monotonic()
        self._tokens = min(self._tokens + (now - self._last) * self.cfg.max_refresh_per_s,
                           max(1.0, self.cfg.max_refresh_per_s))
        self._last = now
        with self._lock:
            keys, self._keys = self._keys, {}
        for key, when in keys.items():             # resolved here, off the workers' path
            row = self.journal.patron(key)
            if row is not None:
                with self._lock:
                    self._due[row.ils_id] = min(when, self._due.get(row.ils_id, when))
        busy = self.journal.has_work()
        with self._lock:
            due = sorted((t, i) for i, t in self._due.items() if t <= now)
            if busy:
                due = due[:int(self._tokens)]
            for _, ils_id in due:
                del self._due[ils_id]
        for _, ils_id in due:
            if self._stop.is_set():
                return
            if busy:
                self._tokens -= 1
            self.refresh(ils_id)

    def _sweep(self) -> None:
        if self._tokens < 1 or self.health.up is False or self.journal.has_work():
            return
        for ils_id in self.journal.due_refresh(self.cfg.refresh_interval_s, int(self._tokens)):
            if self._stop.is_set():
                return
            self._tokens -= 1
            self.refresh(ils_id)

    def refresh(self, ils_id: str) -> bool:
        """Ask the ILS about one patron (63); True if the status of any of their keys changed."""
        try:
            with self.pool.connection() as client:
                resp = client.patron_information(ils_id)
        except Sip2Unavailable:
            raise
        except Sip2Error as exc:
            LOGGER.info("%s: patron information lost (%s); asked again later", self.owner, exc)
            with self._lock:
                self._due.setdefault(ils_id, time.monotonic() + 30)
            return False
        self.refreshed += 1
        changed = False
        charged = int(getattr(resp, "charged_items_count", 0) or 0)
        for key in self.journal.keys_of(ils_id):
            row = self.journal.patron(key)
            if row is None or row.removed:
                continue
            status = status_from_ils(resp, row.status)
            loans = min(1000, max(0, charged - self.journal.open_bookcase_loans(key)))
            if self.journal.update_patron(key, status, loans):
                changed = True
                LOGGER.info("%s: patron %s… is now %s with %d loan(s) outside the bookcases", self.owner, key[:8],
                            status, loans)
        return changed
