"""`python -m simulators.fleet`: a broker and two simulated bookcases; a book borrowed at one is returned at the other.

Mosquitto runs on a free port with a throw-away config: a password per bookcase (random, made for this run,
never stored in the repo) and the fleet's ACL from config/mosquitto/citybook.acl, exactly as in production.
Each daemon runs as its own process (``kiosk run``) against simulators in this process; a read-only
``monitor`` client prints what crosses the broker. ``--exit`` runs the story and exits 0 if both ledgers agree.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from kiosk.config import load_config
from kiosk.core.policy import card_hint
from kiosk.intents import send
from kiosk.store.ledger import Store
from simulators.bookcase import SimulatedBookcase
from simulators.children import tied_to_process
from simulators.fleet.bookcases import SECRET, carry, fleet_world, write_fleet_config
from simulators.fleet.broker import BrokerError, find_mosquitto
from simulators.fleet.stage import ACL, ROOT, FleetStage

PATRON = "3101120000018"
BOOKCASES = (("MH-0101", "闵行区图书馆城市书柜 · 莘庄镇康城社区", 1),
             ("MH-0102", "闵行区图书馆城市书柜 · 七宝镇万科城市花园", 201))
BOOKS_PER_DOOR = 6
# Where the demo's bookcases stand (WGS 84, about) and their addresses: the Find page shows how far each is.
PLACES = {"MH-0101": (31.0950, 121.3660, "莘松路 958 弄"),        # 莘庄镇康城社区, as config/demo.toml's MH-0001
          "MH-0102": (31.1380, 121.3570, "七莘路 3333 弄")}       # 七宝镇万科城市花园, about 4.9 km north


class Member:
    """One bookcase of the demo fleet: its config, simulators, daemon process and a view of its database."""

    def __init__(self, folder: Path, bookcase_id: str, name: str, first_item: int, mqtt_cfg: dict,
                 secret: str = SECRET) -> None:
        self.folder = folder
        self.config_path = write_fleet_config(folder, bookcase_id, name, mqtt_cfg, doors=3,
                                              session={"receipt_s": 3}, secret=secret,
                                              place=PLACES.get(bookcase_id))
        self.cfg = load_config(self.config_path)
        self.sim = SimulatedBookcase(self.cfg, folder / "sim", world=fleet_world(self.cfg, first_item, BOOKS_PER_DOOR),
                                     control=True, seed=first_item)
        self.proc: subprocess.Popen | None = None
        self.view: Store | None = None

    @property
    def id(self) -> str:
        return self.cfg.bookcase.id

    def start(self) -> None:
        self.sim.start()
        log = open(self.folder / "daemon.log", "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "kiosk", "run", "--config", str(self.config_path),
                                      "--headless"], stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
                                     **tied_to_process())
        log.close()

    def ready(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise SystemExit(f"fleet demo: the daemon of {self.id} exited (code {self.proc.returncode}); "
                             f"see {self.folder / 'daemon.log'}")
        if not self.cfg.db_path.exists() or not self.cfg.intent_socket.exists():
            return False
        if self.view is None:
            self.view = Store(self.cfg.db_path, self.id)
        return not self.view.open_sessions() and not self.view.doors_never_counted([d.number for d in self.cfg.doors])

    def settled(self) -> int:
        return sum(1 for s in self.view.sessions() if s["kind"] == "patron" and s["state"] == "done")

    def door(self, number: int) -> dict:
        (info,) = [d for d in self.sim.status()["doors"] if d["door"] == number]
        return info

    def visit(self, card: str, door: int, wait, take: list[str] = (), put: list[str] = ()) -> None:
        """A patron picks ``door``, scans ``card``, takes and puts books, closes the door; returns once the
        session has settled. ``wait(predicate, what)`` waits (and gives up) as the caller's story does."""
        before = self.settled()
        send(self.cfg.intent_socket, {"intent": "door", "door": door})
        self.sim.scan(card)
        wait(lambda: self.door(door)["open"] and any(
            s["door"] == door and s["state"] == "open" for s in self.view.sessions()), f"{self.id} door {door} to open")
        for item in take:
            self.sim.take(door, item)
        for item in put:
            self.sim.put(door, item)
        self.sim.close(door)
        wait(lambda: self.settled() > before, f"the session at {self.id} door {door} to settle")

    def heard_of_loan(self, item: str) -> bool:
        """True once this bookcase has applied another bookcase's loan event for ``item``."""
        return self.view.db.execute("SELECT 1 FROM remote_loans WHERE item_id = ? AND returned_utc IS NULL",
                                    (item,)).fetchone() is not None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.view is not None:
            self.view.close()
        self.sim.stop()


class FleetDemo:
    def __init__(self, workdir: Path, pause_s: float) -> None:
        self.workdir = workdir
        self.pause_s = pause_s
        self.print_lock = threading.Lock()
        self.stage = FleetStage(workdir, [b[0] for b in BOOKCASES], self.print_lock)
        self.members: list[Member] = []

    def say(self, text: str) -> None:
        with self.print_lock:
            print(f"\n\033[1;36m▶ {text}\033[0m" if sys.stdout.isatty() else f"\n>> {text}", flush=True)
        time.sleep(self.pause_s)

    def wait(self, predicate, what: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise SystemExit(f"fleet demo: timed out waiting for {what}")
            time.sleep(0.05)

    def start(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)
        self.stage.start()
        self.say(f"Started Mosquitto on port {self.stage.port}: a password per bookcase (made for this run) and "
                 f"the fleet's ACL, {ACL.relative_to(ROOT)} — each bookcase may publish under its own id only")
        for bookcase_id, name, first in BOOKCASES:
            self.members.append(Member(self.workdir / bookcase_id, bookcase_id, name, first,
                                       self.stage.mqtt_settings(bookcase_id)))
        for m in self.members:
            self.say(f"Starting bookcase {m.id} ({m.cfg.bookcase.name}): simulators in {m.folder / 'sim'}, "
                     f"daemon `kiosk run --config {m.config_path}` (log: {m.folder / 'daemon.log'})")
            m.start()
        for m in self.members:
            self.wait(m.ready, f"{m.id}'s first stocktake")

    def scenario(self) -> bool:
        a, b = self.members
        book = sorted(a.door(1)["items"])[0]
        title = a.sim.world.book(book).title
        key_hint = card_hint(PATRON)
        self.say(f"At {a.id}, a patron scans reader card {key_hint}, opens door 1 and takes 《{title}》 ({book})")
        a.visit(PATRON, 1, self.wait, take=[book])
        self.wait(lambda: b.heard_of_loan(book), f"{b.id} to hear of the loan")
        self.say(f"{b.id} has applied {a.id}'s loan event: the book counts against the patron's limit there too "
                 f"({b.view.open_loan_count(a.view.loans()[0]['patron_key'])} open loan)")
        carry(book, a.sim.world, b.sim.world)
        self.say(f"The patron walks to {b.id} and returns 《{title}》 at door 2")
        b.visit(PATRON, 2, self.wait, put=[book])
        self.wait(lambda: not a.view.loans(open_only=True), f"{a.id} to close the loan")
        loan = a.view.loans()[0]
        self.say(f"{a.id} has applied {b.id}'s return event: its loan of {book} is closed "
                 f"(returned {loan['returned_at'][:19]})")
        self.wait(lambda: a.view.outbox_depth() == 0 and b.view.outbox_depth() == 0, "both outboxes to drain")
        other = sorted(a.door(2)["items"])[0]
        other_title = a.sim.world.book(other).title
        self.wait(lambda: b.view.where_else(other), f"{b.id}'s fleet index")
        hits = b.view.where_else(other_title)
        self.say(f"Where else is 《{other_title}》? {b.id}'s fleet index says: " + "; ".join(
            f"{h['bookcase']} door {h['door']} ({h['item_id']})" for h in hits))
        agree = self.ledgers(book)
        self.say("Both ledgers agree." if agree else "The ledgers DISAGREE — see the daemon logs.")
        return agree

    def ledgers(self, book: str) -> bool:
        a, b = self.members
        a_loan = [r for r in a.view.loans() if r["item_id"] == book]
        b_return = [r for r in b.view.returns() if r["item_id"] == book]
        b_remote = b.view.db.execute("SELECT returned_utc FROM remote_loans WHERE item_id = ?", (book,)).fetchall()
        returned = a_loan[0]["returned_at"] if a_loan else None
        print(f"   {a.id}: loan of {book} {'returned ' + returned[:19] if returned else 'OPEN'}; "
              f"{a.view.outbox_depth()} event(s) unsent")
        print(f"   {b.id}: return of {book} {'recorded' if b_return else 'MISSING'}; its record of {a.id}'s loan "
              f"{'closed' if b_remote and b_remote[0][0] else 'OPEN'}; {b.view.outbox_depth()} event(s) unsent")
        return bool(returned and b_return and b_remote and b_remote[0][0])

    def hands_on(self) -> None:
        a, b = self.members
        print(f"""
The fleet keeps running. From another terminal, for example:
  .venv/bin/kiosk sync status --config {a.config_path}
  .venv/bin/kiosk ledger --config {b.config_path}
  .venv/bin/kiosk intent --config {a.config_path} door 3
  .venv/bin/kiosk-sim ctl {a.folder / 'sim'} scan {PATRON}
  {self.stage.subscribe_hint()}
Press Ctrl-C to stop.""", flush=True)
        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt))
        while all(m.proc.poll() is None for m in self.members):
            time.sleep(0.5)

    def stop(self) -> None:
        for m in self.members:
            m.stop()
        self.stage.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulators.fleet", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, default=ROOT / "var" / "fleet", help="where configs, data and logs go")
    parser.add_argument("--pause", type=float, default=1.5, help="seconds between narrated steps")
    parser.add_argument("--exit", action="store_true", help="stop after the story (for tests); exit 1 if the "
                                                            "ledgers disagree")
    args = parser.parse_args(argv)
    if find_mosquitto() is None:
        print("fleet demo: mosquitto is not installed (apt-get install mosquitto, or scripts/bootstrap.sh)",
              file=sys.stderr)
        return 2
    demo = FleetDemo(args.workdir, args.pause)
    agree = False
    try:
        demo.start()
        agree = demo.scenario()
        if not args.exit:
            demo.hands_on()
    except BrokerError as exc:
        print(f"fleet demo: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nstopping the fleet", flush=True)
        agree = True
    finally:
        demo.stop()
    return 0 if agree else 1
