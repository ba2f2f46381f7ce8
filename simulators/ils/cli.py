"""`kiosk-sim ils` (run the simulated ILS) and `kiosk-sim ils-ctl` (drive it), like `world` and `ctl`."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path
from typing import Any, Callable

from simulators.control import ControlServer, call, control_path
from simulators.errors import SimError
from simulators.ils.library import Library
from simulators.ils.server import IlsServer

EXAMPLES = """\
examples:
  kiosk-sim ils --port 6001 --link-dir var/demo/ils --password-file var/demo/secrets/sip2-password
  kiosk-sim ils --port 6001 --link-dir /tmp/ils --latency-ms 20 --charset gb18030
  kiosk-sim ils-ctl var/demo/ils status                   loans, patrons with their counts (JSON)
  kiosk-sim ils-ctl var/demo/ils transactions             every checkout and checkin applied (JSON)
  kiosk-sim ils-ctl var/demo/ils block 3101120000018      the patron is blocked at the library
  kiosk-sim ils-ctl var/demo/ils checkout 3101120000026 MH20200125     a loan made at the library's desk
  kiosk-sim ils-ctl var/demo/ils down                     faults: down, up, drop, slow, badsum, garbage, refuse, heal
  kiosk-sim ils-ctl var/demo/ils drop --kind checkout     apply every checkout, then drop the connection
"""


def register(sub: argparse._SubParsersAction) -> None:
    run = sub.add_parser("ils", help="run the simulated ILS: a SIP2 server over the demo's library",
                         description="A SIP2 (3M SIP 2.00) server over an in-memory library with the demo's "
                                     "patrons and books, for the gateway's tests and testers.",
                         epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("--port", type=int, default=6001, help="TCP port (default 6001, as FOLIO edge-sip2 and Koha)")
    run.add_argument("--host", default="127.0.0.1")
    run.add_argument("--link-dir", required=True, type=Path, metavar="DIR", help="where control.sock goes")
    run.add_argument("--user", default="citybook", help="the SIP2 login (93 CN) it accepts (default citybook)")
    run.add_argument("--password-file", type=Path, help="a file holding the SIP2 password it accepts "
                                                         "(default: 'sip2-password')")
    run.add_argument("--charset", default="utf-8", help="utf-8 (default) or gb18030")
    run.add_argument("--latency-ms", type=int, default=0, help="every answer this much later (default 0)")
    run.add_argument("--bookcases", type=int, default=2, help="demo bookcases whose books it knows (default 2)")

    ctl = sub.add_parser("ils-ctl", help="drive a running simulated ILS", epilog=EXAMPLES,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    ctl.add_argument("link_dir", type=Path, metavar="DIR")
    cmds = ctl.add_subparsers(dest="ils_command", required=True, metavar="COMMAND")
    cmds.add_parser("status", help="loans, patrons with their counts, faults (JSON)")
    cmds.add_parser("transactions", help="every checkout and checkin the ILS applied (JSON)")
    for name, text in (("block", "block a patron (a fine, a lost card)"), ("unblock", "make a patron active again")):
        cmds.add_parser(name, help=text).add_argument("patron", help="the card barcode (the ILS's patron id)")
    out = cmds.add_parser("checkout", help="lend a book at the library's desk")
    out.add_argument("patron")
    out.add_argument("item")
    cmds.add_parser("checkin", help="take a book back at the desk").add_argument("item")
    cmds.add_parser("down", help="refuse connections, drop the open ones")
    cmds.add_parser("up", help="accept connections again")
    drop = cmds.add_parser("drop", help="apply requests, then drop the connection before answering")
    drop.add_argument("--n", type=int, default=1, help="the next N requests (default 1)")
    drop.add_argument("--kind", choices=["checkout", "checkin", "item_information", "patron_information"],
                      help="every request of this kind instead, until heal")
    cmds.add_parser("slow", help="answer late").add_argument("ms", type=int)
    cmds.add_parser("badsum", help="wrong checksums on the next N answers").add_argument("n", type=int, nargs="?",
                                                                                        default=1)
    cmds.add_parser("garbage", help="noise instead of the next N answers").add_argument("n", type=int, nargs="?",
                                                                                       default=1)
    refuse = cmds.add_parser("refuse", help="answer ok=0 with a screen message")
    refuse.add_argument("--n", type=int, help="the next N transactions")
    refuse.add_argument("--item", help="every transaction of this item")
    cmds.add_parser("heal", help="clear every fault")


class IlsSimulator:
    """The library, its SIP2 server and the control socket together."""

    def __init__(self, link_dir: Path, library: Library, server: IlsServer) -> None:
        self.library, self.server = library, server
        self.control = ControlServer(control_path(link_dir), self.commands())

    def commands(self) -> dict[str, Callable[..., Any]]:
        lib, srv = self.library, self.server
        return {
            "ping": lambda: "pong",
            "status": lambda: {**lib.status(), "port": srv.port, "faults": srv.faults.to_dict(),
                               "requests": srv.requests},
            "transactions": lib.transactions,
            "block": lambda patron: self._status(patron, "blocked"),
            "unblock": lambda patron: self._status(patron, "active"),
            "checkout": lambda patron, item: self._outcome(lib.checkout(patron, item, no_block=False, date=None)),
            "checkin": lambda item: self._outcome(lib.checkin(item, return_date=None, no_block=False)),
            "down": lambda: (srv.go_down(), "down")[1],
            "up": lambda: (srv.come_up(), "up")[1],
            "drop": self._drop,
            "slow": lambda ms: self._set(slow_ms=int(ms)),
            "badsum": lambda n=1: self._set(badsum_next=int(n)),
            "garbage": lambda n=1: self._set(garbage_next=int(n)),
            "refuse": self._refuse,
            "heal": lambda: (srv.faults.heal(), srv.come_up(), lib.refuse_items.clear(),
                             setattr(lib, "refuse_next", 0), "healed")[-1],
        }

    def _status(self, patron: str, status: str) -> dict:
        try:
            p = self.library.set_status(patron, status)
        except KeyError:
            raise SimError(f"no patron {patron} in the library") from None
        return {"patron": p.id, "status": p.status}

    @staticmethod
    def _outcome(outcome) -> dict:
        if not outcome.ok:
            raise SimError(outcome.message)
        return {"ok": True, "item": outcome.item.id if outcome.item else None}

    def _set(self, **faults: int) -> dict:
        for name, value in faults.items():
            setattr(self.server.faults, name, value)
        return self.server.faults.to_dict()

    def _drop(self, n: int = 1, kind: str | None = None) -> dict:
        return self._set(drop_next=0, drop_kind=kind) if kind else self._set(drop_next=int(n))

    def _refuse(self, n: int | None = None, item: str | None = None) -> dict:
        if item:
            self.library.refuse_items.add(item)
        if n:
            self.library.refuse_next = int(n)
        return {"refuse_items": sorted(self.library.refuse_items), "refuse_next": self.library.refuse_next}


def run_ils(args: argparse.Namespace) -> int:
    password = args.password_file.read_text(encoding="utf-8").strip() if args.password_file else "sip2-password"
    library = Library.demo(args.bookcases)
    server = IlsServer(library, host=args.host, port=args.port, user=args.user, password=password,
                       charset=args.charset, latency_ms=args.latency_ms)
    sim = IlsSimulator(args.link_dir, library, server)
    args.link_dir.mkdir(parents=True, exist_ok=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    server.start()
    sim.control.start()
    print(f"simulated ILS: SIP2 on {args.host}:{server.port} (user {args.user}, {args.charset}), "
          f"{len(library.patrons)} patrons, {len(library.items)} items; control: kiosk-sim ils-ctl {args.link_dir} …",
          flush=True)
    try:
        stop.wait()
    finally:
        sim.control.stop()
        server.stop()
    return 0


def run_ils_ctl(args: argparse.Namespace) -> int:
    params = {k: v for k, v in vars(args).items()
              if k not in ("command", "link_dir", "ils_command") and v is not None}
    result = call(args.link_dir, args.ils_command, **params)
    print(json.dumps(result, ensure_ascii=False, indent=2) if not isinstance(result, str) else result)
    return 0


def main(args: argparse.Namespace) -> int:
    try:
        return run_ils(args) if args.command == "ils" else run_ils_ctl(args)
    except SimError as exc:
        print(f"kiosk-sim: error: {exc}", file=sys.stderr)
        return 1
