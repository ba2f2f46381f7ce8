"""A whole bookcase for scenario tests: simulators on real ptys, the daemon, and a second view of its database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

from kiosk.app import App
from kiosk.config import Config, load_config
from kiosk.core import events as ev
from kiosk.store.ledger import Store
from simulators.bookcase import SimulatedBookcase

ADULT = "3101120000018"          # adult, limit 15
ADULT2 = "3101120000026"         # adult, 3 loans elsewhere
NEAR_LIMIT = "3101120000034"     # adult, 14 of 15
BLOCKED = "3101120000075"
EXPIRED = "3101120000083"

ROOT = Path(__file__).resolve().parents[2]


def write_config(folder: Path, doors: int = 3, capacity: int = 80, boards: int = 1, extra: str = "",
                 **session: Any) -> Path:
    """A test bookcase config: ``doors`` doors spread over ``boards`` lock boards, ports in ``folder/sim``,
    data in ``folder/data``; ``extra`` is appended TOML (e.g. an [ecard] table)."""
    timing = {"choose_door_timeout_s": 30, "door_open_timeout_s": 20, "door_open_prompt_s": 30,
              "door_open_alarm_s": 90, "receipt_s": 1, "inventory_max_rounds": 6, "rescan_interval_s": 0.5}
    timing.update(session)
    lines = ['library = "minhang"', 'secret = "test-secret-0123456789"', 'data_dir = "data"',
             'intent_socket = "data/intent.sock"',
             '[bookcase]', 'id = "MH-TEST"', 'name = "测试书柜"',
             '[lockboard]', 'port = "sim/lockboard"', "poll_interval_ms = 50",
             '[rfid]', 'port = "sim/rfid"', "timeout_ms = 3000", "retries = 1",
             '[scanner]', 'port = "sim/scanner"',
             '[policy]', "default_limit = 15", '[policy.classes]', "adult = 15", "branch = 10", "child = 10",
             '[session]'] + [f"{k} = {v}" for k, v in timing.items()] + ['[demo]', "seed = true"]
    for n in range(1, doors + 1):
        lines += ["[[doors]]", f"number = {n}", f"board = {(n - 1) * boards // doors}", f"lock = {n}",
                  f"reader = {n}", f"capacity = {capacity}"]
    lines.append(extra)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "bookcase.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def wait_for(predicate: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.02)


class Bookcase:
    """Simulated hardware plus the daemon, either in this process (fast) or as a real subprocess."""

    def __init__(self, folder: Path, *, doors: int = 3, books_per_door: int = 8, air_ms: float = 1.0,
                 miss: float = 0.0, seed: int = 1, capacity: int = 80, boards: int = 1, extra: str = "",
                 **session: Any) -> None:
        self.folder = folder
        self.config_path = write_config(folder, doors, capacity, boards, extra, **session)
        self.cfg: Config = load_config(self.config_path)
        self.sim = SimulatedBookcase(self.cfg, folder / "sim", books_per_door=books_per_door, air_ms=air_ms,
                                     miss=miss, seed=seed, pop_delay_ms=30)
        self.app: App | None = None
        self.thread: threading.Thread | None = None
        self.proc: subprocess.Popen | None = None
        self._view: Store | None = None

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self, daemon: str = "thread") -> "Bookcase":
        self.sim.start()
        if daemon == "thread":
            self.start_thread()
        else:
            self.start_process()
        return self

    def start_thread(self) -> None:
        self.app = App(self.cfg)
        self.thread = threading.Thread(target=self.app.run, kwargs={"install_signal_handlers": False},
                                       name="test-daemon")
        self.thread.start()
        self.wait_ready()

    def stop_thread(self) -> None:
        if self.app is not None:
            self.app.stop()
            self.thread.join(timeout=20)
            assert not self.thread.is_alive(), "daemon thread did not stop"
            self.app = self.thread = None

    def start_process(self) -> None:
        self.log = open(self.folder / "daemon.log", "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "kiosk", "run", "--config", str(self.config_path),
                                      "--headless"],
                                     stdout=self.log, stderr=subprocess.STDOUT, cwd=ROOT,
                                     env={**os.environ, "PYTHONUNBUFFERED": "1"})

    def kill_process(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
            self.proc = None
            self.log.close()

    def stop(self) -> None:
        self.stop_thread()
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill_process()
            else:
                self.log.close()
            self.proc = None
        if self._view is not None:
            self._view.close()
            self._view = None
        self.sim.stop()

    # --- what the daemon has recorded -------------------------------------------------------------

    @property
    def view(self) -> Store:
        if self._view is None:
            self._view = Store(self.cfg.db_path, self.cfg.bookcase.id)
        return self._view

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Until every door has been counted once and no session is open."""
        wait_for(lambda: self.cfg.db_path.exists(), timeout, "the database")
        wait_for(lambda: not self.view.open_sessions() and not self.view.doors_never_counted(
            [d.number for d in self.cfg.doors]), timeout, "the first stocktake")
        wait_for(lambda: self.app is None or self.app.snapshot.state == "idle"
                 and len(self.app.snapshot.doors_in_service) == len(self.cfg.doors), timeout, "doors in service")

    def settled_sessions(self, kind: str = "patron") -> list[dict]:
        return [s for s in self.view.sessions() if s["kind"] == kind and s["state"] == "done"]

    def items(self, door: int) -> list[str]:
        (info,) = [d for d in self.sim.status()["doors"] if d["door"] == door]
        return sorted(info["items"])

    def seen_open(self, door: int) -> bool:
        """The door is open and the daemon has noticed (a patron spends seconds at an open door)."""
        open_sessions = [s for s in self.view.sessions() if s["door"] == door and s["state"] != "done"]
        return self.door_open(door) and bool(open_sessions) and open_sessions[-1]["state"] == "open"

    def door_open(self, door: int) -> bool:
        (info,) = [d for d in self.sim.status()["doors"] if d["door"] == door]
        return info["open"]

    # --- a patron at the bookcase -----------------------------------------------------------------

    def choose(self, door: int) -> None:
        if self.app is not None:
            self.app.post(ev.DoorChosen(door))
        else:
            from kiosk.intents import send
            wait_for(lambda: self.cfg.intent_socket.exists(), 30, "the intent socket")
            send(self.cfg.intent_socket, {"intent": "door", "door": door})

    def session(self, card: str, door: int, take: list[str] = (), put: list[str] = (),
                hold_s: float = 0.0) -> dict:
        """Choose, scan, wait for the door, move books, close, and wait for the session to settle."""
        done_before = len(self.settled_sessions())
        self.choose(door)
        self.sim.scan(card)
        wait_for(lambda: self.seen_open(door), 10, f"door {door} to open")
        for item in take:
            self.sim.take(door, item)
        for item in put:
            self.sim.put(door, item)
        if hold_s:
            time.sleep(hold_s)
        self.sim.close(door)
        wait_for(lambda: len(self.settled_sessions()) > done_before, 30, f"the session at door {door} to settle")
        return self.settled_sessions()[-1]

    def loans(self, session: dict | None = None) -> list[str]:
        rows = self.view.loans()
        return sorted(r["item_id"] for r in rows if session is None or r["session_id"] == session["id"])

    def returns(self, session: dict | None = None) -> list[str]:
        rows = self.view.returns()
        return sorted(r["item_id"] for r in rows if session is None or r["session_id"] == session["id"])

    def events(self, type_: str | None = None) -> list[dict]:
        return [e for e in self.view.outbox() if type_ is None or e["type"] == type_]
