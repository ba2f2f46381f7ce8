"""``kiosk-sim fleet-load``: a fleet of simulated bookcases, the broker, the gateway and the simulated ILS, the
library's circulation on a simulated clock, faults on a schedule, then the end check and the report.

    kiosk-sim fleet-load                          # 500 bookcases, one day at January 2020's rate
    kiosk-sim fleet-load --bookcases 20 --days 7  # the test's small fleet, every fault kind
    kiosk-sim fleet-load --bookcases 20 --days 366 --rate year --no-faults

Exit status: 0 every check passed, 1 a check failed, 2 bad arguments or the run could not start.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from simulators.scale.model import JANUARY_RATE, POPULATION, YEAR_RATE, ModelConfig

RATES = {"january": JANUARY_RATE, "year": YEAR_RATE}


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def _positive(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be above 0, got {text}")
    return value


def _rate(text: str) -> float:
    if text in RATES:
        return RATES[text]
    try:
        return _positive(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a number of loans+returns a day, or one of {', '.join(RATES)}; "
                                         f"got {text!r}") from None


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--bookcases", type=_positive_int, default=500, help="bookcases in the fleet (default 500)")
    p.add_argument("--days", type=_positive, default=1.0, help="simulated days (default 1)")
    p.add_argument("--rate", type=_rate, default=JANUARY_RATE,
                   help="loans+returns a day for the whole fleet: a number, 'january' (January 2020's 5,822 a "
                        "day, the default) or 'year' (2020's 865,124 over 366 days: 2,364 a day)")
    p.add_argument("--population", type=_positive_int, default=POPULATION,
                   help=f"reader cards the patrons are drawn from (default {POPULATION:,})")
    p.add_argument("--doors", type=_positive_int, default=5, help="doors per bookcase (default 5)")
    p.add_argument("--capacity", type=_positive_int, default=80, help="books per door (default 80)")
    p.add_argument("--follow", type=int, default=20,
                   help="how many bookcases follow the fleet as real ones do (every peer's events and holdings); "
                        "the others take only their own acks (default 20: in one host, every follower indexing "
                        "every peer's holdings costs N², where on the street each Pi pays its own N)")
    p.add_argument("--no-faults", action="store_true", help="no faults (default: every kind at least once)")
    p.add_argument("--speed", type=float, default=0.0,
                   help="simulated seconds per real second; 0 (the default) runs as fast as the machine can")
    p.add_argument("--ils-latency-ms", type=float, default=0.0, help="the simulated ILS's time per answer")
    p.add_argument("--gateway-pool", type=_positive_int, default=4, help="the gateway's SIP2 connections")
    p.add_argument("--seed", type=int, default=2020, help="the circulation's random seed (same seed, same run)")
    p.add_argument("--workdir", type=Path, default=Path("var/fleet-load"),
                   help="where the run's files go, emptied at the start (default var/fleet-load)")
    p.add_argument("--data-dir", type=Path, default=None,
                   help="the bookcases' databases (default WORKDIR/bookcases; a tmpfs is faster)")
    p.add_argument("--quiet-timeout", type=_positive, default=900.0,
                   help="real seconds the end may take to go quiet (default 900)")
    p.add_argument("--json", action="store_true", help="print the machine-readable report on stdout")
    p.add_argument("-v", "--verbose", action="store_true", help="log the simulation's warnings and more")


def options_from(args: argparse.Namespace):
    from simulators.scale.centre import GatewaySettings
    from simulators.scale.fleet import RunOptions
    model = ModelConfig(bookcases=args.bookcases, days=args.days, rate_per_day=args.rate,
                        population=args.population, doors=args.doors, capacity=args.capacity, seed=args.seed)
    return RunOptions(model=model, workdir=args.workdir, data_dir=args.data_dir, speed=args.speed,
                      follow=args.follow, faults=[] if args.no_faults else None,
                      gateway=GatewaySettings(pool_size=args.gateway_pool), ils_latency_ms=args.ils_latency_ms,
                      quiet_timeout_s=args.quiet_timeout, progress=not args.json)


def play(options) -> dict:
    """Set up, run, go quiet, check, report: the report (a dict) with its files' paths under ``files``."""
    from simulators.scale import check as checks
    from simulators.scale import report as reports
    from simulators.scale.fleet import FleetRun
    run = FleetRun(options)
    try:
        run.setup()
        run.run()
        dump = run.shutdown()
        findings = checks.check(run, dump)
        result = reports.build(run, findings, dump)
        files = reports.write(Path(options.workdir) / "report", result)
        result["files"] = {k: str(v) for k, v in files.items()}
        return result
    finally:
        run.close()


def main(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO if args.verbose else logging.ERROR,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    options = options_from(args)
    out = sys.stderr if args.json else sys.stdout
    m = options.model
    print(f"fleet-load: {m.bookcases} bookcases, {m.days:g} simulated day(s) at {m.rate_per_day:,.0f} loans+returns "
          f"a day, {'no faults' if options.faults == [] else 'every fault kind'}; files in {options.workdir}",
          file=out, flush=True)
    t0 = time.monotonic()
    try:
        result = play(options)
    except KeyboardInterrupt:
        print("fleet-load: interrupted; the run's processes are stopped", file=sys.stderr)
        return 130
    except (OSError, RuntimeError) as exc:
        print(f"fleet-load: error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=1))
    else:
        from simulators.scale.report import text
        print(text(result))
        print(f"report: {result['files']['text']}, {result['files']['json']}, plot {result['files']['svg']} "
              f"({time.monotonic() - t0:.0f} s in all)")
    return 0 if result["ok"] else 1


__all__ = ["add_arguments", "main", "options_from", "play"]
