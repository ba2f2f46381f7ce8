"""The simulated ILS of a fleet run, in a process of its own: ``python -m simulators.scale.ils_host``.

It is simulators.ils — the library, its SIP2 server and its control socket (kiosk-sim ils-ctl DIR …: down, up,
refuse, transactions) — over the run's population and stock instead of the demo's: every card of the population,
every bookcase item, the desk loans patrons hold at the start. Two things are added for scale, neither changing
what the ILS answers: the loans are indexed by patron (the plain library scans every item for a patron's count:
fine for the demo's 10,000 items, seconds per request for a fleet's 200,000), and ``dump`` writes the
transactions, the loans and the patrons to files (a year's transactions do not fit a control-socket line).

Started by simulators.scale.centre with a setup file (JSON): {"patrons": [[card, class], …], "items": [[id, title,
home], …], "desk_loans": [[card, item], …], "refuse_items": [item, …]}.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from pathlib import Path

from simulators.ils.cli import IlsSimulator
from simulators.ils.library import CENTRAL, HOME, Item, Library, Patron, Transaction
from simulators.ils.server import IlsServer

LOGGER = logging.getLogger(__name__)


class IndexedLibrary(Library):
    """simulators.ils.library.Library with the loans indexed by borrower; same answers, no scans of every item."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._by_borrower: dict[str, set[str]] = {}
        self._holds: set[str] = set()

    def _record(self, **kw) -> Transaction:
        # Called under the library's lock by every applied checkout and checkin: the index follows.
        t = super()._record(**kw)
        if t.kind == "checkout":
            self._by_borrower.setdefault(t.patron, set()).add(t.item)
        elif t.patron is not None:
            self._by_borrower.get(t.patron, set()).discard(t.item)
        return t

    def _charged(self, patron_id: str) -> int:
        return len(self._by_borrower.get(patron_id, ()))

    def patron(self, patron_id: str) -> tuple[Patron | None, list[Item]]:
        with self.lock:
            return self.patrons.get(patron_id), [self.items[i] for i in sorted(self._by_borrower.get(patron_id, ()))]

    def holds_of(self, patron_id: str) -> list[Item]:
        with self.lock:
            return [self.items[i] for i in sorted(self._holds) if self.items[i].hold_for == patron_id]

    def hold(self, patron_id: str, item_id: str, *, cancel: bool = False) -> Item:
        item = super().hold(patron_id, item_id, cancel=cancel)
        with self.lock:
            (self._holds.discard if cancel else self._holds.add)(item_id)
        return item

    def dump(self, folder: str) -> dict:
        """Transactions (JSON lines), current loans and patrons' counts into ``folder``; returns the paths."""
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        with self.lock:
            applied = list(self.applied)
            loans = {i.id: i.borrower for i in self.items.values() if i.borrower}
        paths = {"transactions": out / "ils-transactions.jsonl", "loans": out / "ils-loans.json"}
        with open(paths["transactions"], "w", encoding="utf-8") as f:
            for t in applied:
                f.write(json.dumps(t.to_dict(), ensure_ascii=False) + "\n")
        paths["loans"].write_text(json.dumps(loans, ensure_ascii=False), encoding="utf-8")
        return {k: str(v) for k, v in paths.items()} | {"transactions_count": len(applied), "loans_count": len(loans)}


def build_library(setup: dict) -> IndexedLibrary:
    lib = IndexedLibrary()
    for card, patron_class in setup["patrons"]:
        lib.patrons[card] = Patron(card, patron_class, "active", 0, name=f"读者{card[-4:]}")
    for item, title, home in setup["items"]:
        lib.items[item] = Item(item, title, home=home or HOME, location=home or HOME)
    for card, item in setup.get("desk_loans", ()):
        outcome = lib.checkout(card, item, no_block=True, date=None, via="desk")
        if not outcome.ok:
            raise SystemExit(f"ils_host: the desk loan of {item} to {card} was refused: {outcome.message}")
    lib.refuse_items.update(setup.get("refuse_items", ()))
    if lib.refuse_items:
        lib.refuse_message = "Item withdrawn from circulation: see a librarian"
    return lib


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulators.scale.ils_host", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--link-dir", type=Path, required=True)
    parser.add_argument("--setup", type=Path, required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--password", required=True)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    library = build_library(json.loads(args.setup.read_text(encoding="utf-8")))
    server = IlsServer(library, port=args.port, password=args.password, latency_ms=args.latency_ms,
                       timeout_period=999)
    sim = IlsSimulator(args.link_dir, library, server)
    sim.control.commands["dump"] = library.dump
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    sim.start()
    print(json.dumps({"port": server.port, "patrons": len(library.patrons), "items": len(library.items),
                      "central_home": CENTRAL}), flush=True)
    stop.wait()
    sim.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
