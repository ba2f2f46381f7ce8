"""Gateway benchmarks (issue 12): draining a backlog into the ILS, and loan -> ILS -> ack latency.

Real Mosquitto on a free port, real journals (an SQLite file; PostgreSQL from Debian's package for two gateways),
the gateway's own threads. The ILS answers each SIP2 request after a fixed latency, at most one request per
connection at a time (SIP2's rule), as the gateway's pool of ``pool_size`` connections sees it.
``--ils sim`` (the default) is the simulated ILS (simulators/ils) over real TCP, the gateway talking to it with
its own SIP2 pool (gateway.sip2: login, checksums, keep-alive); ``--ils fake`` is the tests' in-memory ILS behind
the SIP2 edge, in this process, to tell the gateway's own cost from SIP2's. Prints a table and writes
bench/results/gateway.json.

  (a) 10,000 events (5,000 loans and their returns, 50 bookcases) queued while the ILS was down; the ILS
      comes back answering each message in 20 ms, pool of 4: time from its return until every event is
      applied, and until every ack is acknowledged by the broker. Goal: above 150 events/s (under 70 s).
  (b) a loan published by a bookcase -> applied at the ILS -> its ack back at the bookcase, 10 ms ILS latency,
      one loan every 40 ms. Goal: p99 under 1 s.
  (c) (b) with two gateways on one shared subscription and one PostgreSQL journal.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.stats import percentile  # noqa: E402
from gateway.patrons import import_export  # noqa: E402
from gateway.service import Gateway  # noqa: E402
from simulators.fleet.broker import Broker  # noqa: E402
from simulators.ils import IlsServer, Library  # noqa: E402
from tests.gateway.fakes import FakeClient, FakeIls  # noqa: E402
from tests.gateway.pg import PgServer  # noqa: E402
from tests.gateway.support import ROOT as TOPIC_ROOT, T0, Bookcase, Publisher, load, write_gateway_config  # noqa
from tests.scenarios.harness import wait_for  # noqa: E402
from tests.sync.fleet import Watcher  # noqa: E402

DRAIN_GOAL_EPS = 150.0
LATENCY_GOAL_P99_MS = 1000.0
CARDS = [f"31011200{n:05d}" for n in range(100)]


class SlowClient:
    """The in-memory ILS's client with the latency of a real one (outside the ILS's lock: requests on other
    connections proceed meanwhile)."""

    def __init__(self, ils: FakeIls, latency_s: float) -> None:
        self.inner, self.latency_s = FakeClient(ils), latency_s

    def __getattr__(self, name: str):
        fn = getattr(self.inner, name)

        def call(*args, **kwargs):
            time.sleep(self.latency_s)
            return fn(*args, **kwargs)
        return call


class SlowPool:
    """``size`` connections, one request each at a time, like gateway.sip2's pool."""

    def __init__(self, ils: FakeIls, size: int, latency_s: float) -> None:
        self.ils, self.latency_s = ils, latency_s
        self.free = threading.Semaphore(size)

    @contextlib.contextmanager
    def connection(self):
        from gateway.sip2 import Sip2Unavailable
        if self.ils.down:
            raise Sip2Unavailable("connection refused")
        with self.free:
            yield SlowClient(self.ils, self.latency_s)

    def close(self) -> None:
        pass


class SimIls:
    """The simulated ILS over TCP with ``items`` and the bench's cards; ``down`` as FakeIls has it."""

    def __init__(self, items: list[str], latency_ms: float, down: bool = False) -> None:
        self.library = Library()
        for n, item in enumerate(items):
            self.library.add_item(item, f"书 {n}")
        for card in CARDS:
            self.library.add_patron(card)
        self.server = IlsServer(self.library, password="sip2-test-password", latency_ms=latency_ms,
                                timeout_period=999).start()
        self.down = down

    @property
    def down(self) -> bool:
        return self.server.faults.down

    @down.setter
    def down(self, value: bool) -> None:
        (self.server.go_down if value else self.server.come_up)()

    @property
    def applied(self) -> list[tuple[str, str, str | None, object]]:
        return [(t.kind, t.item, t.patron, t.date) for t in self.library.applied]

    def stop(self) -> None:
        self.server.stop()


def make_ils(kind: str, items: list[str], latency_ms: float, down: bool = False):
    if kind == "sim":
        return SimIls(items, latency_ms, down)
    return FakeIls(items={i: None for i in items}, down=down)


def start(folder: Path, broker: Broker, ils, latency_s: float, *, count: int = 1,
          journal_url: str | None = None) -> tuple[list[Gateway], list, list]:
    export = folder / "patrons.csv"
    export.write_text("card,class,status\n" + "".join(f"{c},adult,active\n" for c in CARDS))
    gateways, stops, threads = [], [], []
    for n in range(1, count + 1):
        sim = isinstance(ils, SimIls)
        cfg = load(write_gateway_config(folder / f"gw{n}", mqtt_port=broker.port, journal=journal_url,
                                        ils_port=ils.server.port if sim else 6001, gateway_id=f"gw-{n}",
                                        ils_extra="pool_size = 4"))
        g = Gateway(cfg) if sim else Gateway(cfg, pool=SlowPool(ils, cfg.ils.pool_size, latency_s))
        if n == 1:
            import_export(g.journal, export, cfg.patrons.secret, snapshot=None)
        stop = threading.Event()
        t = threading.Thread(target=g.run, args=(stop,), name=f"gateway-{n}")
        t.start()
        gateways.append(g), stops.append(stop), threads.append(t)
    wait_for(lambda: all(g.consumer.online for g in gateways), 20, "the gateways to connect")
    return gateways, stops, threads


def finish(stops: list, threads: list) -> None:
    for s in stops:
        s.set()
    for t in threads:
        t.join(120)


def bench_drain(events: int, latency_ms: float, kind: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        broker = Broker(folder / "broker").start()
        items = events // 2
        ils = make_ils(kind, [f"MH{n:08d}" for n in range(items)], latency_ms, down=True)
        gateways, stops, threads = start(folder, broker, ils, latency_ms / 1000)
        g = gateways[0]
        pub = Publisher(broker.port)
        try:
            clock = [T0]
            cases = [Bookcase(f"MH-{n:04d}", clock=clock) for n in range(50)]
            batch = []
            for n in range(items):
                lender, returner = cases[n % 50], cases[(n * 7 + 1) % 50]
                batch += [lender.loan(f"MH{n:08d}", CARDS[n % len(CARDS)], minutes=0.001),
                          returner.ret(f"MH{n:08d}", minutes=0.001)]
            pub.send(*batch)
            wait_for(lambda: g.journal.backlog()["depth"] == events, 300, "every event in the journal")
            print(f"  (a) {events} events journaled while the ILS is down; the ILS comes back", file=sys.stderr)
            t0 = time.perf_counter()
            ils.down = False
            wait_for(lambda: g.journal.backlog()["depth"] == 0, 600, "the backlog to drain")
            applied = time.perf_counter()
            wait_for(lambda: g.journal.backlog()["acks_due"] == 0, 120, "every ack")
            acked = time.perf_counter()
            per_item: dict[str, list[str]] = {}
            for command, item, _, _ in ils.applied:
                per_item.setdefault(item, []).append(command)
            in_order = len(per_item) == items and all(c == ["checkout", "checkin"] for c in per_item.values())
        finally:
            pub.close()
            finish(stops, threads)
            broker.stop()
            if kind == "sim":
                ils.stop()
    eps = events / (applied - t0)
    return {"events": events, "ils_latency_ms": latency_ms, "pool": 4, "ils_up_to_all_applied_s": round(applied - t0, 2),
            "ils_up_to_all_acked_s": round(acked - t0, 2), "events_per_s": round(eps, 1),
            "each_item_in_order": in_order, "goal_events_per_s": DRAIN_GOAL_EPS, "met": eps > DRAIN_GOAL_EPS}


def bench_latency(loans: int, latency_ms: float, gateways_n: int, pg: PgServer | None, kind: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        broker = Broker(folder / "broker").start()
        ils = make_ils(kind, [f"MH{n:08d}" for n in range(loans)], latency_ms)
        url = pg.new_database() if pg else None
        gateways, stops, threads = start(folder, broker, ils, latency_ms / 1000, count=gateways_n, journal_url=url)
        watcher = Watcher(broker.port, (TOPIC_ROOT + "central/ack/MH-A",))
        watcher.wait_connected()
        pub = Publisher(broker.port)
        sent: dict[str, float] = {}
        try:
            a = Bookcase("MH-A")
            for n in range(loans):
                ev = a.loan(f"MH{n:08d}", CARDS[n % len(CARDS)], minutes=0.01)
                sent[ev["id"]] = time.perf_counter()
                pub.send(ev, wait=False)
                time.sleep(0.04)
            wait_for(lambda: sum(len(m["results"]) for m in watcher.on("central/ack/MH-A")) >= loans, 120,
                     "every ack")
        finally:
            pub.close()
            finish(stops, threads)
            watcher.close()
            broker.stop()
            if kind == "sim":
                ils.stop()
    got: dict[str, float] = {}
    with watcher.lock:
        stamped = list(watcher.stamps)
    for at, payload in stamped:
        for r in json.loads(payload)["results"]:
            got.setdefault(r["event"], at)
    lat = [(got[i] - t) * 1000 for i, t in sent.items() if i in got]
    return {"loans": loans, "gateways": gateways_n, "journal": "postgresql" if pg else "sqlite",
            "ils_latency_ms": latency_ms, "p50_ms": round(percentile(lat, 50), 1),
            "p99_ms": round(percentile(lat, 99), 1), "max_ms": round(max(lat), 1),
            "goal_p99_ms": LATENCY_GOAL_P99_MS, "met": percentile(lat, 99) < LATENCY_GOAL_P99_MS}


def _stamp_watcher() -> None:
    """The watcher notes when each message arrived (perf_counter), for (b) and (c)."""
    original = Watcher._on_message

    def on_message(self, client, userdata, msg):
        original(self, client, userdata, msg)
        with self.lock:
            if not hasattr(self, "stamps"):
                self.stamps = []
            self.stamps.append((time.perf_counter(), bytes(msg.payload)))
    Watcher._on_message = on_message


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=10_000, help="events queued for (a)")
    parser.add_argument("--loans", type=int, default=500, help="loans for (b) and (c)")
    parser.add_argument("--ils", choices=["sim", "fake"], default="sim",
                        help="sim: the simulated ILS over TCP (default); fake: the tests' in-memory one at the SIP2 edge")
    parser.add_argument("--only", choices=["a", "b", "c"], help="run one of them")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "gateway.json")
    args = parser.parse_args()
    _stamp_watcher()
    out: dict = {"ils": args.ils}
    if args.only in (None, "a"):
        out["drain"] = bench_drain(args.events, 20.0, args.ils)
    if args.only in (None, "b"):
        out["latency"] = bench_latency(args.loans, 10.0, 1, None, args.ils)
    if args.only in (None, "c"):
        pg = PgServer().start()
        try:
            out["latency_two"] = bench_latency(args.loans, 10.0, 2, pg, args.ils)
        finally:
            pg.stop()
    print()
    print("ILS: " + ("the simulated ILS over TCP, the gateway's own SIP2 pool" if args.ils == "sim"
                     else "the tests' in-memory ILS at the SIP2 edge"))
    print("| benchmark | measured | goal | met |")
    print("|---|---|---|---|")
    if "drain" in out:
        d = out["drain"]
        print(f"| (a) drain of {d['events']} events queued while the ILS was down, ILS {d['ils_latency_ms']:.0f} ms per "
              f"message, pool of {d['pool']} | {d['events_per_s']} events/s: all applied {d['ils_up_to_all_applied_s']} s "
              f"after the ILS came back, all acked {d['ils_up_to_all_acked_s']} s; each item in order: "
              f"{'yes' if d['each_item_in_order'] else 'NO'} | > {DRAIN_GOAL_EPS:.0f} events/s | "
              f"{'yes' if d['met'] else 'NO'} |")
    for name, label in (("latency", "(b)"), ("latency_two", "(c)")):
        if name in out:
            r = out[name]
            print(f"| {label} loan published -> applied at the ILS -> ack at the bookcase, {r['loans']} loans, "
                  f"{r['gateways']} gateway(s), {r['journal']} journal, ILS {r['ils_latency_ms']:.0f} ms | "
                  f"p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms, max {r['max_ms']} ms | p99 < "
                  f"{LATENCY_GOAL_P99_MS:.0f} ms | {'yes' if r['met'] else 'NO'} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2))
    print(f"\nJSON: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
