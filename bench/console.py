"""Operators' console benchmark (issue 13): a fleet of 500 bookcases under a console, measured.

Real Mosquitto on a free port; the console runs as its own process (`citybook-gateway console`) over an SQLite
journal that already holds a month of the fleet's circulation; this process plays the fleet: every bookcase
publishes its retained state every 30 s (staggered), and 10 sessions a second (each a loan or return and its
session_closed) are journaled across the fleet as the gateway would journal them. Debian's headless Chromium
keeps the fleet page open; a MutationObserver in the page notes when a bookcase's row turns offline.

  (a) page load: GET / (the fleet table of 500 bookcases), logged in, every second. Goal: p95 under 300 ms.
  (b) a state change (a bookcase going offline, its retained state) -> visible in the browser's table.
      Goal: p95 under 2 s.
  (c) the console process's CPU over the run. Goal: under 20 % of one core.

Prints a table and writes bench/results/console.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import paho.mqtt.client as mqtt  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402

from bench.stats import percentile  # noqa: E402
from gateway.console.auth import hash_password  # noqa: E402
from gateway.journal import Incoming, open_journal  # noqa: E402
from gateway.config import load_gateway_config  # noqa: E402
from kiosk.sync import schema  # noqa: E402
from simulators.console_sample import ROOT as TOPIC_ROOT, TZ, EventMaker, bookcase_id, fill_journal, state  # noqa: E402
from simulators.fleet.broker import Broker  # noqa: E402
from tests.gateway.browser import chromium  # noqa: E402
from tests.gateway.console_support import free_port  # noqa: E402
from tests.gateway.support import write_gateway_config  # noqa: E402

PAGE_GOAL_MS, VISIBLE_GOAL_S, CPU_GOAL = 300.0, 2.0, 0.20
USER, PASSWORD = "bench", "bench-password-2026"
WATCH = """
window.__offline = {};
new MutationObserver(() => {
  for (const row of document.querySelectorAll('tr.offline[data-bookcase]')) {
    const b = row.dataset.bookcase;
    if (!(b in window.__offline)) window.__offline[b] = Date.now();
  }
}).observe(document.getElementById('fleet'), {childList: true, subtree: true});
"""


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Fleet:
    """The bookcases' side: retained states every 30 s, and sessions journaled at ``rate`` a second."""

    def __init__(self, port: int, journal, bookcases: int, rate: float) -> None:
        self.bookcases, self.rate, self.journal = bookcases, rate, journal
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-fleet", protocol=mqtt.MQTTv5)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.offline: dict[str, float] = {}
        self.stop = threading.Event()
        self.makers = [EventMaker(bookcase_id(n)) for n in range(1, bookcases + 1)]
        for maker in self.makers:             # each bookcase's seq continues past the month of sample events
            maker.seq = 100_000

    def publish(self, n: int, online: bool = True) -> None:
        msg = state(bookcase_id(n), n, online=online, reason=None if online else "connection lost")
        self.client.publish(f"{TOPIC_ROOT}bookcase/{bookcase_id(n)}/state", schema.encode(msg), qos=1, retain=True)

    def states(self, period_s: float) -> None:
        n = 0
        while not self.stop.wait(period_s / self.bookcases):
            n = n % self.bookcases + 1
            if bookcase_id(n) not in self.offline:
                self.publish(n)

    def sessions(self) -> None:
        rng = random.Random(7)
        while not self.stop.wait(1 / self.rate):
            maker = rng.choice(self.makers)
            at, session = datetime.now(TZ), f"{rng.getrandbits(128):032x}"
            session = f"{session[:8]}-{session[8:12]}-4{session[13:16]}-8{session[17:20]}-{session[20:]}"
            kind = rng.choice(["loan", "return"])
            fields = {"session": session, "door": rng.randint(1, 6), "item": f"MH2020{rng.randint(0, 99999):05d}"}
            if kind == "loan":
                fields |= {"patron": f"{rng.getrandbits(128):032x}", "due": "2027-01-04"}
            events = [maker.event(kind, at, **fields),
                      maker.event("session_closed", at, session=session, door=fields["door"], kind="patron",
                                  loans=int(kind == "loan"), returns=int(kind == "return"), missing=0)]
            self.journal.record([Incoming(f"{TOPIC_ROOT}bookcase/{e['bookcase']}/event", e["bookcase"],
                                          schema.encode(e), event=e) for e in events], "bench", 60.0)

    def go_offline(self, n: int) -> None:
        self.offline[bookcase_id(n)] = time.time()
        self.publish(n, online=False)


def run(bookcases: int, seconds: float, rate: float) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        broker = Broker(folder / "broker").start()
        port = free_port()
        config = write_gateway_config(folder / "gw", mqtt_port=broker.port,
                                      extra=f'[console]\nlisten = "127.0.0.1:{port}"\nsecure_cookies = false\n')
        cfg = load_gateway_config(config)
        journal = open_journal(cfg.journal)
        print(f"  a month of circulation for {bookcases} bookcases into the journal…", file=sys.stderr)
        written = fill_journal(journal, bookcases, days=30, per_day=12)
        journal.user_set(USER, hash_password(PASSWORD), "operator")
        fleet = Fleet(broker.port, journal, bookcases, rate)
        for n in range(1, bookcases + 1):
            fleet.publish(n)
        log = open(folder / "console.log", "w")
        proc = subprocess.Popen([sys.executable, "-m", "gateway", "console", "--config", str(config)], cwd=ROOT,
                                stdout=log, stderr=subprocess.STDOUT)
        browser = None
        threads = [threading.Thread(target=fleet.states, args=(30.0,), daemon=True),
                   threading.Thread(target=fleet.sessions, daemon=True)]
        try:
            base = f"http://127.0.0.1:{port}"
            client = httpx.Client(base_url=base, timeout=30)
            deadline = time.monotonic() + 60
            while True:
                try:
                    if client.post("/login", data={"user": USER, "password": PASSWORD}).status_code == 303:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit(f"the console did not start: {(folder / 'console.log').read_text()[-2000:]}")
                time.sleep(0.2)
            browser = chromium(folder / "profile")
            browser.get(base + "/login")
            browser.find_element(By.NAME, "user").send_keys(USER)
            browser.find_element(By.NAME, "password").send_keys(PASSWORD)
            browser.find_element(By.CSS_SELECTOR, "form.login button").click()
            time.sleep(2)
            while len(client.get("/fleet/table").text.split("data-bookcase=")) <= bookcases:
                time.sleep(0.5)                      # every bookcase's retained state has reached the console
            browser.execute_script(WATCH)
            for t in threads:
                t.start()
            cpu0, wall0 = _cpu_s(proc.pid), time.monotonic()
            pages: list[float] = []
            rng = random.Random(11)
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                t0 = time.perf_counter()
                answer = client.get("/")
                pages.append((time.perf_counter() - t0) * 1000)
                assert answer.status_code == 200
                fleet.go_offline(rng.randint(1, bookcases))
                time.sleep(1.0)
                print(f"\r  {int(end - time.monotonic())} s left  ", end="", file=sys.stderr, flush=True)
            cpu = (_cpu_s(proc.pid) - cpu0) / (time.monotonic() - wall0)
            time.sleep(3)
            seen = browser.execute_script("return window.__offline")
            print(file=sys.stderr)
        finally:
            fleet.stop.set()
            for t in threads:
                if t.is_alive():
                    t.join(5)
            if browser is not None:
                browser.quit()
            proc.terminate()
            proc.wait(20)
            log.close()
            fleet.client.disconnect()
            fleet.client.loop_stop()
            journal.close()
            broker.stop()
    visible = [max(0.0, seen[b] / 1000 - at) for b, at in fleet.offline.items() if b in seen]
    missed = len(fleet.offline) - len(visible)
    return {"bookcases": bookcases, "seconds": seconds, "sessions_per_s": rate, "journal_events": written,
            "page_p50_ms": round(percentile(pages, 50), 1), "page_p95_ms": round(percentile(pages, 95), 1),
            "changes": len(fleet.offline), "changes_not_seen": missed,
            "visible_p50_s": round(percentile(visible, 50), 3) if visible else None,
            "visible_p95_s": round(percentile(visible, 95), 3) if visible else None,
            "console_cpu": round(cpu, 3),
            "met": {"page": percentile(pages, 95) < PAGE_GOAL_MS,
                    "visible": bool(visible) and not missed and percentile(visible, 95) < VISIBLE_GOAL_S,
                    "cpu": cpu < CPU_GOAL}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bookcases", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--rate", type=float, default=10.0, help="sessions per second across the fleet")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "console.json")
    args = parser.parse_args()
    r = run(args.bookcases, args.seconds, args.rate)
    yes = {True: "yes", False: "NO"}
    print()
    print("| benchmark | measured | goal | met |")
    print("|---|---|---|---|")
    print(f"| (a) fleet page load, {r['bookcases']} bookcases, {r['sessions_per_s']:g} sessions/s | p50 "
          f"{r['page_p50_ms']} ms, p95 {r['page_p95_ms']} ms | p95 < {PAGE_GOAL_MS:.0f} ms | {yes[r['met']['page']]} |")
    print(f"| (b) a bookcase goes offline -> visible in the browser, {r['changes']} changes | p50 "
          f"{r['visible_p50_s']} s, p95 {r['visible_p95_s']} s ({r['changes_not_seen']} not seen) | "
          f"p95 < {VISIBLE_GOAL_S:g} s | {yes[r['met']['visible']]} |")
    print(f"| (c) console process CPU | {r['console_cpu'] * 100:.1f} % of one core | < {CPU_GOAL * 100:.0f} % | "
          f"{yes[r['met']['cpu']]} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(r, indent=2))
    print(f"\nJSON: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
