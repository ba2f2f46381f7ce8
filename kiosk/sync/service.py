"""FleetSync: the bookcase's side of the fleet (docs/design.md §6), run by the core loop.

The app builds one when the config has an ``[mqtt]`` section, routes every SyncEvent to ``handle`` and
calls ``pump`` after every other event. Everything here runs on the core loop's thread, the only SQLite
writer; the paho threads in kiosk.sync.link only post events. Besides the outbox relay and replication
in, it keeps two retained messages: ``state`` (online/offline, version, outbox depth, last sync, counters;
the last will says offline) and ``holdings`` (what the bookcase holds, after each session), and tells the
flow when the link goes up or down (``SyncState``) so it can apply the offline rules. The library's
retained content announcement is checked here and handed to ``on_content`` (the content updater, which
only takes note and returns: the download runs on its own thread).
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from datetime import timedelta
from typing import Callable

from kiosk import __version__
from kiosk import clock as kiosk_clock
from kiosk.config import Config
from kiosk.health import Health, HealthReader
from kiosk.core import events as ev
from kiosk.store import replica
from kiosk.store.ledger import Store
from kiosk.logtext import shown
from kiosk.sync import retry, schema
from kiosk.sync.events import LinkDown, LinkUp, Published, Received, SyncEvent
from kiosk.sync.link import Link
from kiosk.sync.relay import Relay
from kiosk.sync.replication import NOTED, OWN, REFUSED, Replicator
from kiosk.sync.topics import CONTENT, Topics

LOGGER = logging.getLogger(__name__)

STATE_MIN_INTERVAL_S = 1.0        # at most one state message a second while things change
STATE_HEARTBEAT_S = 300.0
HOLDINGS_MIN_INTERVAL_S = 0.5
SAVE_INTERVAL_S = 5.0             # counters and last sync to the database, at most this often
INBOX_KEEP_DAYS = 60              # well beyond any session expiry: redeliveries come sooner
PRUNE_INTERVAL_S = 24 * 3600
HEALTH_INTERVAL_S = 30.0          # sysfs is read at most this often; a change of an alarm reading sends a state


class FleetSync:
    """Outbox relay, replication in, state and holdings, for one bookcase. Core loop only."""

    def __init__(self, config: Config, store: Store, post: Callable[[object], None],
                 clock: Callable[[], float] = kiosk_clock.monotonic,
                 on_content: Callable[[dict], None] | None = None,
                 content_status: Callable[[], dict] | None = None, health: HealthReader | None = None,
                 doors: Callable[[], tuple[tuple[int, ...], tuple[int, ...]]] | None = None) -> None:
        """``on_content(announcement)``: called on the core loop for each valid content announcement; it must
        not block. ``content_status()``: the content updater's status, reported in the retained state.
        ``health``: reads power, SD card, temperature and uptime for the state (default: this machine's sysfs)."""
        assert config.mqtt is not None
        self.on_content = on_content
        self.content_status = content_status
        self.doors = doors                   # () -> (doors in service, doors out of service), for the console
        self.cfg = config.mqtt
        self.id = config.bookcase.id
        self.name = config.bookcase.name
        bc = config.bookcase                 # where it stands, in state and holdings (find a book: the nearest)
        self.place = {k: v for k, v in (("latitude", bc.latitude), ("longitude", bc.longitude),
                                        ("address", bc.address)) if v not in (None, "")}
        self.store = store
        self.post = post
        self.clock = clock
        self.topics = Topics(self.cfg.topic_root, self.id)
        saved, self.last_sync = replica.load_meta(store.db)
        self.counters: Counter = Counter(saved)
        self.online = False
        self.gen: int | None = None
        # A database that has never synced wants every retained message, even from a session the broker kept.
        self.link = Link(self.cfg, self.topics.subscriptions, post, lambda: self._will, self.id,
                         every_retained=self.last_sync is None)
        self.relay = Relay(store.db, self.topics.event(), self.cfg.inflight, self.link.publish, self.id, clock)
        self.inbound = Replicator(store, self.topics, self.cfg.max_payload_kb * 1024, self.counters)
        self.retries = retry.Retries()
        self._will = (self.topics.state(), b"")
        self._state_at = self._holdings_at = self._saved_at = self._pruned_at = 0.0
        self._state_sent: tuple | None = None
        self._holdings_after = -1         # relay.sessions_closed when holdings were last published
        self._dirty = False
        self.health = health or HealthReader(config.data_dir)
        self._health: Health | None = None
        self._health_at = float("-inf")
        self._failing: set[str] = set()   # own writes failing for a fault of ours (logged once while it lasts)

    # --- lifecycle (core loop) --------------------------------------------------------------------

    def start(self) -> None:
        self._prune()
        self._unpark()
        self._will = (self.topics.state(), self._state(False, "connection lost"))
        LOGGER.info("bookcase %s: fleet link to %s (%s), topics under %s, %d event(s) waiting in the outbox",
                    self.id, self.link.broker, "TLS" if self.cfg.tls else "no TLS", self.cfg.topic_root,
                    replica.outbox_depth(self.store.db))
        self.post(ev.SyncState(False, self.last_sync))
        self.link.start()

    def close(self) -> None:
        try:
            if self.online and self.gen is not None and self.relay.sessions_closed != self._holdings_after:
                self._publish_holdings(self.clock())     # a session settled just now: leave current holdings
            self.relay.flush()
            self._save()
            final = (self.topics.state(), self._state(False, "stopped"))
        except Exception:
            LOGGER.exception("bookcase %s: error while saving the sync state; stopping anyway", self.id)
            final = None
        self.link.close(final)

    # --- events from the link ---------------------------------------------------------------------

    def handle(self, event: SyncEvent) -> None:
        if isinstance(event, Received):
            self._received(event)
        elif isinstance(event, Published):
            mine = self.relay.published(event.gen, event.mid, event.reason_code, event.reason)
            if event.gen == self.gen and event.reason_code >= 0x80:
                self.counters["broker_refused"] += 1
                self._dirty = True
            elif mine:
                self._synced()
        elif isinstance(event, LinkUp):
            self._up(event)
        elif isinstance(event, LinkDown):
            self._down(event)
        self.pump()

    def _up(self, event: LinkUp) -> None:
        self.gen, self.online = event.gen, True
        self._synced()
        self.relay.up(event.gen)
        depth = replica.outbox_depth(self.store.db)
        LOGGER.info("bookcase %s: online — connected to %s (%s session); %d event(s) to send", self.id,
                    self.link.broker, "resumed" if event.session_present else "new", depth)
        # Both retained messages go again at once on every connection.
        self._state_sent, self._holdings_after, self._state_at, self._holdings_at = None, -1, 0.0, 0.0
        self.post(ev.SyncState(True, self.last_sync))

    def _down(self, event: LinkDown) -> None:
        if event.gen != self.gen:
            return
        self.gen, self.online = None, False
        self.counters["link_lost"] += 1       # in state: how flaky this bookcase's link is
        self._dirty = True
        self.relay.down()
        LOGGER.warning("bookcase %s: offline — lost the broker at %s (%s); %d event(s) wait in the outbox", self.id,
                       self.link.broker, event.reason, replica.outbox_depth(self.store.db))
        self.post(ev.SyncState(False, self.last_sync))

    def _received(self, event: Received) -> None:
        """One inbound message, and the one place its acknowledgement is decided (docs/design.md §6, the rule
        of kiosk.sync.retry):

        - applied, a duplicate, noted, or refused because of what it *is* (off its schema, or anything about it
          that makes applying it fail, whatever the exception) -> acknowledged at once, and counted if refused;
        - failed because of *us* (``retry.ours``: the database locked, a full disk) -> not acknowledged, tried
          again from ``pump``; after ``retry.MAX_ATTEMPTS`` tries parked for staff, and then acknowledged.

        Nothing else leaves a message unacknowledged: one that stayed so would hold one of the broker's
        ``RECEIVE_MAXIMUM`` slots until a reconnect, and come back after it."""
        try:
            outcome = self._apply(event)
        except Exception as exc:
            if retry.ours(exc):
                self._failed(event, exc)
                return
            try:
                self.inbound.unreadable(event.topic, exc)     # refused, counted, one traceback per kind
            except Exception:
                LOGGER.exception("bookcase %s: could not count a refused message; it is acknowledged anyway",
                                 self.id)
            outcome = REFUSED
        self.retries.forget(event)
        self.link.ack(event.gen, event.mid, event.qos)
        if outcome != OWN:
            self._synced()
            self._dirty = True

    def _apply(self, event: Received) -> str:
        where = self.topics.parse(event.topic)
        if where is not None and where[0] == CONTENT:
            return self._content(event)
        return self.inbound.receive(event.topic, event.payload)

    def _failed(self, event: Received, exc: Exception) -> None:
        """A failure of ours: not acknowledged, tried again later; after MAX_ATTEMPTS parked for staff."""
        error = f"{type(exc).__name__}: {exc}"
        entry = self.retries.failed(event, error, self.clock(), replica.now_iso())
        self.counters["apply_failed"] += 1
        self._dirty = True
        if entry.attempts < retry.MAX_ATTEMPTS:
            if entry.attempts == 1:
                LOGGER.error("bookcase %s: could not apply a message on %s (%s); trying again, up to %d times",
                             self.id, shown(event.topic), shown(error), retry.MAX_ATTEMPTS)
            return
        try:
            replica.park(self.store.db, event.topic, event.payload, error, entry.attempts, entry.first_seen)
        except Exception as park_exc:       # the database cannot even take it: the broker keeps it for us
            if entry.attempts == retry.MAX_ATTEMPTS:
                LOGGER.error("bookcase %s: a message on %s failed %d times and cannot be parked either (%s); it "
                             "stays with the broker and is tried again", self.id, shown(event.topic),
                             entry.attempts, shown(park_exc))
            return
        self.retries.forget(event)
        self.link.ack(event.gen, event.mid, event.qos)
        self.counters["parked"] += 1
        LOGGER.error("bookcase %s: parked a message on %s for staff after %d failed tries (%s); see `kiosk sync "
                     "status`", self.id, shown(event.topic), entry.attempts, shown(error))

    def _unpark(self) -> None:
        """Parked messages are tried again at each start, before the link: the fault of ours that parked them (a
        database locked or full) may be gone, and a parked loan or return from another bookcase would otherwise
        never count here. Each one applied, found a duplicate or refused leaves the list; at the first failure of
        ours again the rest stay parked, for the next start."""
        try:
            rows = replica.parked_messages(self.store.db)
        except Exception:
            LOGGER.exception("bookcase %s: could not read the parked messages; they stay parked", self.id)
            return
        done = 0
        for parked_id, topic, payload in rows:
            event = Received(0, topic, payload, 0, 0, False)
            try:
                if self._apply(event) != OWN:
                    self._synced()
            except Exception as exc:
                if retry.ours(exc):
                    LOGGER.error("bookcase %s: a parked message on %s still cannot be applied (%s); %d stay parked "
                                 "(kiosk sync status)", self.id, shown(topic), shown(f"{type(exc).__name__}: {exc}"),
                                 len(rows) - done)
                    break
                self.inbound.unreadable(topic, exc)
            try:
                replica.unpark(self.store.db, parked_id)
            except Exception as exc:
                LOGGER.error("bookcase %s: could not take a parked message off the list (%s); it is tried again at "
                             "the next start (a duplicate then)", self.id, shown(exc))
                break
            done += 1
        if done:
            self.counters["unparked"] += done
            self._dirty = True
            LOGGER.info("bookcase %s: %d parked message(s) tried again and taken off the list; %d still parked",
                        self.id, done, len(rows) - done)

    def _content(self, event: Received) -> str:
        """The library's content announcement: refused and counted like any bad input, else handed over.
        Nothing is written here, so there is nothing a redelivery could add."""
        if not event.payload:
            LOGGER.info("bookcase %s: the library cleared its content announcement", self.id)
            return NOTED
        try:
            msg = schema.check_content(schema.decode(event.payload, self.cfg.max_payload_kb * 1024))
        except schema.MessageError as exc:
            self.inbound.refuse(event.topic, exc)      # the same counter and log line as every bad message
            return REFUSED
        self.counters["content_announcements"] += 1
        if self.on_content is None:
            LOGGER.info("bookcase %s: content version %d announced; ignored ([content] public_keys is not set)",
                        self.id, msg["version"])
            return NOTED
        try:
            self.on_content(msg)
        except Exception:
            LOGGER.exception("bookcase %s: the content announcement (version %d) could not be handed over; "
                             "the periodic check will find it", self.id, msg["version"])
        return NOTED

    def _synced(self) -> None:
        self.last_sync = replica.now_iso()
        self._dirty = True

    # --- after every event (core loop) ------------------------------------------------------------

    def pump(self) -> None:
        """Publish what is due: outbox rows, marks, state and holdings. Cheap when nothing changed."""
        self.relay.pump()
        self.relay.flush_due()
        now = self.clock()
        if self.retries:
            for event in self.retries.due(now):
                self._received(event)
        if self.online and self.gen is not None:
            sessions_since = self.relay.sessions_closed != self._holdings_after
            if sessions_since and now - self._holdings_at >= HOLDINGS_MIN_INTERVAL_S:
                self._publish_holdings(now)
            if now - self._state_at >= STATE_MIN_INTERVAL_S:
                self._publish_state(now)
        if self._dirty and now - self._saved_at >= SAVE_INTERVAL_S:
            self._saved_at = now                 # failed, the next try is SAVE_INTERVAL_S on (_dirty stays)
            self._ours("the sync counters", self._save)
        if now - self._pruned_at >= PRUNE_INTERVAL_S:
            self._ours("the pruning of old fleet records", self._prune)

    def _ours(self, what: str, write: Callable[[], None]) -> None:
        """One of the sync's own writes from ``pump``: a failure of ours (the database locked by another process, or
        full) is logged once while it lasts and the write tried again later (``_save`` keeps ``_dirty``), instead
        of a traceback on every event of the core loop."""
        try:
            write()
        except Exception as exc:
            if not retry.ours(exc):
                raise
            if what not in self._failing:
                self._failing.add(what)
                LOGGER.error("bookcase %s: could not write %s (%s); trying again", self.id, what, shown(exc))
            return
        self._failing.discard(what)

    def _prune(self) -> None:
        self._pruned_at = self.clock()
        pruned = replica.prune(self.store.db, _days_ago(INBOX_KEEP_DAYS))
        if pruned:
            LOGGER.info("bookcase %s: forgot %d fleet records older than %d days", self.id, pruned, INBOX_KEEP_DAYS)

    def _publish_state(self, now: float) -> None:
        depth = replica.outbox_depth(self.store.db)
        content = self._content_state()
        if now - self._health_at >= HEALTH_INTERVAL_S:
            self._health, self._health_at = self.health.read(), now
        key = (depth, tuple(sorted(self.counters.items())), tuple(sorted(content.items())) if content else None,
               self._health.alarms, self.doors() if self.doors else None)
        if key == self._state_sent and now - self._state_at < STATE_HEARTBEAT_S:
            return
        body = self._state(True)
        if self.link.publish(self.gen, self.topics.state(), body, retain=True) is not None:
            self._state_sent, self._state_at = key, now
            self._will = (self.topics.state(), self._state(False, "connection lost", depth))

    def _publish_holdings(self, now: float) -> None:
        items = replica.local_holdings(self.store.db)
        msg = {"v": schema.VERSION, "id": str(uuid.uuid4()), "bookcase": self.id, "ts": replica.now_iso(),
               "type": "holdings", "name": self.name, **self.place, "items": items}
        try:
            schema.check_message("holdings", msg)
        except schema.MessageError as exc:
            LOGGER.error("bookcase %s: its holdings (%d items) do not fit the v1 schema, not published: %s",
                         self.id, len(items), exc)
            self._holdings_after, self._holdings_at = self.relay.sessions_closed, now
            return
        if self.link.publish(self.gen, self.topics.holdings(), schema.encode(msg), retain=True) is not None:
            self._holdings_after, self._holdings_at = self.relay.sessions_closed, now
            LOGGER.info("bookcase %s: published its holdings (%d items)", self.id, len(items))

    def _state(self, online: bool, reason: str | None = None, depth: int | None = None) -> bytes:
        msg = {"v": schema.VERSION, "id": str(uuid.uuid4()), "bookcase": self.id, "ts": replica.now_iso(),
               "type": "state", "online": online, "name": self.name, **self.place, "version": __version__,
               "outbox_depth": replica.outbox_depth(self.store.db) if depth is None else depth,
               "outbox_oldest": replica.oldest_unsent(self.store.db),
               "last_sync": self.last_sync, "counters": dict(sorted(self.counters.items()))}
        if self.doors is not None:
            in_service, out_of_service = self.doors()
            msg["doors"] = {"in_service": list(in_service), "out_of_service": list(out_of_service)}
        if reason:
            msg["reason"] = reason
        content = self._content_state()
        if content:
            msg["content"] = content
        if self._health is not None:
            msg["health"] = self._health.to_message()
        schema.check_message("state", msg)
        return schema.encode(msg)

    def _content_state(self) -> dict | None:
        """What the state message says of the screen content: the version playing and the last attempt."""
        if self.content_status is None:
            return None
        st = self.content_status()
        return {"version": st["installed_version"], "last_result": st["last_result"],
                "last_error": (st["last_error"] or "")[:300] or None, "refused": st["refused"]}

    def _save(self) -> None:
        replica.save_meta(self.store.db, dict(self.counters), self.last_sync)
        self._dirty, self._saved_at = False, self.clock()

    def status(self) -> dict:
        """For diagnostics: online, last sync, outbox depth, in flight, counters."""
        return {"online": self.online, "broker": self.link.broker, "last_sync": self.last_sync,
                "outbox_depth": replica.outbox_depth(self.store.db), "in_flight": len(self.relay.inflight),
                "counters": dict(self.counters)}


def _days_ago(days: float) -> str:
    """A local ISO time ``days`` ago, in the store's format."""
    return (kiosk_clock.now() - timedelta(days=days)).isoformat(timespec="milliseconds")
