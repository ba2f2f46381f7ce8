"""A fleet run: the centre's processes, N in-process bookcases, the circulation and the faults on one simulated
clock, then the quiet end, the checks and the report (``kiosk-sim fleet-load``; docs/fleet-scale.md).

The driver thread owns everything simulated: it runs the scheduled actions in time order (patrons' hands, the
devices' answers, faults), hands each bookcase the events its MQTT threads posted (as its core loop would), and
moves the simulated clock — at ``speed`` simulated seconds per real second, or as fast as it can (0). The broker,
the gateway and the ILS run in real time in their own processes: whatever falls behind shows as backlog.
"""

from __future__ import annotations

import collections
import json
import logging
import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from kiosk import clock as kiosk_clock
from kiosk.config import Config, load_config
from kiosk.store import patrons as patron_cache
from kiosk.store.ledger import Store
from simulators.fleet.bookcases import SECRET, make_book, write_fleet_config
from simulators.ils.library import CENTRAL, HOME
from simulators.scale import pollselect
from simulators.scale.bookcase import SimBookcase
from simulators.scale.centre import Centre, GatewaySettings, ProcessStats
from simulators.scale.faults import Fault, Faults, default_schedule
from simulators.scale.model import DAY_S, Circulation, ModelConfig, bookcase_id, card_number
from simulators.scale.schedule import Scheduler
from simulators.scale.simclock import SimClock
from simulators.scale.visits import Visits
from simulators.world import Compartment, World

LOGGER = logging.getLogger(__name__)

TICK_S = 1.0                    # a busy bookcase's flow gets a Tick every simulated second
PUMP_ALL_S = 120.0              # every bookcase's sync is pumped at least this often (state heartbeat, pruning)
DRAIN_BATCH = 100
SESSION = {"choose_door_timeout_s": 60, "door_open_timeout_s": 30, "door_open_prompt_s": 45,
           "door_open_alarm_s": 120, "receipt_s": 2, "inventory_max_rounds": 4, "rescan_interval_s": 5}


@dataclass
class RunOptions:
    model: ModelConfig
    workdir: Path
    data_dir: Path | None = None          # the bookcases' files (default: workdir/bookcases; tmpfs is faster)
    speed: float = 0.0                    # simulated seconds per real second; 0: as fast as the machine goes
    follow: int | None = None             # bookcases that follow the fleet (peers' events, holdings, patrons)
    faults: list[Fault] | None = None     # None: default_schedule; []: none
    ambiguity: bool = True                # a foreign tag, a loan over the limit, an item the ILS withdrew
    gateway: GatewaySettings = field(default_factory=GatewaySettings)
    ils_latency_ms: float = 0.0
    quiet_timeout_s: float = 900.0        # real seconds the end may take to go quiet
    sample_s: float | None = None         # simulated seconds between backlog samples (None: from the length)
    ils_population: bool = True           # the ILS holds the whole population (False: only the run's cards)
    progress: bool = False                # a line on stderr now and then
    broker_race: bool = False             # after a broker restart, let bookcases publish before the gateway is back


class FleetRun:
    def __init__(self, options: RunOptions) -> None:
        self.options = options
        self.cfg = options.model
        self.workdir = Path(options.workdir)
        self.data_dir = Path(options.data_dir) if options.data_dir else self.workdir / "bookcases"
        self.clock = SimClock(self.cfg.start)
        self.scheduler = Scheduler(self.clock)
        self.model = Circulation(self.cfg)
        self.visits = Visits(self, self.model, self.cfg.seed)
        self.bookcases: list[SimBookcase] = []
        self.replaced: list[tuple[str, Path, float]] = []     # bookcase, its old database, when (Unix time)
        self.dirty: collections.deque[int] = collections.deque()
        self._ticking: set[int] = set()
        self.samples: list[dict] = []
        self.acks_at: dict[str, float] = {}           # event id -> Unix time its ack reached the bookcase
        self.centre: Centre | None = None
        self.faults = Faults(self, default_schedule(self.cfg.days, self.cfg.bookcases)
                             if options.faults is None else options.faults)
        self.refused_item: str | None = None
        self.journal = None
        self.timing: dict[str, float] = {}
        self.memory: dict[str, float] = {}
        self._previous_clock = None
        self._previous_select = None
        self._real0 = 0.0
        self._sim0 = 0.0
        self._last_progress = 0.0

    # --- setting up --------------------------------------------------------------------------------------

    def setup(self) -> None:
        t0 = time.monotonic()
        if self.workdir.exists():
            shutil.rmtree(self.workdir)
        if self.data_dir.exists():
            shutil.rmtree(self.data_dir)
        self.workdir.mkdir(parents=True)
        self.data_dir.mkdir(parents=True)
        self._previous_clock = kiosk_clock.use(self.clock)
        self._previous_select = pollselect.install()      # hundreds of bookcases: descriptors past select()'s 1023
        model = self.model
        if self.options.ambiguity:
            self.refused_item = model.stock[0][1][0]
        desk = model.desk_items()
        cards = [(c.number, c.patron_class) for c in model.cards]
        if self.options.ils_population:
            known = {c for c, _ in cards}
            cards += [(card_number(i), "adult") for i in range(self.cfg.population) if card_number(i) not in known]
        ils_setup = {"patrons": cards,
                     "items": [[b.item, b.title, CENTRAL if b.item.startswith("MHC") else HOME]
                               for b in model.books.values()],
                     "desk_loans": [[card, item] for card, items in desk.items() for item in items],
                     "refuse_items": [self.refused_item] if self.refused_item else []}
        self.centre = Centre(self.workdir / "centre", ils_setup, self.options.gateway, self.options.ils_latency_ms)
        self.centre.start([(c.number, c.patron_class, len(desk.get(c.number, ()))) for c in model.cards])
        from gateway.config import JournalConfig
        from gateway.journal import open_journal
        self.journal = open_journal(JournalConfig(path=self.centre.gateway.journal_path))
        self.timing["centre_s"] = time.monotonic() - t0
        template = self._template()
        rss_before = ProcessStats(os.getpid()).rss_mb()
        t1 = time.monotonic()
        follow = self.cfg.bookcases if self.options.follow is None else self.options.follow
        health_root = self.workdir / "empty-sysfs"
        health_root.mkdir()
        (health_root / "uptime").write_text("86400.00 43200.00\n")       # a Pi that has been up a day
        for b in range(self.cfg.bookcases):
            cfg = self._config(b)
            bc = SimBookcase(b, cfg, self._world(b, cfg), self.scheduler, follows_fleet=b < follow,
                             template=template, catalogue=self._catalogue(b), health_root=health_root,
                             on_settled=self.visits.settled)
            bc.on_post = self.dirty.append
            bc.on_received = self._received
            self.bookcases.append(bc)
            bc.open()
            self.ticking(bc)
            if b % 50 == 49:
                self._network()              # let the first ones connect while the rest start
        self.timing["bookcases_start_s"] = time.monotonic() - t1
        self.memory["host_before_bookcases_mb"] = rss_before
        self.memory["host_after_bookcases_mb"] = ProcessStats(os.getpid()).rss_mb()

    def _template(self) -> Path:
        """A database with the patron snapshot loaded (`kiosk patrons load` of the gateway's snapshot), copied for
        every bookcase: the technician's step before a bookcase goes live."""
        path = self.workdir / "template.db"
        store = Store(path, "template")
        classes = ("adult", "branch", "child")
        with open(self.centre.gateway.snapshot_path, encoding="utf-8") as lines:
            patron_cache.load(store, lines, SECRET, full=True, classes=classes)
        store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        store.close()
        return path

    def _config(self, b: int) -> Config:
        folder = self.data_dir / bookcase_id(b)
        mqtt = {"host": "127.0.0.1", "port": self.centre.broker.port, "reconnect_min_s": 0.2, "reconnect_max_s": 3.0,
                "keepalive_s": 30}
        path = write_fleet_config(folder, bookcase_id(b), f"闵行区图书馆城市书柜 · 模拟 {b + 1:03d}", mqtt,
                                  doors=self.cfg.doors, capacity=self.cfg.capacity, session=SESSION,
                                  place=(31.0 + (b % 50) * 0.004, 121.3 + (b // 50) * 0.004, f"模拟路 {b + 1} 号"))
        return load_config(path)

    def _world(self, b: int, cfg: Config) -> World:
        comps = [Compartment(door=d.number, board=d.board, lock=d.lock, reader=d.reader, capacity=d.capacity)
                 for d in cfg.doors]
        world = World(comps, unlock_pulse_ms=cfg.lockboard.unlock_pulse_ms, seed=b, clock=self.clock.monotonic,
                      info={"library": cfg.library, "bookcase": cfg.bookcase.id, "name": cfg.bookcase.name})
        for door, items in self.model.stock[b].items():
            for item in items:
                book = self.model.books[item]
                world.add_book(make_book(item, book.title, book.author), door=door)
        return world

    def _catalogue(self, b: int) -> list[dict]:
        return [{"item_id": i, "title": self.model.books[i].title, "author": self.model.books[i].author}
                for items in self.model.stock[b].values() for i in items]

    # --- the driver --------------------------------------------------------------------------------------

    def ticking(self, bc: SimBookcase) -> None:
        if bc.index not in self._ticking:
            self._ticking.add(bc.index)
            self.scheduler.after(TICK_S, self._tick, bc)

    def _tick(self, bc: SimBookcase) -> None:
        if bc.alive:
            bc.tick()
        if bc.alive and bc.busy():
            self.scheduler.after(TICK_S, self._tick, bc)
        else:
            self._ticking.discard(bc.index)

    def pump_soon(self, bc: SimBookcase, delay_s: float) -> None:
        if not bc.pump_due:
            bc.pump_due = True
            self.scheduler.after(delay_s, self._pump, bc)

    def _pump(self, bc: SimBookcase) -> None:
        bc.pump_due = False
        bc.pump()

    def _pump_all(self) -> None:
        for bc in self.bookcases:
            bc.pump()
        self.scheduler.after(PUMP_ALL_S, self._pump_all)

    def _received(self, bc: SimBookcase, event) -> None:
        """Every message a bookcase takes in: the gateway's acks are timed here (loan -> ILS -> ack)."""
        if "/central/ack/" not in event.topic:
            return
        try:
            results = json.loads(event.payload)["results"]
        except (ValueError, KeyError, TypeError):
            return
        now = time.time()
        for r in results:
            self.acks_at.setdefault(r.get("event"), now)

    def _network(self) -> int:
        """Hand each bookcase what its MQTT threads posted, as its core loop would."""
        n, seen = 0, set()
        for _ in range(len(self.dirty)):
            index = self.dirty.popleft()
            if index in seen:
                continue
            seen.add(index)
            bc = self.bookcases[index]
            n += bc.drain(DRAIN_BATCH)
            if bc.inbox:
                self.dirty.append(index)
            if bc.alive and bc.sync.relay.acked:
                self.pump_soon(bc, 0.25)              # mark the acknowledged rows sent (FLUSH_INTERVAL_S)
        return n

    def _advance(self, end: float, speed: float) -> int:
        """One turn of the driver: network, due actions, the clock. Returns how much was done."""
        done = self._network()
        if speed:
            target = min(end, self._sim0 + (time.monotonic() - self._real0) * speed)
        else:
            nxt = self.scheduler.next_time()
            target = end if nxt is None else min(end, nxt)
        ran = self.scheduler.run_due(target, limit=500)
        if ran < 500:
            self.clock.advance_to(target)
        if self.options.progress and time.monotonic() - self._last_progress > 10:
            self._last_progress = time.monotonic()
            print(f"fleet-load: {self.clock.now():%Y-%m-%d %H:%M} simulated, {time.monotonic() - self._real0:.0f} s "
                  f"real, {self.visits.tally.visits} visits, {len(self.visits.truth)} transactions", flush=True)
        return done + ran

    def run(self) -> None:
        end = self.cfg.days * DAY_S
        for t, b in self.model.arrivals():
            self.scheduler.at(t, self.visits.arrive, b)
        if self.refused_item is not None:
            self.visits.takes[0] = self.refused_item
            self.visits.extras = [(end * 0.2, "over_limit"), (end * 0.3, "junk")]
        self.faults.arm()
        sample = self.options.sample_s or (3600.0 if self.cfg.days >= 2 else 900.0)
        if self.cfg.days > 60:
            sample = DAY_S / 4
        self.scheduler.at(0.0, self._sample_loop, sample)
        self.scheduler.after(PUMP_ALL_S, self._pump_all)
        self._real0, self._sim0 = time.monotonic(), self.clock.t
        t0 = time.monotonic()
        while self.clock.t < end:
            if not self._advance(end, self.options.speed):
                time.sleep(0.001)
        self.timing["simulated_s"] = time.monotonic() - t0
        self.memory["host_end_of_run_mb"] = ProcessStats(os.getpid()).rss_mb()
        self.timing["real_per_simulated_day_s"] = self.timing["simulated_s"] / self.cfg.days
        self._quiet()

    def _quiet(self) -> None:
        """After the last visit: mend every fault and let the fleet go quiet — everything sent, applied, acked."""
        t0 = time.monotonic()
        self.faults.heal()
        deadline = t0 + self.options.quiet_timeout_s
        # The clock keeps running (relay flushes, heartbeats), slower: a simulated second per 10 ms at most.
        self._real0, self._sim0 = time.monotonic(), self.clock.t
        quiet_since = None
        next_look = 0.0
        while time.monotonic() < deadline:
            if not self._advance(float("inf"), 100.0):
                time.sleep(0.002)
            if time.monotonic() < next_look:
                continue
            next_look = time.monotonic() + 1.0
            if self._is_quiet():
                quiet_since = quiet_since or time.monotonic()
                # The gateway asks the ILS about touched patrons a little later and publishes what changed.
                if time.monotonic() - quiet_since > self.options.gateway.refresh_delay_s + 5 and \
                        self._patrons_settled():
                    break
            else:
                quiet_since = None
        self.timing["quiet_s"] = time.monotonic() - t0
        self.timing["went_quiet"] = bool(quiet_since)
        self._sample()

    def _is_quiet(self) -> bool:
        if self.scheduler.next_time() is not None and self.scheduler.next_time() <= self.clock.t:
            return False
        if self.visits.in_progress() or self.dirty:
            return False
        for bc in self.bookcases:
            if not bc.alive or bc.flow.live or bc.sync.relay.inflight or not bc.sync.online:
                return False
            bc.sync.relay.flush()
            if bc.store.outbox_depth() or bc.store.db.execute(
                    "SELECT 1 FROM outbox WHERE gateway IS NULL LIMIT 1").fetchone():
                return False
        backlog = self.journal.backlog()
        return backlog["depth"] == 0 and backlog["acks_due"] == 0

    def _patrons_settled(self) -> bool:
        """Every patron a loan or return touched asked about, and every changed status published."""
        patrons = self.journal.status()["patrons"]
        return patrons["to_ask"] == 0 and patrons["to_publish"] == 0

    def _sample_loop(self, every: float) -> None:
        self._sample()
        self.scheduler.after(every, self._sample_loop, every)

    def _sample(self) -> None:
        outbox = sum(bc.store.outbox_depth() for bc in self.bookcases if bc.alive)
        backlog = self.journal.backlog() if self.journal else {}
        self.samples.append({"t": round(self.clock.t, 1), "when": self.clock.now().isoformat(timespec="minutes"),
                             "real_s": round(time.monotonic() - self._real0, 2), "outbox": outbox,
                             "gateway": backlog.get("depth", 0), "acks_due": backlog.get("acks_due", 0),
                             "review_open": backlog.get("review_open", 0),
                             "transactions": len(self.visits.truth)})

    # --- the end -----------------------------------------------------------------------------------------

    def shutdown(self) -> dict:
        """Stop the bookcases (as systemctl stop), dump the ILS, stop the centre. Returns the ILS's dump paths."""
        self.memory["host_end_mb"] = ProcessStats(os.getpid()).rss_mb()
        if self.centre is not None and self.centre.broker_stats is not None:
            self.memory["broker_mb"] = self.centre.broker_stats.rss_mb()
        if self.centre is not None and self.centre.gateway and self.centre.gateway.running:
            self.memory["gateway_mb"] = self.centre.gateway.stats.rss_mb()
        with ThreadPoolExecutor(32) as pool:
            list(pool.map(lambda bc: bc.close(), self.bookcases))
        dump = {}
        if self.centre is not None:
            self.cpu = {"broker_s": self.centre.broker_cpu_s(), "gateway_s": self.centre.gateway.cpu_s(),
                        "ils_s": self.centre.ils.stats.cpu_s() if self.centre.ils.stats else 0.0,
                        "host_s": ProcessStats(os.getpid()).cpu_s()}
            try:
                dump = self.centre.ils.control("dump", folder=str(self.workdir / "ils-dump"))
            finally:
                self.centre.stop()
        self._restore()
        return dump

    def close(self) -> None:
        """Whatever is left running (after an error): bookcases killed, centre stopped, the real clock back."""
        for bc in self.bookcases:
            try:
                bc.kill()
            except Exception:
                LOGGER.exception("could not stop bookcase %s", bc.id)
        if self.journal is not None:
            self.journal.close()
            self.journal = None
        if self.centre is not None:
            self.centre.stop()
        self._restore()

    def _restore(self) -> None:
        """The real clock and paho's own select back (a test runs a fleet in its own process)."""
        if self._previous_clock is not None:
            kiosk_clock.use(self._previous_clock)
            self._previous_clock = None
        if self._previous_select is not None:
            pollselect.uninstall(self._previous_select)
            self._previous_select = None
