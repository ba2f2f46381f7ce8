"""Patron cache benchmarks (issue 3): bulk load of a 200,000-patron snapshot, and patron lookup.

Prints a table and writes JSON to bench/results/patrons.json.

  (a) bulk load: `kiosk patrons load` of a JSON-lines snapshot (half by card number, half by patron key)
      into a fresh bookcase database, JSON parsing, hashing and the class check included.  Goal: under 10 s.
      Then the daily case: the same snapshot again over the full cache (every patron updated).  Same goal.
  (c) a refused snapshot: the same file with a typo on its last line; the whole file is checked before
      anything is written, and nothing is.  Same goal.
  (b) lookup: what the core does when a card is read — patron key (HMAC), the cached patron, the open
      loan count and the policy decision — p50/p99 over 20,000 random cards.  Goal: p99 under 1 ms.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.stats import percentile  # noqa: E402
from kiosk.core.policy import LoanPolicy, patron_key  # noqa: E402
from kiosk.store import patrons  # noqa: E402
from kiosk.store.ledger import Store  # noqa: E402

SECRET = "bench-secret-0123456789"
LOAD_GOAL_S = 10.0
LOOKUP_GOAL_P99_MS = 1.0
STATUSES = ["active"] * 90 + ["overdue"] * 4 + ["expired"] * 3 + ["blocked", "lost", "blocked"]
CLASSES = ["adult"] * 7 + ["branch"] * 2 + ["child"]
CLASS_LIMITS = {"adult": 15, "branch": 10, "child": 10}         # config/demo.toml's [policy.classes]


def timed_load(store: Store, snapshot: Path, expected: int) -> float:
    started = time.perf_counter()
    with snapshot.open("rb") as f:
        report = patrons.load(store, f, SECRET, classes=CLASS_LIMITS)
    assert report.loaded == expected, report
    return time.perf_counter() - started


def card(i: int) -> str:
    return f"31011{i:08d}"


def write_snapshot(path: Path, count: int, rng: random.Random) -> None:
    with path.open("w") as f:
        for i in range(count):
            who = {"card": card(i)} if i % 2 else {"key": patron_key(SECRET, card(i))}
            f.write(json.dumps({**who, "class": rng.choice(CLASSES), "status": rng.choice(STATUSES),
                                "loans_elsewhere": rng.randrange(6)}) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patrons", type=int, default=200_000)
    parser.add_argument("--lookups", type=int, default=20_000)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "patrons.json")
    args = parser.parse_args()
    rng = random.Random(7)
    with tempfile.TemporaryDirectory(prefix="bench-patrons-") as tmp:
        snapshot = Path(tmp) / "patrons.jsonl"
        write_snapshot(snapshot, args.patrons, rng)
        store = Store(Path(tmp) / "kiosk.sqlite3", "BENCH-1")
        load_s = timed_load(store, snapshot, args.patrons)
        reload_s = timed_load(store, snapshot, args.patrons)
        with snapshot.open("a") as f:
            f.write(json.dumps({"card": card(args.patrons), "class": "adult", "status": "actve"}) + "\n")
        started = time.perf_counter()
        try:
            with snapshot.open("rb") as f:
                patrons.load(store, f, SECRET, classes=CLASS_LIMITS)
        except patrons.SnapshotError as exc:
            assert exc.report.bad_lines == 1, exc.report.errors
        else:
            raise AssertionError("a snapshot with a bad line was loaded")
        refuse_s = time.perf_counter() - started
        policy = LoanPolicy(15, CLASS_LIMITS)
        timings = []
        for _ in range(args.lookups):
            number = card(rng.randrange(args.patrons + args.patrons // 20))     # 5 % unknown cards
            t0 = time.perf_counter()
            key = patron_key(SECRET, number)
            policy.decide(store.patron(key), store.open_loan_count(key))
            timings.append((time.perf_counter() - t0) * 1000)
        store.close()
    result = {"patrons": args.patrons, "load_s": round(load_s, 2), "reload_s": round(reload_s, 2),
              "refuse_s": round(refuse_s, 2), "lookups": args.lookups,
              "lookup_p50_ms": round(percentile(timings, 50), 3), "lookup_p99_ms": round(percentile(timings, 99), 3)}
    print("| benchmark | measured | goal | met |")
    print("|---|---|---|---|")
    print(f"| (a) bulk load of {args.patrons:,} patrons | {result['load_s']} s | under {LOAD_GOAL_S:.0f} s | "
          f"{'yes' if load_s < LOAD_GOAL_S else 'NO'} |")
    print(f"| (a) the same snapshot again over the full cache | {result['reload_s']} s | under {LOAD_GOAL_S:.0f} s | "
          f"{'yes' if reload_s < LOAD_GOAL_S else 'NO'} |")
    print(f"| (c) refused: the same file with a typo on its last line, nothing written | {result['refuse_s']} s | "
          f"under {LOAD_GOAL_S:.0f} s | {'yes' if refuse_s < LOAD_GOAL_S else 'NO'} |")
    print(f"| (b) card -> decision with {args.patrons:,} cached, {args.lookups:,} lookups | "
          f"p50 {result['lookup_p50_ms']} ms, p99 {result['lookup_p99_ms']} ms | p99 under {LOOKUP_GOAL_P99_MS} ms | "
          f"{'yes' if result['lookup_p99_ms'] < LOOKUP_GOAL_P99_MS else 'NO'} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"\nJSON: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
