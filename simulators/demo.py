"""`make demo`: a simulated bookcase and the daemon, a narrated borrow-and-return, then hands-on.

The simulated world runs in this process (with its control socket, so `kiosk-sim ctl` works from another
terminal). With a display, the daemon's core and its touch screen run in this process, in a window beside a
tester panel (simulators/demo_panel.py): cards, books and doors at a click or a key. Without one (or with
--headless) the daemon runs as its own process, exactly as `kiosk run --headless` would on a bookcase.

When Mosquitto is installed (and unless --offline) the bookcase joins a demo fleet: a broker on a free port
with the fleet's ACL, a second, headless bookcase, and the library's side (simulators/demo_gateway.py: the
gateway and the simulated ILS); the story then returns a book borrowed here at the other bookcase (通借通还),
shows both ledgers agreeing and the library's ILS holding each loan and return once.

The large screen plays the library's signed demo content (simulators/demo_content.py), and the story ends
with the library publishing an update that the bookcase verifies and swaps in.

Everything the demo starts is one child of ``self.children`` (simulators/children.py's Supervisor), added as it
starts: recorded in var/demo/demo.pids for the next demo, tied to this process, stopped last first.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from kiosk.config import ConfigError, load_config, run_copy_mark
from kiosk.content import ContentError
from kiosk.content.manifest import public_key
from kiosk.content.store import ContentStore
from kiosk.core.policy import card_hint
from kiosk.demodata import demo_books
from kiosk.intents import send
from kiosk.store.ledger import Store
from simulators.bookcase import SimulatedBookcase
from simulators.children import PidFile, Supervisor, tied_to_process
from simulators.pcscd import Pcscd, PcscUnavailable
from simulators.demo_content import DemoContent
from simulators.demo_gateway import CONSOLE_USER, DemoLibrary
from simulators.fleet.bookcases import carry, toml_value
from simulators.fleet.broker import BrokerError, find_mosquitto
from simulators.fleet.demo import Member
from simulators.fleet.stage import FleetStage

BORROWER = "3101120000018"
RETURNER = "3101120000026"
BORROW_DOOR, RETURN_DOOR = 2, 5
PEER_ID, PEER_NAME = "MH-0102", "闵行区图书馆城市书柜 · 七宝镇万科城市花园"
PEER_FIRST_ITEM = 601       # past this bookcase's 6 x 60 demo books: no barcode stands in two bookcases
PEER_RETURN_DOOR = 2


class Demo:
    def __init__(self, config_path: Path, pause_s: float, fleet: bool = False) -> None:
        self.config_path = config_path
        self.run_config = config_path           # what the daemon runs: with the fleet, a copy with [mqtt]
        self.cfg = load_config(config_path)
        self.pause_s = pause_s
        self.link_dir = Path(self.cfg.lockboard.port).parent
        self.titles = {b.item_id: b.title for b in demo_books([d.number for d in self.cfg.doors])}
        self.sim = SimulatedBookcase(self.cfg, self.link_dir, control=True, seed=2020)
        self.daemon: subprocess.Popen | None = None
        self.view: Store | None = None
        self.halt = threading.Event()           # --ui: the window closed; stop waiting
        self.fleet_dir = self.cfg.data_dir.parent / "fleet"
        self.stage = FleetStage(self.fleet_dir, [self.cfg.bookcase.id, PEER_ID]) if fleet else None
        self.peer: Member | None = None
        self.library: DemoLibrary | None = None  # with the fleet: the simulated ILS and the gateway
        self.content = DemoContent(self.cfg.data_dir.parent)
        self.content_ready = False
        self.pids = PidFile(self.cfg.data_dir.parent / "demo.pids")
        self.children = Supervisor(self.pids)   # what this demo started, stopped last first by stop()
        self.pcscd: Pcscd | None = None

    def say(self, text: str) -> None:
        print(f"\n\033[1;36m▶ {text}\033[0m" if sys.stdout.isatty() else f"\n>> {text}", flush=True)
        time.sleep(self.pause_s)

    def wait(self, predicate, what: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if self.halt.is_set():
                raise SystemExit(f"demo: stopped while waiting for {what}")
            if self.daemon is not None and self.daemon.poll() is not None:
                raise SystemExit(f"demo: the daemon exited (code {self.daemon.returncode}) while waiting for {what}")
            if time.monotonic() > deadline:
                raise SystemExit(f"demo: timed out waiting for {what}")
            time.sleep(0.05)

    def door(self, number: int) -> dict:
        (info,) = [d for d in self.sim.status()["doors"] if d["door"] == number]
        return info

    def settled(self) -> int:
        return sum(1 for s in self.view.sessions() if s["kind"] == "patron" and s["state"] == "done")

    def prepare(self) -> None:
        """Simulators (and with the fleet: the broker and the other bookcase); ``self.cfg`` is then what the
        daemon runs. Raises BrokerError when Mosquitto will not start."""
        # Each demo starts from a fresh bookcase: the simulated world is new, so the old ledger would lie.
        shutil.rmtree(self.cfg.data_dir, ignore_errors=True)
        self.say(f"Starting the simulated bookcase {self.cfg.bookcase.id} ({self.cfg.bookcase.name}): "
                 f"{len(self.cfg.doors)} doors, a lock board, an RFID reader bus and a scanner on ptys in {self.link_dir}")
        self.sim.start()
        self.children.add("the simulated bookcase", self.sim.stop)
        self._ensure_pcscd()
        extra = self._prepare_content()
        if self.stage is not None:
            extra += self._start_broker()
        run_config = self.config_path.with_name(f".{self.config_path.stem}.run.toml")
        run_config.write_text(
            f"{run_copy_mark(os.getpid())} for one run: {self.config_path.name} with the demo's content server"
            f"{' and broker' if self.stage else ''}.\n" + self.config_path.read_text(encoding="utf-8") + extra,
            encoding="utf-8")
        self.run_config = run_config
        self.children.add("the run config", lambda: run_config.unlink(missing_ok=True))
        self.cfg = load_config(self.run_config)
        if self.stage is not None:
            self._join_fleet()
            self._start_library()

    def _ensure_pcscd(self) -> None:
        """The contactless card path needs pcscd with the vpcd driver: use a running one, else start our own
        (stopped with the demo)."""
        if not self.cfg.pcsc.enabled:
            return
        try:
            self.pcscd = Pcscd(self.cfg.data_dir.parent, slot=0, auto_exit=False, **tied_to_process())
            reader = self.pcscd.ensure()
        except PcscUnavailable as exc:
            if self.pcscd is not None:
                self.pcscd.stop()
            self.pcscd = None
            print(f"demo: no contactless card reader ({exc}); library cards still work by the scanner",
                  flush=True)
            return
        pcscd = self.pcscd
        self.children.add("pcscd", pcscd.stop, lambda: (pcscd.proc,))      # stops only a pcscd it started
        self.say(f"pcscd lists the virtual card reader {reader!r}"
                 + (" (started for the demo)" if self.pcscd.owned else " (the one already running)"))

    def _prepare_content(self) -> str:
        self.say(f"Drawing the large screen's demo content with ffmpeg ({self.content.folder}), signing it with a "
                 "demo key and serving it over HTTP, as the library would")
        self.children.add("the content server", self.content.stop)
        try:
            section = self.content.prepare()
        except ContentError as exc:
            print(f"demo: no screen content ({exc}); the screen shows its built-in cards", flush=True)
            return ""
        self.content_ready = True
        self.say(f"Content version {self.content.version}: {self.content.items()} items, served at "
                 f"{self.content.server.url}")
        return section

    def _start_broker(self) -> str:
        shutil.rmtree(self.fleet_dir, ignore_errors=True)
        self.children.add("the broker", self.stage.stop, lambda: (self.stage.broker.proc,))
        self.stage.start()
        self.say(f"Starting Mosquitto on port {self.stage.port} with the fleet's ACL "
                 "(config/mosquitto/citybook.acl): each bookcase may publish under its own id only")
        mqtt = self.stage.mqtt_settings(self.cfg.bookcase.id)
        return "\n[mqtt]\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in mqtt.items())

    def _join_fleet(self) -> None:
        # One library, one patron-key secret: a loan here counts against the same patron there.
        self.peer = Member(self.fleet_dir / PEER_ID, PEER_ID, PEER_NAME, PEER_FIRST_ITEM,
                           self.stage.mqtt_settings(PEER_ID), secret=self.cfg.secret)
        self.say(f"Starting a second bookcase of the fleet, {PEER_ID} ({PEER_NAME}), headless "
                 f"(log: {self.peer.folder / 'daemon.log'})")
        peer = self.peer
        self.children.add(PEER_ID, peer.stop, lambda: (peer.proc,))
        peer.start()
        self.children.record()

    def _start_library(self) -> None:
        self.library = DemoLibrary(self.config_path.parent, self.cfg.data_dir.parent, self.stage, self.cfg.secret)
        self.children.add("the gateway and the simulated ILS", self.library.stop)
        self.library.start()
        self.say(f"Starting the library's side: the simulated ILS (SIP2 on 127.0.0.1:{self.library.ils_port}; "
                 f"kiosk-sim ctl {self.library.ils_dir} status) and the gateway that applies every loan and return "
                 f"to it ({self.library.run_config.name}, journal in {self.library.var_dir / 'gateway'})")
        self.wait(lambda: self.library.online, "the gateway to reach the broker")
        self.say(f"The operators' console: {self.library.console_url}  (login: {CONSOLE_USER}, password: "
                 f"{self.library.console_password})")

    def start(self) -> None:
        self.prepare()
        self.say(f"Starting the daemon: kiosk run --headless --config {self.run_config}")
        self.daemon = self.children.popen("the daemon", [sys.executable, "-m", "kiosk", "run", "--headless",
                                                         "--config", str(self.run_config)])
        self.wait_ready()

    def record_children(self) -> None:
        """The pid file the next demo reads (processes that the kernel also stops when this one ends); each child
        is recorded as it is added, so this only catches a process a child restarted."""
        self.children.record()

    def clear_leftovers(self, clean: bool) -> bool:
        """A demo still running, or what a killed one left: stop it with ``clean`` (or when asked, on a
        terminal); else say how. True when the way is clear."""
        found = self.pids.running()
        if not found.anything:
            return True
        what = (f"another demo is running (pid {found.demo})" if found.demo else
                f"a demo that was killed left {len(found.children)} process(es) behind")
        names = "; ".join(f"{pid} {cmd[:70]}" for pid, cmd in found.children)
        print(f"demo: {what}" + (f": {names}" if names else ""), flush=True)
        if not clean and sys.stdin.isatty():
            try:
                clean = input("demo: stop them now? [y/N] ").strip().lower() in ("y", "yes")
            except (EOFError, OSError):         # Ctrl-D, or the terminal went away: no
                print(flush=True)
        if not clean:
            print("demo: run again with --clean to stop them (they hold the simulated devices' ptys)",
                  file=sys.stderr)
            return False
        self.pids.stop(found)
        print("demo: stopped", flush=True)
        return True

    def wait_ready(self) -> None:
        self.wait(lambda: self.cfg.db_path.exists(), "the database")
        self.view = Store(self.cfg.db_path, self.cfg.bookcase.id)
        self.children.add("the story's view of the ledger", self.view.close)
        self.wait(lambda: self.cfg.intent_socket.exists() and not self.view.open_sessions()
                  and not self.view.doors_never_counted([d.number for d in self.cfg.doors]), "the first stocktake")
        if self.peer is not None:
            self.wait(self.peer.ready, f"{PEER_ID}'s first stocktake")

    def patron(self, card: str, door: int, take: list[str] = (), put: list[str] = ()) -> None:
        before = self.settled()
        self.say(f"A patron picks door {door} on the screen and scans reader card {card_hint(card)}")
        send(self.cfg.intent_socket, {"intent": "door", "door": door})
        self.sim.scan(card)
        self.wait(lambda: self.door(door)["open"] and any(
            s["door"] == door and s["state"] == "open" for s in self.view.sessions()), f"door {door} to open")
        for item in take:
            self.say(f"The patron takes 《{self.titles.get(item, item)}》 ({item}) from door {door}")
            self.sim.take(door, item)
        for item in put:
            self.say(f"The patron puts 《{self.titles.get(item, item)}》 ({item}) into door {door}")
            self.sim.put(door, item)
        self.say(f"The patron closes door {door}; the bookcase takes an inventory and prints the receipt")
        self.sim.close(door)
        self.wait(lambda: self.settled() > before, f"the session at door {door} to settle")
        time.sleep(0.3)

    def scenario(self) -> None:
        books = sorted(self.door(BORROW_DOOR)["items"])[:2]
        self.patron(BORROWER, BORROW_DOOR, take=books)
        if self.peer is not None:
            self.return_at_peer(books[0])
            self.patron(RETURNER, RETURN_DOOR, put=books[1:])
            self.wait(lambda: self.view.outbox_depth() == 0, "the outbox to drain to the broker")
        else:
            self.patron(RETURNER, RETURN_DOOR, put=books[:1])
        loans = self.view.loans()
        self.say(f"Ledger of {self.cfg.bookcase.id}: {len(loans)} loans "
                 f"({sum(1 for r in loans if not r['returned_at'])} still open), {len(self.view.returns())} return "
                 f"here, {self.view.outbox_depth()} events waiting for the fleet")
        if self.library is not None:
            self.show_ils(books)
        if self.peer is not None:
            self.find_elsewhere()
        if self.content_ready:
            self.publish_content()

    def publish_content(self) -> None:
        """The library signs a new-book notice into its content; the bookcase verifies it and swaps it in."""
        store = ContentStore(self.cfg.content_dir, tuple(public_key(k) for k in self.cfg.content.public_keys))
        self.wait(lambda: store.current_version() == self.content.version, "the first screen content")
        version = self.content.publish_notice(self.cfg.content.timezone)
        if self.stage is not None:
            how = f"announced on the broker ({self.stage.announce(self.content.server.url, version, self.cfg.library)})"
        else:
            how = f"the bookcase asks the library's server every {self.cfg.content.check_interval_s} s"
        self.say(f"The library publishes screen content version {version}: a new-book notice shown after every "
                 f"3 items, {how}")
        self.wait(lambda: store.current_version() == version, f"screen content version {version}", timeout=90)
        self.say(f"{self.cfg.bookcase.id} checked the signature and every file's SHA-256 and swapped version "
                 f"{version} in: the notice is on the screen")

    def return_at_peer(self, item: str) -> None:
        """The borrower walks to the other bookcase and returns ``item`` there; this bookcase hears of it."""
        peer, here, title = self.peer, self.cfg.bookcase.id, self.titles.get(item, item)
        self.wait(lambda: peer.heard_of_loan(item), f"{PEER_ID} to hear of the loan of {item}")
        self.say(f"{PEER_ID} has applied {here}'s loan event from the broker: 《{title}》 counts against the "
                 "patron's limit there too")
        carry(item, self.sim.world, peer.sim.world)
        self.say(f"The patron takes 《{title}》 to {PEER_ID} ({PEER_NAME}) and returns it at door {PEER_RETURN_DOOR}")
        peer.visit(BORROWER, PEER_RETURN_DOOR, self.wait, put=[item])
        self.wait(lambda: any(r["item_id"] == item and r["returned_at"] for r in self.view.loans()),
                  f"{here} to hear of the return of {item}")
        self.say(f"{here} has applied {PEER_ID}'s return event: its loan of {item} is closed "
                 "(borrow anywhere, return anywhere)")

    def show_ils(self, books: list[str]) -> None:
        """The library's ILS has each loan and each return once, with the due date it set itself."""
        lib = self.library
        self.wait(lambda: all([t["kind"] for t in lib.transactions(b)] == ["checkout", "checkin"] for b in books),
                  "the gateway to apply the loans and returns to the ILS")
        for item in books:
            out, back = lib.transactions(item)
            self.say(f"The library's ILS, over SIP2 through the gateway: 《{self.titles.get(item, item)}》 ({item}) "
                     f"lent to card {card_hint(out['patron'])}, due {out['due'][:10]} (the ILS's own date), "
                     f"returned {back['date'][:16].replace('T', ' ')}")
        self.say(f"`kiosk-sim ctl {lib.ils_dir} transactions` lists all {len(lib.ils.library.applied)} transactions "
                 "the ILS applied, each once")
        try:
            listed = lib.console_bookcases()
        except OSError as exc:
            self.say(f"The operators' console did not answer at {lib.console_url}: {exc}")
        else:
            self.say(f"The operators' console at {lib.console_url} lists the fleet: {', '.join(listed) or 'nothing'} "
                     f"(log in as {CONSOLE_USER}, password {lib.console_password})")

    def find_elsewhere(self) -> None:
        item = sorted(self.peer.door(1)["items"])[0]
        title = self.peer.sim.world.book(item).title
        self.wait(lambda: self.view.where_else(item), f"{PEER_ID}'s holdings to reach {self.cfg.bookcase.id}")
        hits = self.view.where_else(title)
        self.say(f"Find a book at {self.cfg.bookcase.id}: where else is 《{title}》? " + "; ".join(
            f"{h['bookcase']} door {h['door']} ({h['item_id']})" for h in hits))

    def hands_on(self) -> None:
        cfg, links = self.config_path, self.link_dir
        print(f"""
The bookcase keeps running. Drive it from another terminal, for example:
  .venv/bin/kiosk intent --config {cfg} door 3
  .venv/bin/kiosk-sim ctl {links} scan 3101120000042
  .venv/bin/kiosk-sim ctl {links} status
  .venv/bin/kiosk-sim ctl {links} take --door 3 --item {sorted(self.door(3)['items'])[0]}
  .venv/bin/kiosk-sim ctl {links} close --door 3
  .venv/bin/kiosk ledger --config {cfg}
Faults: kiosk-sim ctl {links} silence rfid | heal rfid | force --door 4 | put --door 1 --junk{self._fleet_hint()}
Press Ctrl-C to stop.""", flush=True)
        while self.daemon.poll() is None:
            time.sleep(0.5)
        print(f"demo: the daemon exited with code {self.daemon.returncode}", file=sys.stderr)

    def _fleet_hint(self) -> str:
        if self.peer is None:
            return ""
        return (f"\nThe fleet: .venv/bin/kiosk sync status --config {self.config_path}\n"
                f"  .venv/bin/kiosk ledger --config {self.peer.config_path}      ({PEER_ID})\n"
                + (f"  .venv/bin/kiosk-sim ctl {self.library.ils_dir} status      (the library's ILS; faults: down, "
                   f"drop, slow 800, refuse --n 1)\n"
                   f"  {self.library.console_url}      (the operators' console; login {CONSOLE_USER}, password "
                   f"{self.library.console_password})\n" if self.library else "") +
                f"  {self.stage.subscribe_hint()}")

    def stop(self) -> None:
        """Stop what the demo started, last first (the daemon before the broker, the simulators last)."""
        self.children.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulators.demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=Path("config/demo.toml"))
    parser.add_argument("--pause", type=float, default=1.5, help="seconds between narrated steps")
    parser.add_argument("--exit", action="store_true", help="stop after the story (for tests)")
    screen = parser.add_mutually_exclusive_group()
    screen.add_argument("--ui", action="store_true", help="the touch screen and a tester panel in a window "
                        "(the default when $DISPLAY, $WAYLAND_DISPLAY or $SDL_VIDEODRIVER is set)")
    screen.add_argument("--headless", action="store_true", help="no window: the daemon as its own process, "
                        "narrated in this terminal (the default without a display)")
    parser.add_argument("--offline", action="store_true", help="one bookcase and no broker (the default when "
                        "Mosquitto is not installed)")
    parser.add_argument("--no-story", action="store_true", help="skip the narrated story: the bookcase is yours "
                        "at once")
    parser.add_argument("--size", default="540x960", help="with the window: the kiosk screen's size in it "
                        "(WIDTHxHEIGHT; the bookcase's own is 1080x1920)")
    parser.add_argument("--clean", action="store_true", help="stop a demo still running, or the processes a "
                        "killed one left behind, without asking")
    args = parser.parse_args(argv)
    fleet = not args.offline and find_mosquitto() is not None
    if not args.offline and not fleet:
        print("demo: Mosquitto is not installed, so the bookcase runs alone and offline (apt-get install mosquitto "
              "mosquitto-clients, or scripts/bootstrap.sh as root, for the two-bookcase fleet)", flush=True)
    ui = args.ui or (not args.headless and _has_display())
    if not ui and not args.headless:
        print("demo: no display ($DISPLAY and $WAYLAND_DISPLAY are unset), so no window: the bookcase runs headless "
              "(`xvfb-run make demo`, or --ui under a desktop, for the touch screen)", flush=True)
    try:
        demo = Demo(args.config, args.pause, fleet=fleet)
    except ConfigError as exc:
        print(f"demo: config error: {exc}", file=sys.stderr)
        return 2
    if not demo.clear_leftovers(args.clean):
        return 2
    # SIGTERM ends the demo as Ctrl-C does, through demo.stop(); the children die with it even on SIGKILL.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt))
    if ui:
        return _ui(demo, args)
    try:
        demo.start()
        if not args.no_story:
            demo.scenario()
        if not args.exit:
            demo.hands_on()
    except BrokerError as exc:
        print(f"demo: {exc} (--offline runs the bookcase without the fleet)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nstopping the demo bookcase", flush=True)
    finally:
        demo.stop()
    return 0


def _has_display() -> bool:
    return any(os.environ.get(name) for name in ("DISPLAY", "WAYLAND_DISPLAY", "SDL_VIDEODRIVER"))


def _ui(demo: Demo, args: argparse.Namespace) -> int:
    try:
        size = tuple(int(n) for n in args.size.lower().split("x"))
        if len(size) != 2 or min(size) < 320:
            raise ValueError
    except ValueError:
        print(f"demo: --size {args.size!r} is not WIDTHxHEIGHT (at least 320 each)", file=sys.stderr)
        return 2
    import logging
    logging.basicConfig(level=logging.INFO, stream=sys.stdout, datefmt="%H:%M:%S",
                        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    from kiosk.ui import UIError
    from simulators.demo_panel import run_ui_demo
    try:
        return run_ui_demo(demo, size, play=not args.no_story, exit_after=args.exit)
    except UIError as exc:
        print(f"demo: the screen cannot start: {exc} (--headless runs the demo without it)", file=sys.stderr)
        return 1
    except BrokerError as exc:
        print(f"demo: {exc} (--offline runs the bookcase without the fleet)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nstopping the demo bookcase", flush=True)
        return 0
    finally:
        demo.halt.set()
        demo.stop()


if __name__ == "__main__":
    sys.exit(main())
