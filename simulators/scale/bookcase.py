"""One simulated bookcase of the fleet, in-process: the real core against in-process devices.

What runs is the bookcase's own code, as kiosk.app wires it: the session flow (kiosk.core.flow.Flow), the store on
its own SQLite file (kiosk.store.ledger.Store), the outbox relay and the fleet sync with its own MQTT session
(kiosk.sync.service.FleetSync). What is simulated is the hardware: the world of simulators/world.py (books,
compartments, doors, the lock's pulse and the door's spring) without its ptys. The events the drivers would post
are posted here from the world's state — the lock board's ``DoorSensed`` on each change and on every report asked
for, ``UnlockResult`` after the board's answer, the RFID bus's ``ScanResult`` after the air time of its rounds,
with each new tag's memory decoded by the driver's own codec (kiosk.drivers.rfid.tag).

A daemon "killed" here (``kill``) is dropped without a word: its MQTT connection cut (the broker sends its last
will), its relay's acknowledged-but-unmarked rows never marked, its SQLite connection closed. ``open`` builds a new
one on the same files, as systemd's restart would; ``replace_database`` moves the SD card's files away first.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import shutil
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from kiosk.config import Config
from kiosk.core import events as ev
from kiosk.core.flow import Flow
from kiosk.core.policy import LoanPolicy
from kiosk.core.snapshot import IDLE, RECEIPT, REFUSED
from kiosk.drivers.rfid.tag import TagDecodeError, decode_tag
from kiosk.health import HealthReader
from kiosk.store.ledger import Store
from kiosk.sync.events import Received, SyncEvent
from kiosk.sync.service import FleetSync
from kiosk.sync.topics import Topics
from paho.mqtt.subscribeoptions import SubscribeOptions
from simulators.rfid import AIR_MS_PER_TAG
from simulators.world import World

if TYPE_CHECKING:
    from simulators.scale.schedule import Scheduler

LOGGER = logging.getLogger(__name__)

UNLOCK_ANSWER_S = 0.03          # the lock board's answer to an unlock (19200 baud, one frame each way)
POLL_S = 0.1                    # the lock board's poll: a door's change is seen this long after it happens
ROUND_OVERHEAD_S = 0.03         # one inventory round without tags (the FEIG reader's own time)
TAG_READ_S = 0.02               # reading one new tag's memory
ROUNDS = 2                      # two rounds that agree (the devices here never miss a tag)


def central_subscriptions(topics: Topics) -> Callable[[bool], list]:
    """What a bookcase that does not follow the fleet subscribes to: its acks and the content announcement only —
    not the other bookcases' events and holdings, nor the patron statuses (the simulator loads the cache from the
    gateway's snapshot). The fleet's fan-out is measured on the bookcases that keep the real subscriptions."""
    def subscriptions(every_retained: bool = False) -> list:
        retained = SubscribeOptions.RETAIN_SEND_ON_SUBSCRIBE if every_retained else \
            SubscribeOptions.RETAIN_SEND_IF_NEW_SUB
        return [(topics.ack(), SubscribeOptions(qos=1, retainHandling=retained)),
                (topics.content(), SubscribeOptions(qos=1, retainHandling=SubscribeOptions.RETAIN_SEND_ON_SUBSCRIBE))]
    return subscriptions


class SimBookcase:
    """A bookcase's daemon core and its devices. All methods run on the fleet driver's thread, except ``post``,
    which paho's threads call (it only appends to a deque)."""

    def __init__(self, index: int, cfg: Config, world: World, scheduler: Scheduler, *, follows_fleet: bool,
                 template: Path | None, catalogue: list[dict], health_root: Path,
                 on_settled: Callable[[SimBookcase, str, dict], None]) -> None:
        self.index = index
        self.cfg = cfg
        self.id = cfg.bookcase.id
        self.world = world
        self.scheduler = scheduler
        self.follows_fleet = follows_fleet
        self.template = template
        self.catalogue = catalogue
        self.health_root = health_root
        self.on_settled = on_settled
        self.inbox: collections.deque = collections.deque()
        self.store: Store | None = None
        self.flow: Flow | None = None
        self.sync: FleetSync | None = None
        self.alive = False
        self.generation = 0                   # bumps on every kill: events of a dead daemon are dropped
        self.offline = False
        self.visit = None                     # the patron at the screen, if any
        self.wake_at = 0.0                    # the driver pumps the sync at this simulated second at the latest
        self.replaced = 0
        self.pump_due = False                 # a pump is scheduled (acknowledged rows to mark, holdings to send)
        self.on_post: Callable[[int], None] = lambda index: None          # the driver's "look at me"
        self.on_received: Callable[[SimBookcase, object], None] | None = None
        self._mqtt = cfg.mqtt

    # --- life ----------------------------------------------------------------------------------------

    def open(self) -> None:
        """Start the daemon on the bookcase's files: store, flow (resuming open sessions), fleet sync; then the lock
        board reports every door, as its driver does on its first reading."""
        cfg = self.cfg
        fresh = not cfg.db_path.exists()
        if fresh and self.template is not None:
            cfg.db_path.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self.template, cfg.db_path)        # the patron snapshot the technician loaded
        self.store = Store(cfg.db_path, self.id)
        if fresh:
            self.store.upsert_catalogue(self.catalogue)
        s, p = cfg.session, cfg.policy
        self.flow = Flow(
            bookcase_id=self.id, doors=[d.number for d in cfg.doors], ledger=self.store,
            policy=LoanPolicy(p.default_limit, p.class_limits, p.offline_extra_loans), secret=cfg.secret,
            loan_days=p.loan_days, choose_door_timeout_s=s.choose_door_timeout_s,
            door_open_timeout_s=s.door_open_timeout_s, door_open_prompt_s=s.door_open_prompt_s,
            door_open_alarm_s=s.door_open_alarm_s, receipt_s=s.receipt_s, rescan_interval_s=s.rescan_interval_s,
            default_door=s.default_door, online=False)
        generation = self.generation
        self.sync = FleetSync(cfg, self.store, lambda e: self.post(e, generation),
                              health=HealthReader(cfg.data_dir, sys_root=self.health_root,
                                                  proc_root=self.health_root),
                              doors=self._doors)
        if not self.follows_fleet:
            self.sync.link.subscriptions = central_subscriptions(self.sync.topics)
        if self.offline:
            self.sync.link.cfg = dataclasses.replace(self._mqtt, port=_dead_port())
        self.alive = True
        self.dispatch(self.flow.start())
        self.sync.start()
        self.scheduler.after(POLL_S, self._report, tuple(d.number for d in cfg.doors))

    def close(self) -> None:
        """Stop as ``systemctl stop`` would: the final state message, acknowledged rows marked, files closed."""
        if not self.alive:
            return
        self.alive = False
        try:
            self.sync.close()
        finally:
            self.store.close()

    def kill(self) -> None:
        """SIGKILL: nothing more is written or sent. The connection is cut first, so the broker sends the will."""
        if not self.alive:
            return
        self.alive = False
        self.generation += 1
        self._cut()
        self.sync.link.close(None, timeout_s=10)
        self.store.close()
        self.inbox.clear()

    def replace_database(self) -> Path:
        """A new SD card: the daemon is stopped, its files moved aside (returned: the old card), a blank database
        made from the template (the patron snapshot loaded by the technician) at the next ``open``."""
        self.kill()
        self.replaced += 1
        old = self.cfg.db_path.with_name(f"{self.cfg.db_path.stem}.replaced-{self.replaced}.db")
        for suffix in ("", "-wal", "-shm"):
            src = Path(str(self.cfg.db_path) + suffix)
            if src.exists():
                src.rename(Path(str(old) + suffix))
        return old

    # --- the network ----------------------------------------------------------------------------------

    def go_offline(self) -> None:
        """The street bookcase loses its network: the connection drops and no new one gets through."""
        self.offline = True
        if self.alive:
            self.sync.link.cfg = dataclasses.replace(self._mqtt, port=_dead_port())
            self._cut()

    def come_online(self) -> None:
        self.offline = False
        if self.alive:
            self.sync.link.cfg = self._mqtt

    def _cut(self) -> None:
        conn = self.sync.link._conn                  # the connection paho is serving now, if any
        sock = conn.client.socket() if conn is not None else None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    # --- events in, effects out ----------------------------------------------------------------------

    def post(self, event: object, generation: int | None = None) -> None:
        """From paho's threads (and the sync itself): queued for the driver's thread."""
        if generation is None or generation == self.generation:
            self.inbox.append(event)
            self.on_post(self.index)

    def drain(self, limit: int = 200) -> int:
        n = 0
        while self.inbox and n < limit and self.alive:
            self.handle(self.inbox.popleft())
            n += 1
        return n

    def handle(self, event: object) -> None:
        """One event, as kiosk.app.App._handle does: sync events to the sync, the rest to the flow, then pump."""
        if not self.alive:
            return
        if isinstance(event, SyncEvent):
            if self.on_received is not None and isinstance(event, Received):
                self.on_received(self, event)
            try:
                self.sync.handle(event)
            except Exception:
                LOGGER.exception("bookcase %s: fleet sync error; the bookcase keeps running", self.id)
            return
        try:
            effects = self.flow.handle(event)
        except Exception:
            LOGGER.exception("bookcase %s: error while handling %s", self.id, type(event).__name__)
            return
        self.dispatch(effects)
        self.pump()

    def pump(self) -> None:
        if self.alive:
            try:
                self.sync.pump()
            except Exception:
                LOGGER.exception("bookcase %s: fleet sync error while pumping", self.id)

    def tick(self) -> None:
        self.handle(ev.Tick())

    def dispatch(self, effects: list) -> None:
        for effect in effects:
            if isinstance(effect, ev.Unlock):
                self.scheduler.after(UNLOCK_ANSWER_S, self._unlock, effect, self.generation)
            elif isinstance(effect, ev.Scan):
                n = len(self.world.items_behind(effect.door))
                air = ROUNDS * (ROUND_OVERHEAD_S + n * AIR_MS_PER_TAG / 1000)
                self.scheduler.after(air, self._scan, effect, self.generation)
            elif isinstance(effect, ev.ReportDoors):
                self.scheduler.after(POLL_S, self._report, effect.doors)

    def _unlock(self, effect: ev.Unlock, generation: int) -> None:
        door = self.cfg.door(effect.door)
        self.world.unlock(door.board, door.lock)
        if generation == self.generation:
            self.handle(ev.UnlockResult(effect.door, effect.session_id))
        # The spring pushes the door open; the board's poll sees it.
        self.scheduler.after(self.world.pop_delay_s + POLL_S, self.sense, effect.door)

    def sense(self, door: int) -> None:
        """The lock board's poll reports ``door`` as the world has it now."""
        state = self.world.door_state(door)
        self.handle(ev.DoorSensed(door, state["open"], state["locked"]))

    def _report(self, doors: tuple[int, ...]) -> None:
        for door in doors:
            self.sense(door)

    def _scan(self, effect: ev.Scan, generation: int) -> None:
        if generation != self.generation or not self.alive:
            return                                   # the daemon that asked is gone
        reader = self.cfg.door(effect.door).reader
        rounds = [self.world.inventory_round(reader) for _ in range(ROUNDS)]
        seen = [{b.uid.hex().upper() for b in r} for r in rounds]
        present = frozenset(set.intersection(*seen))
        uncertain = frozenset(set.union(*seen)) - present
        books = {b.uid.hex().upper(): b for r in rounds for b in r}
        tags: dict[str, ev.TagInfo] = {}
        for uid in sorted((present | uncertain) - effect.known):
            try:
                tag, _ = decode_tag(books[uid].tag_data)
                tags[uid] = ev.TagInfo(tag.item_id, int(tag.usage))
            except TagDecodeError as exc:
                tags[uid] = ev.TagInfo(None, None, str(exc))
        live = self.flow.live.get(effect.session_id)
        record = live.record if live is not None else None
        self.handle(ev.ScanResult(effect.door, effect.session_id, present, uncertain, ROUNDS, True, tags,
                                  effect.attempt))
        if record is not None and effect.session_id not in self.flow.live:
            self.on_settled(self, effect.session_id, {"kind": record.kind, "door": record.door,
                                                      "patron": record.patron_key})

    # --- views ----------------------------------------------------------------------------------------

    def ready_for_patron(self) -> bool:
        return self.alive and self.visit is None and self.flow.state in (IDLE, RECEIPT, REFUSED)

    def _doors(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        flow = self.flow
        return (tuple(n for n, d in flow.doors.items() if d.in_service),
                tuple(n for n, d in flow.doors.items() if d.faults))

    def busy(self) -> bool:
        """Something is going on that needs the flow's timers (a session, a screen that times out)."""
        return self.alive and (bool(self.flow.live) or self.flow.state not in (IDLE,))


def _dead_port() -> int:
    """A loopback port nobody listens on: connecting to it is refused at once, as an unreachable broker is."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
