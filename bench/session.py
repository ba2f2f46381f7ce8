"""Session benchmarks (issue 2): card scan -> unlock frame, and door closed -> session committed.

The daemon runs as its own process (as on a bookcase) against the simulators in this process, over real
pseudo-terminals. Prints a table and writes JSON to bench/results/session.json.

  (a) card scan -> unlock frame on the lock-board pty, p50/p99 over N sessions.  Goal: p99 < 50 ms.
  (b) door closed -> session committed with 50, 150 and 300 books in the compartment, against the
      simulator's own reader time (per-tag air time + byte time at 38400 baud).  Goal: software overhead < 5 %.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.stats import percentile  # noqa: E402
from kiosk.drivers.scanner.codec import encode_line  # noqa: E402
from kiosk.intents import send  # noqa: E402
from simulators.bookcase import SimulatedBookcase  # noqa: E402
from tests.scenarios.harness import ADULT, Bookcase, wait_for  # noqa: E402

UNLOCK_GOAL_P99_MS = 50.0
OVERHEAD_GOAL_PCT = 5.0


class Unlocks:
    """Timestamps the moment the simulated lock board receives an unlock frame."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.cond = threading.Condition()

    def on_event(self, message: str) -> None:
        if " unlocked (board " in message:
            with self.cond:
                self.times.append(time.perf_counter())
                self.cond.notify_all()

    def wait(self, count: int, timeout: float = 10.0) -> float:
        with self.cond:
            if not self.cond.wait_for(lambda: len(self.times) >= count, timeout):
                raise TimeoutError("no unlock frame arrived")
            return self.times[count - 1]


def _idle(case: Bookcase) -> bool:
    try:
        snap = send(case.cfg.intent_socket, {"intent": "status"}, timeout_s=2)["snapshot"]
    except OSError:
        return False
    return snap["state"] == "idle" and not case.view.open_sessions()


def _case(folder: Path, books: int, air_ms: float, events=None) -> Bookcase:
    case = Bookcase(folder, doors=2, books_per_door=books, air_ms=air_ms, receipt_s=0, capacity=max(80, books))
    if events is not None:
        case.sim = SimulatedBookcase(case.cfg, folder / "sim", books_per_door=books, air_ms=air_ms, seed=1,
                                     pop_delay_ms=30, on_event=events)
    case.sim.start()
    case.start_process()
    wait_for(lambda: case.cfg.intent_socket.exists() and not case.view.open_sessions() and
             not case.view.doors_never_counted([1, 2]), 120, "the first stocktake")
    return case


def bench_unlock(sessions: int) -> dict:
    unlocks = Unlocks()
    with tempfile.TemporaryDirectory() as tmp:
        case = _case(Path(tmp), 20, 2.0, unlocks.on_event)
        latencies = []
        try:
            for i in range(sessions):
                wait_for(lambda: _idle(case), 30, "idle")
                send(case.cfg.intent_socket, {"intent": "door", "door": 1 + i % 2})
                start = time.perf_counter()
                case.sim.scan(ADULT)
                latencies.append((unlocks.wait(i + 1) - start) * 1000)
                wait_for(lambda: case.seen_open(1 + i % 2), 10, "door open")
                case.sim.close(1 + i % 2)
                print(f"\r  (a) {i + 1}/{sessions} sessions", end="", file=sys.stderr, flush=True)
        finally:
            print(file=sys.stderr)
            case.stop()
    # The scanner's own wire time (the line at its baud rate, 8N1) is hardware, not software.
    wire_ms = len(encode_line(ADULT)) * 10 / case.cfg.scanner.baudrate * 1000
    software = [v - wire_ms for v in latencies]
    return {"sessions": sessions, "p50_ms": round(percentile(latencies, 50), 2),
            "scanner_wire_ms": round(wire_ms, 2), "software_p50_ms": round(percentile(software, 50), 2),
            "software_p99_ms": round(percentile(software, 99), 2),
            "p99_ms": round(percentile(latencies, 99), 2), "max_ms": round(max(latencies), 2),
            "goal_p99_ms": UNLOCK_GOAL_P99_MS, "met": percentile(latencies, 99) < UNLOCK_GOAL_P99_MS}


def bench_close(books: int, air_ms: float, repeats: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        case = _case(Path(tmp), books, air_ms)
        rows = []
        try:
            for i in range(repeats):
                wait_for(lambda: _idle(case), 60, "idle")
                before = len(case.settled_sessions())
                send(case.cfg.intent_socket, {"intent": "door", "door": 1})
                case.sim.scan(ADULT)
                wait_for(lambda: case.seen_open(1), 10, "door open")
                book = case.items(1)[0]
                case.sim.take(1, book)
                case.sim.put(1, book)
                air0 = case.sim.rfid.stats.air_time_s + case.sim.links["rfid"].stats.byte_time_s
                closed_wall = time.time()
                case.sim.close(1)
                wait_for(lambda: len(case.settled_sessions()) > before, 120, "the session to settle")
                session = case.settled_sessions()[-1]
                total = datetime.fromisoformat(session["closed_at"]).timestamp() - closed_wall
                reader = case.sim.rfid.stats.air_time_s + case.sim.links["rfid"].stats.byte_time_s - air0
                rows.append((total, reader, json.loads(session["summary_json"])["rounds"]))
        finally:
            case.stop()
    total = statistics.median(r[0] for r in rows)
    reader = statistics.median(r[1] for r in rows)
    overhead = (total - reader) / reader * 100
    return {"books": books, "repeats": repeats, "rounds": rows[-1][2], "close_to_commit_s": round(total, 3),
            "reader_time_s": round(reader, 3), "overhead_s": round(total - reader, 3),
            "overhead_pct": round(overhead, 2), "goal_pct": OVERHEAD_GOAL_PCT, "met": overhead < OVERHEAD_GOAL_PCT}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=200, help="sessions for (a)")
    parser.add_argument("--repeats", type=int, default=3, help="sessions per compartment size for (b)")
    parser.add_argument("--air-ms", type=float, default=8.0, help="simulated air time per tag per round")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "session.json")
    args = parser.parse_args()
    unlock = bench_unlock(args.sessions)
    print(f"(a) card scan -> unlock frame: p50 {unlock['p50_ms']} ms, p99 {unlock['p99_ms']} ms", file=sys.stderr)
    close = [bench_close(n, args.air_ms, args.repeats) for n in (50, 150, 300)]
    print()
    print("| benchmark | measured | goal | met |")
    print("|---|---|---|---|")
    print(f"| (a) card scan -> unlock frame, {unlock['sessions']} sessions | p50 {unlock['p50_ms']} ms, "
          f"p99 {unlock['p99_ms']} ms (of which {unlock['scanner_wire_ms']} ms is the card number on the 9600-baud "
          f"scanner line; software p50 {unlock['software_p50_ms']} ms, p99 {unlock['software_p99_ms']} ms) "
          f"| p99 < {UNLOCK_GOAL_P99_MS:.0f} ms | {'yes' if unlock['met'] else 'NO'} |")
    for row in close:
        print(f"| (b) door closed -> committed, {row['books']} books ({row['rounds']} rounds) | "
              f"{row['close_to_commit_s']} s vs reader {row['reader_time_s']} s: overhead {row['overhead_s']} s "
              f"= {row['overhead_pct']} % | < {OVERHEAD_GOAL_PCT:.0f} % | {'yes' if row['met'] else 'NO'} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"unlock": unlock, "close": close, "air_ms_per_tag": args.air_ms}, indent=2))
    print(f"\nJSON: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
