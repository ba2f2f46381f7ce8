"""Wiring: builds the store, the flow and the drivers from the config, and runs the core loop."""

from __future__ import annotations

import logging
import queue
import shutil
import signal
import threading
import time
from dataclasses import replace
from typing import Callable

from kiosk import __version__
from kiosk.config import Config
from kiosk.content.manifest import public_key
from kiosk.content.store import ContentStore
from kiosk.core import events as ev
from kiosk.core.flow import Flow
from kiosk.core.snapshot import Diagnostics, Snapshot
from kiosk.core.inventory import Reconciler
from kiosk.core.policy import LoanPolicy
from kiosk.drivers.errors import DeviceError
from kiosk.drivers.lockboard.device import LockBoard, LockState
from kiosk.drivers.rfid.device import RfidBus
from kiosk.drivers.rfid.tag import TagDecodeError, decode_tag
from kiosk.drivers.pcsc.device import CardReader
from kiosk.drivers.scanner.device import Scanner
from kiosk.intents import Barrier, IntentServer, ScanRouter
from kiosk.search import index as search_index
from kiosk.search.finder import Finder
from kiosk.sdnotify import Notifier
from kiosk.store.db import transaction
from kiosk.store.ledger import Store
from kiosk.store.seed import seed_demo
from kiosk.sync.content import ContentUpdater
from kiosk.sync.events import SyncEvent
from kiosk.sync.service import FleetSync

LOGGER = logging.getLogger(__name__)

TICK_S = 0.1
TAG_READ_TRIES = 3
DISK_CHECK_S = 60.0
UNLOCK_PORT_WAIT_S = 3.0       # an unlock waits this long for a lock board port that is still opening


class App:
    """One bookcase daemon. ``run()`` blocks until ``stop()`` (or SIGTERM/SIGINT)."""

    def __init__(self, config: Config, *, notifier: Notifier | None = None) -> None:
        self.config = config
        self.notifier = notifier or Notifier()
        self.events: queue.Queue = queue.Queue()
        self.stopping = threading.Event()
        self._signalled = 0                      # the signal that asked the daemon to stop (set by the handler)
        self.snapshot: Snapshot = Snapshot(state="starting")
        self.store = Store(config.db_path, config.bookcase.id)
        if config.seed_demo_data:
            seed_demo(self.store, config)
        self._index_catalogue()
        self.scans = ScanRouter(lambda text: self.post(ev.CardPresented(text)))
        s = config.session
        self.flow = Flow(
            bookcase_id=config.bookcase.id, doors=[d.number for d in config.doors], ledger=self.store,
            policy=LoanPolicy(config.policy.default_limit, config.policy.class_limits,
                              config.policy.offline_extra_loans), secret=config.secret,
            loan_days=config.policy.loan_days, choose_door_timeout_s=s.choose_door_timeout_s,
            door_open_timeout_s=s.door_open_timeout_s, door_open_prompt_s=s.door_open_prompt_s,
            door_open_alarm_s=s.door_open_alarm_s, receipt_s=s.receipt_s, rescan_interval_s=s.rescan_interval_s,
            default_door=s.default_door, online=getattr(config, "mqtt", None) is None,
            ecard_key=config.ecard.key, ecard_skew_s=config.ecard.skew_s, pin_timeout_s=s.pin_timeout_s,
            pin_tries=s.pin_tries, restock_summary_s=s.restock_summary_s)
        self.devices: dict[str, tuple[bool, str]] = {}      # device -> (link up, last message)
        self.disk_free_mb: int | None = None
        self._door_by_lock = {(d.board, d.lock): d.number for d in config.doors}
        all_doors = tuple(d.number for d in config.doors)
        lb = config.lockboard
        self.lockboard = LockBoard(
            lb.port, boards=sorted({d.board for d in config.doors}), baudrate=lb.baudrate,
            lock_bit_unlocked=lb.lock_bit_unlocked, sensor_bit_open=lb.sensor_bit_open,
            poll_interval_s=lb.poll_interval_ms / 1000, open_poll_interval_s=lb.open_poll_interval_ms / 1000,
            timeout_s=lb.timeout_ms / 1000, retries=lb.retries,
            on_change=self._on_lock_change,
            on_link=lambda up, msg: self.post(ev.DeviceLink("lockboard", up, msg, all_doors)),
            on_board_fault=self._on_board_fault)
        self.rfid = RfidBus(config.rfid.port, baudrate=config.rfid.baudrate, timeout_s=config.rfid.timeout_ms / 1000,
                            retries=config.rfid.retries,
                            on_link=lambda up, msg: self.post(ev.DeviceLink("rfid", up, msg, all_doors)))
        self.scanner = Scanner(config.scanner.port, baudrate=config.scanner.baudrate,
                               on_scan=lambda text: self.scans.route(text.strip()),
                               on_bad_line=lambda why: self.post(ev.BadScan(why)),
                               on_link=lambda up, msg: self.post(ev.DeviceLink("scanner", up, msg)))
        # The card UID string (upper-case hex) is what the patron key is made of: see CardReader's docstring.
        self.card_reader = CardReader(
            config.pcsc.reader, debounce_s=config.pcsc.debounce_ms / 1000,
            on_card=lambda uid: self.post(ev.CardPresented(uid, source="pcsc")),
            on_link=lambda up, msg: self.post(ev.DeviceLink("pcsc", up, msg))) if config.pcsc.enabled else None
        self._unlocks = _Worker("unlock", self._unlock)
        self._scans = _Worker("inventory", self._scan)
        self.intents = IntentServer(config.intent_socket, self.post, lambda: self.snapshot) \
            if config.intent_socket else None
        # The screen's finder: a read-only connection of its own (kiosk.search.finder); it may take the scanner's
        # lines while the Find page is open.
        self.find = Finder(config.db_path, config.bookcase.id, scans=self.scans)
        # The large screen's signed content: none is accepted (the built-in cards show) without the library's keys.
        self.content_store = ContentStore(config.content_dir, tuple(public_key(k) for k in config.content.public_keys))
        self.content = ContentUpdater(config, self.content_store) if config.content.public_keys else None
        self.sync = FleetSync(config, self.store, self.post, on_content=self.content.announce if self.content else None,
                              content_status=self.content.status if self.content else None,
                              doors=lambda: (self.snapshot.doors_in_service, self.snapshot.doors_out_of_service)) \
            if config.mqtt else None   # None: offline bookcase

    # --- threads post, the core loop consumes --------------------------------------------------

    def post(self, event: ev.Event) -> None:
        self.events.put(event)

    def _index_catalogue(self) -> None:
        """Before the core loop runs: this bookcase's place and the catalogue's new titles into the find-a-book
        index (kiosk.search.index; the fleet's holdings are indexed as they arrive)."""
        bc = self.config.bookcase
        try:
            with transaction(self.store.db) as conn:
                search_index.set_home(conn, bc.latitude, bc.longitude)
                n = search_index.refresh(conn, limit=10 ** 9)
            if n:
                LOGGER.info("find a book: %d catalogue titles indexed", n)
        except Exception:
            LOGGER.exception("find a book: the catalogue could not be indexed; searches may miss new titles")

    def run(self, install_signal_handlers: bool = True) -> None:
        if install_signal_handlers:
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, self._on_signal)
        LOGGER.info("bookcase %s (%s) starting, kiosk %s, %d doors, database %s", self.config.bookcase.id,
                    self.config.bookcase.name, __version__, len(self.config.doors), self.config.db_path)
        self._dispatch(self.flow.start())
        for part in (self._unlocks, self._scans, self.lockboard, self.rfid, self.scanner):
            part.start()
        if self.card_reader:
            self.card_reader.start()
        if self.intents:
            self.intents.start()
        if self.content:
            self.content.start()
        if self.sync:
            self._sync_step(self.sync.start)
        self.notifier.ready(f"serving {len(self.config.doors)} doors")
        try:
            self._loop()
        finally:
            self.notifier.stopping()
            self._shutdown()

    def stop(self) -> None:
        self.stopping.set()
        self.post(ev.Tick())

    def _on_signal(self, signum: int, frame: object) -> None:
        """SIGTERM/SIGINT: a flag only, seen by the loop within a tick. A handler runs between two bytecodes of the
        main thread, maybe inside a lock that thread holds: calling stop() here (Event.set, Queue.put) took the
        Event's lock again when a second SIGTERM came during the first one's Event.set, and the daemon hung for
        good, deaf to every later SIGTERM."""
        self._signalled = signum

    def _loop(self) -> None:
        last_tick = time.monotonic()
        next_disk_check = last_tick
        while not self.stopping.is_set():
            if self._signalled:
                LOGGER.info("bookcase %s: %s received", self.config.bookcase.id, signal.Signals(self._signalled).name)
                self.stopping.set()
                break
            try:
                self._handle(self.events.get(timeout=TICK_S))
            except queue.Empty:
                pass
            now = time.monotonic()
            if now - last_tick >= TICK_S:
                last_tick = now
                self._handle(ev.Tick())
            if now >= next_disk_check:
                next_disk_check = now + DISK_CHECK_S
                self._check_disk()
            self.notifier.watchdog(now)

    def _check_disk(self) -> None:
        try:
            free_mb = shutil.disk_usage(self.config.data_dir).free // (1024 * 1024)
        except OSError as exc:
            LOGGER.error("cannot check the free space of %s (%s)", self.config.data_dir, exc)
            return
        self.disk_free_mb = free_mb
        self._handle(ev.DiskSpace(free_mb, free_mb < self.config.session.disk_low_mb))

    def _handle(self, event: ev.Event) -> None:
        # Rule 8: nothing a device, the network or a bad input sends may take the daemon down.
        if isinstance(event, SyncEvent):
            self._sync_step(self.sync.handle, event)
            return
        if isinstance(event, Barrier):          # every event before it is handled: the snapshot shows them
            event.done.set()
            return
        if isinstance(event, ev.DeviceLink):
            self.devices[event.device] = (event.up, event.message)
        try:
            effects = self.flow.handle(event)
        except Exception:
            LOGGER.exception("error while handling %s; the bookcase keeps running", type(event).__name__)
            return
        self._dispatch(effects)
        self.snapshot = replace(self.flow.snapshot(), diagnostics=self._diagnostics())
        if self.sync:
            self._sync_step(self.sync.pump)      # publish what the flow just wrote to the outbox

    def _sync_step(self, step: Callable, *args: object) -> None:
        try:
            step(*args)
        except Exception:
            LOGGER.exception("bookcase %s: fleet sync error; the bookcase keeps running and the outbox keeps "
                             "everything", self.config.bookcase.id)

    def _diagnostics(self) -> Diagnostics:
        try:
            depth = self.store.outbox_depth()
        except Exception:       # the diagnostics screen must not fail with the database
            depth = -1
        return Diagnostics(version=__version__, bookcase_id=self.config.bookcase.id,
                           bookcase_name=self.config.bookcase.name,
                           devices=tuple((name, up, msg) for name, (up, msg) in sorted(self.devices.items())),
                           outbox_depth=depth, online=self.flow.online, last_sync=self.flow.last_sync,
                           disk_free_mb=self.disk_free_mb, **self._content_status())

    def _content_status(self) -> dict:
        if self.content is None:
            return {}
        status = self.content.status()
        return {"content_version": status["installed_version"], "content_result": status["last_result"]}

    def _dispatch(self, effects: list[ev.Effect]) -> None:
        for effect in effects:
            if isinstance(effect, ev.Unlock):
                self._unlocks.submit(effect)
            elif isinstance(effect, ev.Scan):
                self._scans.submit(effect)
            elif isinstance(effect, ev.ReportDoors):
                # Non-blocking: the poll thread reports these boards' locks on its next reading.
                for board in sorted({self.config.door(n).board for n in effect.doors}):
                    self.lockboard.report_again(board)

    def _shutdown(self) -> None:
        LOGGER.info("bookcase %s stopping", self.config.bookcase.id)
        if self.intents:
            self.intents.close()
        for part in (self.scanner, *filter(None, [self.card_reader]), self.lockboard, self.rfid, self._unlocks,
                     self._scans):
            try:
                part.close()
            except Exception:
                LOGGER.exception("error while closing %s", type(part).__name__)
        if self.sync:
            self._sync_step(self.sync.close)
        if self.content:
            try:
                self.content.close()
            except Exception:
                LOGGER.exception("error while stopping the content updater")
        self.store.close()
        self.find.close()
        self.notifier.close()

    # --- device callbacks (driver threads) ------------------------------------------------------

    def _on_lock_change(self, board: int, lock: int, state: LockState) -> None:
        door = self._door_by_lock.get((board, lock))
        if door is not None:
            self.post(ev.DoorSensed(door, state.door_open, state.locked))

    def _on_board_fault(self, board: int, message: str | None) -> None:
        doors = tuple(d.number for d in self.config.doors if d.board == board)
        self.post(ev.DeviceLink("lockboard", message is None, message or f"board {board} answers again", doors))

    # --- workers --------------------------------------------------------------------------------

    def _unlock(self, effect: ev.Unlock) -> None:
        door = self.config.door(effect.door)
        # At start-up (a resumed session unlocks again at once) the port may still be opening: wait for it briefly.
        self.lockboard.transport.wait_connected(UNLOCK_PORT_WAIT_S)
        try:
            self.lockboard.unlock(door.board, door.lock)
            LOGGER.info("door %d: unlock sent (board %d lock %d)", door.number, door.board, door.lock)
            self.post(ev.UnlockResult(effect.door, effect.session_id))
        except DeviceError as exc:
            self.post(ev.UnlockResult(effect.door, effect.session_id, str(exc)))

    def _scan(self, effect: ev.Scan) -> None:
        self.post(inventory(self.rfid, effect, self.config.door(effect.door).reader,
                            self.config.session.inventory_max_rounds))


def inventory(rfid: RfidBus, effect: ev.Scan, reader: int, max_rounds: int) -> ev.ScanResult | ev.ScanFailed:
    """Inventory rounds until they agree, then read the memory of tags not seen before."""
    rec = Reconciler(max_rounds)
    try:
        while not rec.done:
            rec.add_round({t.uid.hex().upper() for t in rfid.inventory(reader)})
        present, uncertain = rec.result()
        tags: dict[str, ev.TagInfo] = {}
        for uid in sorted((present | uncertain) - effect.known):
            tags[uid] = _read_tag(rfid, reader, uid)
    except DeviceError as exc:
        return ev.ScanFailed(effect.door, effect.session_id, str(exc), effect.attempt)
    return ev.ScanResult(effect.door, effect.session_id, present, uncertain, len(rec.rounds), rec.agreed, tags,
                         effect.attempt)


def _read_tag(rfid: RfidBus, reader: int, uid: str) -> ev.TagInfo:
    error = ""
    for _ in range(TAG_READ_TRIES):
        try:
            data = rfid.read_tag(reader, bytes.fromhex(uid))
        except DeviceError as exc:
            error = str(exc)
            continue
        try:
            tag, _reversed = decode_tag(data)
        except TagDecodeError as exc:
            LOGGER.info("tag %s: memory does not decode as a library tag (%s)", uid, exc)
            return ev.TagInfo(None, None, str(exc))
        return ev.TagInfo(tag.item_id, int(tag.usage))
    LOGGER.warning("tag %s: memory could not be read after %d tries (%s)", uid, TAG_READ_TRIES, error)
    return ev.TagInfo(None, None, f"memory unreadable: {error}", readable=False)


class _Worker:
    """A thread with a queue: device calls block here, never on the core loop."""

    def __init__(self, name: str, work: Callable[[object], None]) -> None:
        self.name = name
        self.work = work
        self.jobs: queue.Queue = queue.Queue()
        self.thread = threading.Thread(target=self._run, name=f"kiosk-{name}", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def submit(self, job: object) -> None:
        self.jobs.put(job)

    def close(self) -> None:
        self.jobs.put(None)
        if self.thread.is_alive():
            self.thread.join(timeout=10)

    def _run(self) -> None:
        while (job := self.jobs.get()) is not None:
            try:
                self.work(job)
            except Exception:
                LOGGER.exception("%s worker: unexpected error; carrying on", self.name)
