"""Two `citybook-gateway run` processes on one shared subscription and one PostgreSQL journal, against the simulated
ILS over TCP; one is SIGKILLed mid-stream and restarted (as systemd's Restart= does). Nothing is lost or doubled:
the ILS's own transaction list has each item's loans and returns once each, in order."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from gateway.journal import open_journal
from simulators.ils import IlsServer, Library
from tests.gateway.support import ROOT as TOPICS, T0, Bookcase, Publisher, load, write_gateway_config
from tests.scenarios.harness import wait_for
from tests.sync.fleet import Watcher

REPO = Path(__file__).resolve().parents[2]
CARDS = ["3101120000018", "3101120000026", "3101120000042"]
ITEMS, ROUNDS, KILL_ROUND = 90, 4, 1


class GatewayProcess:
    def __init__(self, config: Path, log: Path) -> None:
        self.config, self.log = config, log
        self.proc: subprocess.Popen | None = None

    def start(self) -> GatewayProcess:
        out = open(self.log, "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "gateway", "run", "--config", str(self.config)],
                                     cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
        out.close()
        return self

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(15)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(15)


def test_one_gateway_killed_mid_stream_loses_and_doubles_nothing(tmp_path, broker, postgres_server):
    url = postgres_server.new_database()
    library = Library.demo(items=ITEMS)
    ils = IlsServer(library, password="sip2-test-password", latency_ms=15, timeout_period=999).start()
    gws: list[GatewayProcess] = []
    pub = watcher = None
    try:
        paths = []
        for n in (1, 2):
            path = write_gateway_config(tmp_path / f"gw{n}", mqtt_port=broker.port, ils_port=ils.port, journal=url,
                                        gateway_id=f"gw-{n}", ils_extra="pool_size = 3", hold_s=120)
            path.write_text(path.read_text().replace("lease_s = 20", "lease_s = 5"))
            paths.append(path)
        export = tmp_path / "patrons.csv"
        export.write_text("card,class,status\n" + "".join(f"{c},adult,active\n" for c in CARDS))
        imported = subprocess.run([sys.executable, "-m", "gateway", "patrons", "import", "--config", str(paths[0]),
                                   str(export)], cwd=REPO, capture_output=True, text=True, timeout=60)
        assert imported.returncode == 0, imported.stderr
        watcher = Watcher(broker.port, (TOPICS + "central/#",))
        watcher.wait_connected()
        gws = [GatewayProcess(p, tmp_path / f"gw{n}.log") for n, p in enumerate(paths, 1)]
        for g in gws:
            g.start()

        def online(name: str) -> bool:
            return any(m.get("online") for m in watcher.on(f"central/gateway/{name}/state"))
        wait_for(lambda: online("gw-1") and online("gw-2"), 30, "both gateway processes online")
        pub = Publisher(broker.port)
        clock = [T0]
        cases = [Bookcase(f"MH-{c}", clock=clock) for c in "ABC"]
        rounds = [[e for n in range(ITEMS)
                   for e in (cases[(n + r) % 3].loan(f"MH2020{n + 1:04d}", CARDS[n % 3], minutes=0.01),
                             cases[(n + r + 1) % 3].ret(f"MH2020{n + 1:04d}", minutes=0.01))]
                  for r in range(ROUNDS)]
        events = [e for round_ in rounds for e in round_]

        def acked() -> set[str]:
            return {r["event"] for c in cases for m in watcher.on(f"central/ack/{c.name}") for r in m["results"]
                    if r["status"] in ("applied", "duplicate")}

        # Round by round, as books travel: a book lent at A and returned at B is lent again only after B has
        # recorded that return (published at once by B, taken by either gateway). Within a round every bookcase
        # publishes at once, so a return may still reach the gateways before its loan. Gateway 1 is SIGKILLed
        # in the middle of round 2, holding events it had taken and not finished.
        for r, round_ in enumerate(rounds):
            for case in cases:
                pub.send(*[e for e in round_ if e["bookcase"] == case.name], wait=False)
            if r == KILL_ROUND:
                before = sum(len(x) for x in rounds[:r])
                wait_for(lambda: len(library.applied) >= before + len(round_) // 8, 60, "the round under way")
                gws[0].kill()
                at_kill = len(library.applied)
                assert at_kill < before + len(round_), "the round was over before the kill"
                wait_for(lambda: len(library.applied) > at_kill + 20, 60, "the other gateway carrying on")
                gws[0].start()                                   # restarted, as systemd would
            wait_for(lambda: acked() >= {e["id"] for e in round_}, 180, f"acks for round {r + 1}'s {len(round_)} events")
    finally:
        if pub is not None:
            pub.close()
        for g in gws:
            g.stop()
        if watcher is not None:
            watcher.close()
        ils.stop()

    for n in range(ITEMS):
        item = f"MH2020{n + 1:04d}"
        kinds = [t.kind for t in library.applied if t.item == item]
        assert kinds == ["checkout", "checkin"] * ROUNDS, (item, kinds)
    assert len(library.applied) == len(events)
    journal = open_journal(load(tmp_path / "gw1" / "gw-1.toml").journal)
    try:
        rows = journal.events()
    finally:
        journal.close()
    # Every event ended applied, or superseded: an event the killed gateway was applying when it died, found by
    # the survivor (after its lease) behind a later event of its item already applied — nothing more was sent.
    odd = [(r["type"], r["item"], r["state"], r.get("reason")) for r in rows
           if r["state"] != "applied" and (r["state"], r.get("reason")) != ("informational", "superseded")]
    assert len(rows) == len(events) and not odd, odd
    logs = "".join(p.read_text(errors="replace") for p in tmp_path.glob("gw*.log"))
    assert "Traceback" not in logs, logs[-3000:]
    assert os.path.getsize(tmp_path / "gw1.log") > 0
