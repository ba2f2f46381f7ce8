"""The fleet at scale (issue 16): simulated bookcases, the broker, the gateway and the simulated ILS, measured.

Each run is `kiosk-sim fleet-load --json` in its own process (real Mosquitto, the real gateway process, the
simulated ILS over SIP2, each bookcase's real core on its own SQLite file), the clock running as fast as the
machine allows, no faults (the faults are the test's: tests/scale). 20 bookcases follow the fleet (every
peer's events and holdings, as a real bookcase does); the others take only their own acks, since in one host
every follower indexing every peer's holdings costs N² (on the street each Pi pays its own N). For each run:

  (a) nothing lost: the run's end check (every physical loan and return at the ILS exactly once, in order, with
      its patron and return date; outboxes empty; every ack back; loan counts agreeing). Goal: every check.
  (b) wall time per simulated day, and how much faster than real time. Goal: a simulated day in under an hour
      (so the year of 20 bookcases runs in a long benchmark, not a week).
  (c) events per second through the gateway (journaled loans, returns and the rest, over the run's wall time),
      and loan -> ILS -> ack at the bookcase, p50 / p99 in real seconds. Time runs faster than real, so the
      gateway sees a day's evening peak in seconds: this is the gateway under load, not at the library's pace.
      Goal: p99 loan -> ack under 5 s.
  (d) CPU (broker, gateway, ILS, the bookcases' host process) and memory (broker, gateway, per bookcase).

Default: 20, 100 and 500 bookcases, one day each at January 2020's rate (5,822 loans+returns a day across the
fleet), then the growth table and the projection to 5,000. `--year` adds 20 bookcases for a simulated year at
2020's rate (865,124 loans and returns; hours of wall time). Writes bench/results/fleet.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from simulators.scale.model import JANUARY_RATE, YEAR_2020, YEAR_DAYS, YEAR_RATE  # noqa: E402

DAY_GOAL_S = 3600.0
ACK_P99_GOAL_S = 5.0
PROJECT_TO = 5000


def run(bookcases: int, days: float, rate: float, workdir: Path, data_dir: Path | None, follow: int) -> dict:
    cmd = [sys.executable, "-m", "simulators.cli", "fleet-load", "--bookcases", str(bookcases), "--days", f"{days:g}",
           "--rate", f"{rate:.1f}", "--no-faults", "--workdir", str(workdir), "--json",
           "--follow", str(min(follow, bookcases))]
    if data_dir is not None:
        cmd += ["--data-dir", str(data_dir)]
    print(f"fleet: {bookcases} bookcases, {days:g} simulated day(s) at {rate:,.0f} a day ...", flush=True)
    t0 = time.monotonic()
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    wall = time.monotonic() - t0
    if not done.stdout.strip():
        raise SystemExit(f"fleet-load failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    report = json.loads(done.stdout)
    return summarise(report, wall)


def summarise(report: dict, wall: float) -> dict:
    r, c, t = report["run"], report["circulation"], report["timing"]
    mem, cpu, lat = report["memory_mb"], report["cpu_s"], report["latency"]
    simulated = t.get("simulated_s") or 0.0
    journaled = sum(((report.get("journal") or {}).get("events") or {}).values())
    busy = simulated + t.get("quiet_s", 0.0)
    return {
        "bookcases": r["bookcases"], "days": r["days"], "rate_per_day": r["rate_per_day"],
        "ok": report["ok"], "failed_checks": [x["name"] for x in report["checks"] if not x["ok"]],
        "transactions": c["transactions"], "visits": c["visits"],
        "wall_s": round(wall, 1), "simulated_s": round(simulated, 1), "quiet_s": t.get("quiet_s"),
        "real_per_simulated_day_s": t.get("real_per_simulated_day_s"),
        "speedup": round(r["days"] * 86400 / simulated, 1) if simulated else None,
        "gateway_events_per_s": round(journaled / busy, 1) if busy else None,
        "transactions_per_s": round(c["transactions"] / busy, 1) if busy else None,
        "journal_events": journaled,
        "loan_to_ils_p50_s": lat["loan_to_ils_s"]["p50"], "loan_to_ils_p99_s": lat["loan_to_ils_s"]["p99"],
        "loan_to_ack_p50_s": lat["loan_to_ack_s"]["p50"], "loan_to_ack_p99_s": lat["loan_to_ack_s"]["p99"],
        "cpu_s": cpu, "cpu_share": {k: round(v / busy, 3) for k, v in cpu.items()} if busy else {},
        "memory_mb": mem,
        "met": {"nothing_lost": report["ok"],
                "day": (t.get("real_per_simulated_day_s") or 1e9) < DAY_GOAL_S,
                "ack_p99": (lat["loan_to_ack_s"]["p99"] or 1e9) < ACK_P99_GOAL_S},
    }


def project(rows: list[dict], n: int) -> dict:
    """Straight lines through the two largest runs, carried to ``n`` bookcases."""
    a, b = sorted(rows, key=lambda x: x["bookcases"])[-2:]
    out = {}

    def line(key: str, get) -> None:
        va, vb = get(a), get(b)
        if va is None or vb is None or b["bookcases"] == a["bookcases"]:
            return
        slope = (vb - va) / (b["bookcases"] - a["bookcases"])
        out[key] = round(vb + slope * (n - b["bookcases"]), 1)
    line("host_memory_mb", lambda x: x["memory_mb"].get("host_end_of_run_mb"))
    line("real_per_simulated_day_s", lambda x: x["real_per_simulated_day_s"])
    line("broker_memory_mb", lambda x: x["memory_mb"].get("broker_mb"))
    line("gateway_memory_mb", lambda x: x["memory_mb"].get("gateway_mb"))
    line("host_cpu_share", lambda x: x["cpu_share"].get("host_s"))
    return out


def table(rows: list[dict]) -> str:
    yes = {True: "yes", False: "NO"}
    out = ["| bookcases | days | loans+returns | checks (goal: all) | wall per simulated day (goal < 1 h) | "
           "faster than real | events/s through the gateway | loan -> ILS p50 / p99 | loan -> ack p50 / p99 (goal p99 < 5 s) | "
           "CPU share: broker / gateway / ILS / bookcases | memory: broker / gateway / per bookcase |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    for x in rows:
        m, s = x["memory_mb"], x["cpu_share"]
        out.append(
            f"| {x['bookcases']} | {x['days']:g} | {x['transactions']:,} | "
            f"{'all passed' if x['ok'] else 'FAILED ' + ', '.join(x['failed_checks'])} ({yes[x['met']['nothing_lost']]}) | "
            f"{x['real_per_simulated_day_s']:.0f} s ({yes[x['met']['day']]}) | {x['speedup']:g}x | "
            f"{x['gateway_events_per_s']} | {x['loan_to_ils_p50_s']} / {x['loan_to_ils_p99_s']} s | "
            f"{x['loan_to_ack_p50_s']} / {x['loan_to_ack_p99_s']} s ({yes[x['met']['ack_p99']]}) | "
            + " / ".join(f"{100 * s.get(k, 0):.0f} %" for k in ("broker_s", "gateway_s", "ils_s", "host_s")) + " | "
            f"{m.get('broker_mb')} / {m.get('gateway_mb')} / {m.get('per_bookcase')} MB |")
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="20,100,500", help="bookcase counts for the one-day runs")
    parser.add_argument("--days", type=float, default=1.0, help="simulated days of each size's run")
    parser.add_argument("--year", action="store_true", help="also 20 bookcases for a simulated year (hours)")
    parser.add_argument("--year-days", type=float, default=YEAR_DAYS, help="the year run's days (default 366)")
    parser.add_argument("--follow", type=int, default=20,
                        help="bookcases that follow the fleet (every peer's events and holdings); the rest take "
                             "only their acks. Each follower indexes every peer's holdings, so all following "
                             "costs the one host N² (default 20)")
    parser.add_argument("--tmpfs", action="store_true", help="the bookcases' databases under /dev/shm")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "fleet.json")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="fleet-bench-") as tmp:
        for n in [int(x) for x in args.sizes.split(",") if x.strip()]:
            data = Path(tempfile.mkdtemp(prefix=f"fleet-{n}-", dir="/dev/shm")) if args.tmpfs else None
            rows.append(run(n, args.days, JANUARY_RATE, Path(tmp) / f"day-{n}", data, args.follow))
            print(table(rows[-1:]).splitlines()[-1], flush=True)
        year = None
        if args.year:
            year = run(20, args.year_days, YEAR_RATE, Path(tmp) / "year", None, args.follow)
    result = {"machine": {"cpus": os.cpu_count()}, "days": rows, "year": year,
              "year_target_transactions": round(YEAR_RATE * args.year_days),
              "year_2020_transactions": YEAR_2020}
    print()
    print(table(rows + ([year] if year else [])))
    if len(rows) >= 2:
        result["projection"] = {"bookcases": PROJECT_TO, **project(rows, PROJECT_TO)}
        p = result["projection"]
        print(f"\nCarried to {PROJECT_TO:,} bookcases (straight lines through the two largest runs): "
              + ", ".join(f"{k} {v:g}" for k, v in p.items() if k != "bookcases"))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(f"\nJSON: {args.out}")
    return 0 if all(r["ok"] for r in rows + ([year] if year else [])) else 1


if __name__ == "__main__":
    sys.exit(main())
