"""Replication in (core loop): check each inbound message, then apply it once, in one transaction with its id.

Effects: another bookcase's loan counts against the patron's limit here; a return anywhere closes the
item's loan here; another bookcase's holdings feed the fleet title index; the library's patron status
updates the patron cache; the gateway's acks are recorded on our outbox rows. Events of other types are
checked and counted but change nothing here, so they are not written down at all.

Bad input — oversized, not JSON, unknown version or type, off-schema, sent in another bookcase's name —
is refused with a log line an operator can act on and a counter in the retained ``state`` message.
Nothing here raises on bad input: rule 8.
"""

from __future__ import annotations

import logging
from collections import Counter

from kiosk.logtext import shown
from kiosk.store import replica
from kiosk.store.ledger import Store
from kiosk.sync import schema
from kiosk.sync.schema import MessageError
from kiosk.sync.topics import ACK, EVENT, HOLDINGS, PATRON, Topics

LOGGER = logging.getLogger(__name__)

APPLIED, DUPLICATE, NOTED, OWN, STALE, REFUSED = "applied", "duplicate", "noted", "own", "stale", "refused"
LOG_FIRST = 5            # log the first few refusals of each kind, then every LOG_EVERY-th
LOG_EVERY = 100


class Replicator:
    """Applies what the fleet and the library send to one bookcase's store."""

    def __init__(self, store: Store, topics: Topics, max_bytes: int, counters: Counter) -> None:
        self.store = store
        self.topics = topics
        self.me = topics.bookcase
        self.max_bytes = max_bytes
        self.counters = counters
        self.gateway_rejections: list[str] = []
        self._tracebacks: set[str] = set()      # exception types already logged with a traceback

    def receive(self, topic: str, payload: bytes) -> str:
        """Check and apply one message; returns what happened (APPLIED, DUPLICATE, NOTED, OWN, STALE, REFUSED)."""
        where = self.topics.parse(topic)
        try:
            if where is None:
                raise MessageError("wrong_topic", topic[:200])
            kind, who = where
            if kind in (EVENT, HOLDINGS) and who == self.me:
                return OWN                 # our own, e.g. retained holdings from before a restart
            if kind == PATRON and not payload:
                LOGGER.info("bookcase %s: the library cleared the status of patron %s…; the cached row stays",
                            self.me, shown(who[:8]))
                return NOTED
            msg = schema.decode(payload, self.max_bytes)
            if kind == EVENT:
                return self._event(topic, who, schema.check_event(msg))
            if kind == HOLDINGS:
                return self._holdings(topic, who, schema.check_message("holdings", msg))
            if kind == PATRON:
                return self._patron(topic, who, schema.check_message("patron_status", msg))
            return self._ack(topic, schema.check_message(ACK, msg))
        except MessageError as exc:
            self.refuse(topic, exc)
            return REFUSED

    def _event(self, topic: str, who: str, msg: dict) -> str:
        if msg["bookcase"] != who:
            raise MessageError("wrong_sender", f"the event says bookcase {msg['bookcase']!r}, "
                                               f"the topic says {who!r}")
        if msg["type"] == "loan":
            effect = replica.remote_loan
        elif msg["type"] == "return":
            effect = replica.remote_return
        else:
            self.counters["events_noted"] += 1
            return NOTED
        said: list[str] = []
        if not replica.apply_once(self.store.db, msg["id"], topic, lambda conn: said.append(effect(conn, msg))):
            return self._duplicate(msg)
        self.counters["events_applied"] += 1
        LOGGER.info("bookcase %s: %s (event seq %d)", self.me, shown(said[0]), msg["seq"])
        return APPLIED

    def _holdings(self, topic: str, who: str, msg: dict) -> str:
        if msg["bookcase"] != who:
            raise MessageError("wrong_sender", f"the holdings say bookcase {msg['bookcase']!r}, "
                                               f"the topic says {who!r}")
        fresh: list[bool] = []
        if not replica.apply_once(self.store.db, msg["id"], topic,
                                  lambda conn: fresh.append(replica.replace_holdings(conn, msg))):
            return self._duplicate(msg)
        if not fresh[0]:
            LOGGER.info("bookcase %s: older holdings of bookcase %s ignored", self.me, who)
            return STALE
        self.counters["holdings_applied"] += 1
        LOGGER.info("bookcase %s: bookcase %s now holds %d items", self.me, who, len(msg["items"]))
        return APPLIED

    def _patron(self, topic: str, key: str, msg: dict) -> str:
        if msg["patron"] != key:
            raise MessageError("wrong_sender", f"the status is for patron {msg['patron'][:8]}…, "
                                               f"the topic says {key[:8]}…")
        if not replica.apply_once(self.store.db, msg["id"], topic, lambda conn: replica.upsert_patron(conn, msg)):
            return self._duplicate(msg)
        self.counters["patrons_applied"] += 1
        LOGGER.info("bookcase %s: the library says patron %s… is %s (class %s, %d loans outside the bookcases)",
                    self.me, key[:8], msg["status"], msg["patron_class"], msg["loans_elsewhere"])
        return APPLIED

    def _ack(self, topic: str, msg: dict) -> str:
        if msg["bookcase"] != self.me:
            raise MessageError("wrong_sender", f"the ack is for bookcase {msg['bookcase']!r}, not {self.me!r}")
        counts: list[tuple[int, int, list[str]]] = []
        if not replica.apply_once(self.store.db, msg["id"], topic,
                                  lambda conn: counts.append(replica.gateway_results(conn, msg["results"]))):
            return self._duplicate(msg)
        applied, rejected, why = counts[0]
        self.counters["gateway_applied"] += applied
        self.counters["gateway_rejected"] += rejected
        for line in why:
            LOGGER.warning("bookcase %s: the library's gateway rejected %s", self.me, shown(line, 600))
        LOGGER.info("bookcase %s: the gateway applied %d of our events and rejected %d", self.me, applied, rejected)
        return APPLIED

    def _duplicate(self, msg: dict) -> str:
        self.counters["duplicates"] += 1
        LOGGER.debug("bookcase %s: %s %s already applied; ignored", self.me, msg.get("type"), msg.get("id"))
        return DUPLICATE

    def refuse(self, topic: str, exc: MessageError) -> None:
        """Count and log (the first few, then every LOG_EVERY-th) a message refused on ``topic``."""
        key = "bad_" + exc.reason
        self.counters[key] += 1
        n = self.counters[key]
        if n <= LOG_FIRST or n % LOG_EVERY == 0:
            LOGGER.warning("bookcase %s: refused a message on %s: %s — not applied (%d such so far)",
                           self.me, shown(topic), shown(exc, 300), n)

    def unreadable(self, topic: str, exc: Exception) -> None:
        """A message whose applying failed in a way no schema foresaw: refused like any bad message; the first
        failure of each kind is logged with its traceback, for a developer to find the schema's gap."""
        kind = type(exc).__name__
        if kind not in self._tracebacks:
            self._tracebacks.add(kind)
            LOGGER.error("bookcase %s: applying a message on %s failed with %s; it is refused (traceback once per "
                         "kind)", self.me, shown(topic), kind, exc_info=exc)
        self.refuse(topic, MessageError("unreadable", f"{kind}: {exc}"))
