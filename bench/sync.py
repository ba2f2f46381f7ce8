"""Fleet sync benchmarks (issue 4): outbox drain after an outage, and loan-at-A -> visible-at-B latency.

Real Mosquitto on a free port; the daemons run as their own processes (as on a bookcase) against the
simulators in this process. Prints a table and writes JSON to bench/results/sync.json.

  (a) 10,000 events queued while the broker was down; the broker comes back: time until the bookcase has
      every one acknowledged (outbox empty) and an independent subscriber has received every one.
      Goal: under 10 s.
  (b) 500 sessions at bookcase A, each lending one book (and taking back the one before); for each loan,
      the time from A's event (written in the session's transaction) to B applying it (its inbox row).
      Goal: p99 under 300 ms.
  (c) 500 poison messages of every kind on every topic a bookcase reads (a type that is a list, lone
      surrogates, a bookcase id "..", NaN, not JSON, wrong versions and senders, huge ones; see
      tests/sync/test_poison_broker.py) published at a bookcase in one burst, then a valid loan from another
      bookcase: the time from the loan's publication to the bookcase applying it (its inbox row).
      Goal: under 1 s.

``--only c`` (or a, b; several allowed) runs some of them; the JSON then keeps the others' last figures.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.stats import percentile  # noqa: E402
from kiosk.intents import send  # noqa: E402
from kiosk.store.ledger import Store  # noqa: E402
from simulators.fleet.broker import Broker  # noqa: E402
from tests.scenarios.harness import ADULT, wait_for  # noqa: E402
from tests.sync.fleet import FleetCase, Watcher, mqtt_section  # noqa: E402

DRAIN_GOAL_S = 10.0
LATENCY_GOAL_P99_MS = 300.0
POISON_GOAL_S = 1.0


def _ready(case: FleetCase) -> bool:
    return case.cfg.intent_socket.exists() and not case.view.open_sessions() and \
        not case.view.doors_never_counted([d.number for d in case.cfg.doors])


def bench_drain(events: int, inflight: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        broker = Broker(folder / "broker").start()
        # The library's subscriber keeps a session through the outage, as the gateway would.
        watcher = Watcher(broker.port, ("citybook/v1/minhang/bookcase/MH-A/#",), client_id="library",
                          persistent=True)
        watcher.wait_connected()
        broker.stop()
        a = FleetCase(folder / "a", "MH-A", mqtt_section(broker.port, inflight=inflight, reconnect_max_s=0.5),
                      first_item=1)
        store = Store(a.cfg.db_path, a.id)
        store.record_events([{"type": "alarm", "alarm": "bench_backlog", "door": None, "n": i} for i in range(events)])
        store.close()
        try:
            a.sim.start()
            a.start_process()
            wait_for(lambda: _ready(a), 120, "the first stocktake")
            queued = a.depth()
            t0 = time.perf_counter()
            broker.start()
            online = drained = None
            while drained is None or len({e["id"] for e in watcher.events("MH-A")}) < queued:
                now = time.perf_counter()
                if online is None and any(s.get("online") for s in watcher.on("bookcase/MH-A/state")):
                    online = now
                if drained is None and a.depth() == 0:
                    drained = now
                if now - t0 > 120:
                    raise TimeoutError("the outbox did not drain within 120 s")
                time.sleep(0.005)
            received = time.perf_counter()
            print(f"  (a) {queued} events drained", file=sys.stderr)
        finally:
            a.stop()
            watcher.close()
            broker.stop()
    online = online or t0
    return {"events": queued, "inflight_window": inflight, "broker_up_to_online_s": round(online - t0, 3),
            "online_to_all_acknowledged_s": round(drained - online, 3),
            "online_to_all_received_s": round(received - online, 3),
            "broker_up_to_all_received_s": round(received - t0, 3),
            "events_per_s": round(queued / max(drained - online, 1e-9)),
            "goal_s": DRAIN_GOAL_S, "met": received - t0 < DRAIN_GOAL_S}


def bench_latency(sessions: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        broker = Broker(folder / "broker").start()
        a = FleetCase(folder / "a", "MH-A", mqtt_section(broker.port), first_item=1, books_per_door=4, receipt_s=0)
        b = FleetCase(folder / "b", "MH-B", mqtt_section(broker.port), first_item=101, books_per_door=4, receipt_s=0)
        try:
            for case in (a, b):
                case.sim.start()
                case.start_process()
            for case in (a, b):
                wait_for(lambda: _ready(case), 120, "the first stocktake")
            held: str | None = None
            for i in range(sessions):
                door = 1
                wait_for(lambda: _idle(a), 30, "A idle")
                before = len(a.settled_sessions())
                send(a.cfg.intent_socket, {"intent": "door", "door": door})
                a.sim.scan(ADULT)
                wait_for(lambda: a.seen_open(door), 10, "the door to open")
                take = a.items(door)[0]
                a.sim.take(door, take)
                if held:
                    a.sim.put(door, held)
                held = take
                a.sim.close(door)
                wait_for(lambda: len(a.settled_sessions()) > before, 30, "the session to settle")
                print(f"\r  (b) {i + 1}/{sessions} sessions", end="", file=sys.stderr, flush=True)
            print(file=sys.stderr)
            loans = [e for e in a.events("loan")]
            wait_for(lambda: b.view.db.execute("SELECT COUNT(*) FROM remote_loans").fetchone()[0] >= len(loans), 60,
                     "B to apply every loan")
            received = dict(b.view.db.execute("SELECT id, received FROM inbox"))
            latencies = [(datetime.fromisoformat(received[e["id"]]) - datetime.fromisoformat(e["ts"])).total_seconds()
                         * 1000 for e in loans]
        finally:
            for case in (a, b):
                case.stop()
            broker.stop()
    return {"sessions": sessions, "loans": len(latencies), "p50_ms": round(percentile(latencies, 50), 1),
            "p99_ms": round(percentile(latencies, 99), 1), "max_ms": round(max(latencies), 1),
            "goal_p99_ms": LATENCY_GOAL_P99_MS, "met": percentile(latencies, 99) < LATENCY_GOAL_P99_MS}


def bench_poison(count: int) -> dict:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from tests.sync.test_poison_broker import POISON_ANYWHERE, loan
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        broker = Broker(folder / "broker").start()
        b = FleetCase(folder / "b", "MH-B", mqtt_section(broker.port, max_payload_kb=8), first_item=101)
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="poisoner", protocol=mqtt.MQTTv5)
        try:
            b.sim.start()
            b.start_process()
            wait_for(lambda: _ready(b), 120, "the first stocktake")
            state = Watcher(broker.port, ("citybook/v1/minhang/bookcase/MH-B/state",))
            wait_for(lambda: (s := state.last("MH-B/state")) and s["online"], 30, "B online")
            state.close()
            client.connect("127.0.0.1", broker.port)
            client.loop_start()
            wait_for(client.is_connected, 10, "the publisher")
            for i in range(count):
                client.publish(*POISON_ANYWHERE[i % len(POISON_ANYWHERE)], qos=1)
            good = loan()
            sent = datetime.now().astimezone()
            client.publish("citybook/v1/minhang/bookcase/MH-X/event", json.dumps(good), qos=1).wait_for_publish(10)
            row = wait_for(lambda: b.view.db.execute("SELECT received FROM inbox WHERE id = ?",
                                                     (good["id"],)).fetchone(), 60, "the valid loan")
            applied_s = (datetime.fromisoformat(row[0]) - sent).total_seconds()
            refused = wait_for(lambda: (n := _refused(b)) >= count and n, 60, "every poison message refused")
        finally:
            client.disconnect()
            client.loop_stop()
            b.stop()
            broker.stop()
    return {"poison": count, "kinds": len(POISON_ANYWHERE), "refused": refused,
            "published_to_applied_s": round(applied_s, 3), "goal_s": POISON_GOAL_S, "met": applied_s < POISON_GOAL_S}


def _refused(case: FleetCase) -> int:
    """Refused messages, as the bookcase's database has them (saved every few seconds)."""
    return sum(n for k, n in case.counters().items() if k.startswith("bad_"))


def _idle(case: FleetCase) -> bool:
    try:
        snap = send(case.cfg.intent_socket, {"intent": "status"}, timeout_s=2)["snapshot"]
    except OSError:
        return False
    return snap["state"] == "idle" and not case.view.open_sessions()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=10_000, help="events queued for (a)")
    parser.add_argument("--inflight", type=int, default=32, help="the relay's in-flight window for (a)")
    parser.add_argument("--sessions", type=int, default=500, help="sessions for (b)")
    parser.add_argument("--poison", type=int, default=500, help="poison messages before the valid loan in (c)")
    parser.add_argument("--only", action="append", choices=["a", "b", "c"], help="run only these (repeatable)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "sync.json")
    args = parser.parse_args()
    only = set(args.only or "abc")
    try:
        results = json.loads(args.out.read_text()) if only != set("abc") else {}
    except (OSError, ValueError):
        results = {}
    if "a" in only:
        results["drain"] = bench_drain(args.events, args.inflight)
    if "b" in only:
        results["latency"] = bench_latency(args.sessions)
    if "c" in only:
        results["poison"] = bench_poison(args.poison)
    print()
    print("| benchmark | measured | goal | met |")
    print("|---|---|---|---|")
    if "drain" in results:
        _row_drain(results["drain"])
    if "latency" in results:
        _row_latency(results["latency"])
    if "poison" in results:
        poison = results["poison"]
        print(f"| (c) a valid loan behind {poison['poison']} poison messages ({poison.get('kinds', '?')} kinds, "
              f"every topic) -> applied | {poison['published_to_applied_s']} s | < {POISON_GOAL_S:.0f} s | "
              f"{'yes' if poison['met'] else 'NO'} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"\nJSON: {args.out}")
    return 0


def _row_drain(drain: dict) -> None:
    print(f"| (a) drain of {drain['events']} queued events after an outage (window {drain['inflight_window']}) "
          f"| broker back -> every event at a subscriber {drain['broker_up_to_all_received_s']} s (reconnect "
          f"{drain['broker_up_to_online_s']} s, then all acknowledged in {drain['online_to_all_acknowledged_s']} s, "
          f"{drain['events_per_s']} events/s) | < {DRAIN_GOAL_S:.0f} s | {'yes' if drain['met'] else 'NO'} |")


def _row_latency(latency: dict) -> None:
    print(f"| (b) loan at A -> applied at B, {latency['loans']} loans over {latency['sessions']} sessions | "
          f"p50 {latency['p50_ms']} ms, p99 {latency['p99_ms']} ms, max {latency['max_ms']} ms | "
          f"p99 < {LATENCY_GOAL_P99_MS:.0f} ms | {'yes' if latency['met'] else 'NO'} |")


if __name__ == "__main__":
    sys.exit(main())
