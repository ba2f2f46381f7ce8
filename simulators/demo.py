"""`make demo`: a simulated bookcase, the daemon against it, a narrated borrow-and-return, then hands-on.

The simulated world runs in this process (with its control socket, so `kiosk-sim ctl` works from another
terminal); the daemon runs as its own process, exactly as `kiosk run --headless` would on a bookcase.
With --ui the daemon's core and its touch screen run in this process instead, beside a tester panel
(simulators/demo_panel.py): cards, books and doors at a click or a key, no second terminal needed.
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

from kiosk.config import ConfigError, load_config
from kiosk.core.policy import card_hint
from kiosk.demodata import demo_books
from kiosk.intents import send
from kiosk.store.ledger import Store
from simulators.bookcase import SimulatedBookcase

BORROWER = "3101120000018"
RETURNER = "3101120000026"
BORROW_DOOR, RETURN_DOOR = 2, 5


class Demo:
    def __init__(self, config_path: Path, pause_s: float) -> None:
        self.config_path = config_path
        self.cfg = load_config(config_path)
        self.pause_s = pause_s
        self.link_dir = Path(self.cfg.lockboard.port).parent
        self.titles = {b.item_id: b.title for b in demo_books([d.number for d in self.cfg.doors])}
        self.sim = SimulatedBookcase(self.cfg, self.link_dir, control=True, seed=2020)
        self.daemon: subprocess.Popen | None = None
        self.view: Store | None = None
        self.halt = threading.Event()           # --ui: the window closed; stop waiting

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
        # Each demo starts from a fresh bookcase: the simulated world is new, so the old ledger would lie.
        shutil.rmtree(self.cfg.data_dir, ignore_errors=True)
        self.say(f"Starting the simulated bookcase {self.cfg.bookcase.id} ({self.cfg.bookcase.name}): "
                 f"{len(self.cfg.doors)} doors, a lock board, an RFID reader bus and a scanner on ptys in {self.link_dir}")
        self.sim.start()

    def start(self) -> None:
        self.prepare()
        self.say(f"Starting the daemon: kiosk run --headless --config {self.config_path}")
        self.daemon = subprocess.Popen([sys.executable, "-m", "kiosk", "run", "--headless", "--config",
                                        str(self.config_path)])
        self.wait_ready()

    def wait_ready(self) -> None:
        self.wait(lambda: self.cfg.db_path.exists(), "the database")
        self.view = Store(self.cfg.db_path, self.cfg.bookcase.id)
        self.wait(lambda: self.cfg.intent_socket.exists() and not self.view.open_sessions()
                  and not self.view.doors_never_counted([d.number for d in self.cfg.doors]), "the first stocktake")

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
        self.patron(RETURNER, RETURN_DOOR, put=books[:1])
        loans = self.view.loans()
        self.say(f"Ledger: {len(loans)} loans ({sum(1 for r in loans if not r['returned_at'])} still open), "
                 f"{len(self.view.returns())} return, {self.view.outbox_depth()} events queued for the fleet")

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
Faults: kiosk-sim ctl {links} silence rfid | heal rfid | force --door 4 | put --door 1 --junk
Press Ctrl-C to stop.""", flush=True)
        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt))
        while self.daemon.poll() is None:
            time.sleep(0.5)
        print(f"demo: the daemon exited with code {self.daemon.returncode}", file=sys.stderr)

    def stop(self) -> None:
        if self.daemon is not None and self.daemon.poll() is None:
            self.daemon.terminate()
            try:
                self.daemon.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.daemon.kill()
                self.daemon.wait()
        if self.view is not None:
            self.view.close()
        self.sim.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulators.demo", description=__doc__)
    parser.add_argument("--config", type=Path, default=Path("config/demo.toml"))
    parser.add_argument("--pause", type=float, default=1.5, help="seconds between narrated steps")
    parser.add_argument("--exit", action="store_true", help="stop after the scenario (for tests)")
    parser.add_argument("--ui", action="store_true", help="the touch screen and a tester panel in a window")
    parser.add_argument("--size", default="540x960", help="--ui: the screen's size in the window (WIDTHxHEIGHT)")
    parser.add_argument("--play", action="store_true", help="--ui: play the narrated scenario on screen first")
    args = parser.parse_args(argv)
    try:
        demo = Demo(args.config, args.pause)
    except ConfigError as exc:
        print(f"demo: config error: {exc}", file=sys.stderr)
        return 2
    if args.ui:
        return _ui(demo, args)
    try:
        demo.start()
        demo.scenario()
        if not args.exit:
            demo.hands_on()
    except KeyboardInterrupt:
        print("\nstopping the demo bookcase", flush=True)
    finally:
        demo.stop()
    return 0


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
        return run_ui_demo(demo, size, play=args.play, exit_after=args.exit)
    except UIError as exc:
        print(f"demo: the screen cannot start: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nstopping the demo bookcase", flush=True)
        return 0
    finally:
        demo.halt.set()
        demo.stop()


if __name__ == "__main__":
    sys.exit(main())
