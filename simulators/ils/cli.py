"""`kiosk-sim ils` (run the simulated ILS) and `kiosk-sim ils-ctl` (drive it), like `world` and `ctl`.

The running ILS writes DIR/ils.json (its port, charset, user) beside DIR/control.sock, so `kiosk-sim ctl DIR …`
finds out that DIR is an ILS's and takes the ILS's commands too.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any, Callable

from simulators.control import ControlServer, call, control_path
from simulators.errors import SimError
from simulators.ils.library import STATUSES, Library
from simulators.ils.server import KINDS, IlsServer

MARKER = "ils.json"
DEFAULT_PASSWORD = "sip2-password"

EXAMPLES = """\
examples:
  kiosk-sim ils --port 6001 --link-dir var/demo/ils --password-file var/demo/secrets/sip2-password
  kiosk-sim ils --port 6001 --link-dir /tmp/ils --latency-ms 20 --charset gb18030
  kiosk-sim ils-ctl var/demo/ils status                   loans, patrons with their counts, stats (JSON)
  kiosk-sim ils-ctl var/demo/ils transactions             every checkout and checkin applied (JSON)
  kiosk-sim ils-ctl var/demo/ils block 3101120000018      the patron is blocked at the library
  kiosk-sim ils-ctl var/demo/ils checkout 3101120000026 MH20200125     a loan made at the library's desk
  kiosk-sim ils-ctl var/demo/ils hold 3101120000026 MH20200007         a hold: its checkin raises an alert
  kiosk-sim ils-ctl var/demo/ils down                     faults: down, up, drop, slow, badsum, garbage, huge,
  kiosk-sim ils-ctl var/demo/ils drop --kind checkout       refuse, heal (drop: apply, then close unanswered)
  kiosk-sim ils-ctl var/demo/ils refuse --item MH20200007 --message "Item withdrawn"
  (`kiosk-sim ctl DIR …` does the same for an ILS's DIR)
"""

RUN_DESCRIPTION = """\
A SIP2 (3M SIP 2.00) server over an in-memory library with the demo's patrons (card barcode = patron id)
and books (MH20200001 … with the bookcases' titles), for the gateway's tests and testers. Each connection
logs in (93) with --user and the password; loans get the ILS's own due date (30 days, end of day); checkin
honours the return date; blocked, expired, over-limit patrons are refused unless the request says no-block.
Item information names the borrower in the extension field ZB. Runs until Ctrl-C or SIGTERM."""


def register(sub: argparse._SubParsersAction) -> None:
    run = sub.add_parser("ils", help="run the simulated ILS: a SIP2 server over the demo's library",
                         description=RUN_DESCRIPTION, epilog=EXAMPLES,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("--port", type=int, default=6001,
                     help="TCP port (default 6001, as FOLIO edge-sip2 and Koha; 0: a free one, printed)")
    run.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    run.add_argument("--link-dir", required=True, type=Path, metavar="DIR",
                     help="where control.sock and ils.json go (created if missing)")
    run.add_argument("--user", default="citybook", help="the SIP2 login (93 CN) it accepts (default citybook)")
    pw = run.add_mutually_exclusive_group()
    pw.add_argument("--password", help=f"the SIP2 password (93 CO) it accepts (default {DEFAULT_PASSWORD!r})")
    pw.add_argument("--password-file", type=Path, metavar="FILE", help="a file holding the password it accepts")
    run.add_argument("--charset", default="utf-8", choices=("utf-8", "gb18030"),
                     help="the character set it speaks (default utf-8; checksums sum the encoded bytes)")
    run.add_argument("--latency-ms", type=_ms, default=0, metavar="MS",
                     help="every answer this much later, as a real ILS's database makes it (default 0)")
    run.add_argument("--items", type=int, default=9999, metavar="N",
                     help="demo items it knows, MH20200001 on (default 9999: every id a demo bookcase can hold)")
    run.add_argument("--institution", default="CN-310112", help="its institution id (AO; default CN-310112)")
    run.add_argument("--timeout-period", type=int, default=50, metavar="TENTHS",
                     help="the 98's timeout period in tenths of a second (default 50; 999: not given)")
    run.add_argument("--retries", type=int, default=3, metavar="N",
                     help="the 98's retries allowed (default 3; 999: not given)")
    run.add_argument("-v", "--verbose", action="store_true", help="log every connection and fault")

    ctl = sub.add_parser("ils-ctl", help="drive a running simulated ILS",
                         description="Drive a running `kiosk-sim ils` through DIR/control.sock.", epilog=EXAMPLES,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    add_ctl_arguments(ctl)


def add_ctl_arguments(ctl: argparse.ArgumentParser) -> None:
    ctl.add_argument("link_dir", type=Path, metavar="DIR", help="the --link-dir of the running ILS")
    cmds = ctl.add_subparsers(dest="ils_command", required=True, metavar="COMMAND")
    cmds.add_parser("status", help="loans, holds, patrons with their counts, connections, faults (JSON)")
    tr = cmds.add_parser("transactions", help="every checkout and checkin the ILS applied, in order (JSON)")
    tr.add_argument("--since", type=int, default=0, metavar="N", help="only those after the N-th")
    for name, text in (("block", "block a patron (a fine, a lost card)"), ("unblock", "make a patron active again")):
        cmds.add_parser(name, help=text).add_argument("patron", help="the card barcode (the ILS's patron id)")
    st = cmds.add_parser("set-status", help="set a patron's status at the library")
    st.add_argument("patron")
    st.add_argument("status", choices=STATUSES)
    out = cmds.add_parser("checkout", help="lend a book at the library's desk (refused like a SIP2 checkout)")
    out.add_argument("patron")
    out.add_argument("item")
    out.add_argument("--no-block", action="store_true", help="lend it whatever the patron's blocks and limit")
    cmds.add_parser("checkin", help="take a book back at the desk").add_argument("item")
    hold = cmds.add_parser("hold", help="put an item on hold for a patron (its checkin raises an alert)")
    hold.add_argument("patron")
    hold.add_argument("item")
    hold.add_argument("--cancel", action="store_true", help="cancel the hold instead")
    ap = cmds.add_parser("add-patron", help="a patron the demo data lacks")
    ap.add_argument("patron")
    ap.add_argument("--class", dest="patron_class", default="adult", help="adult (default), branch, child")
    ap.add_argument("--status", default="active", choices=STATUSES)
    ai = cmds.add_parser("add-item", help="an item the demo data lacks")
    ai.add_argument("item")
    ai.add_argument("--title", required=True)
    cmds.add_parser("down", help="refuse connections, drop the open ones")
    cmds.add_parser("up", help="accept connections again")
    drop = cmds.add_parser("drop", help="apply requests, then drop the connection before answering")
    drop.add_argument("--n", type=int, default=1, help="the next N requests (default 1)")
    drop.add_argument("--kind", choices=sorted(k for k in KINDS if k not in ("login", "sc_status")),
                      help="every request of this kind instead, until heal")
    cmds.add_parser("slow", help="answer every request this much later, after applying it").add_argument(
        "ms", type=_ms)
    for name, text in (("badsum", "wrong checksums on the next N answers"),
                       ("garbage", "noise instead of the next N answers"),
                       ("huge", "a 70 KiB screen message in the next N answers")):
        cmds.add_parser(name, help=text).add_argument("n", type=int, nargs="?", default=1)
    refuse = cmds.add_parser("refuse", help="answer checkouts and checkins ok=0 with a screen message")
    refuse.add_argument("--n", type=int, help="the next N transactions")
    refuse.add_argument("--item", help="every transaction of this item")
    refuse.add_argument("--message", help="the screen message (AF) to give")
    cmds.add_parser("heal", help="clear every fault")


def _ms(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {text}")
    return value


class IlsSimulator:
    """The library, its SIP2 server and the control socket together."""

    def __init__(self, link_dir: Path, library: Library, server: IlsServer) -> None:
        self.link_dir = Path(link_dir)
        self.library, self.server = library, server
        self.control = ControlServer(control_path(link_dir), self.commands())

    def start(self) -> IlsSimulator:
        self.link_dir.mkdir(parents=True, exist_ok=True)
        self.server.start()
        try:
            self.control.start()
        except BaseException:
            self.server.stop()
            raise
        marker = {"kind": "ils", "host": self.server.host, "port": self.server.port, "pid": os.getpid(),
                  "charset": self.server.charset, "user": self.server.user}
        (self.link_dir / MARKER).write_text(json.dumps(marker) + "\n", encoding="utf-8")
        return self

    def stop(self) -> None:
        self.control.stop()
        self.server.stop()
        (self.link_dir / MARKER).unlink(missing_ok=True)

    def commands(self) -> dict[str, Callable[..., Any]]:
        lib, srv = self.library, self.server
        return {
            "ping": lambda: "pong",
            "kind": lambda: "ils",
            "status": lambda: {**lib.status(), **srv.snapshot()},
            "transactions": lambda since=0: lib.transactions(int(since)),
            "block": lambda patron: self._status(patron, "blocked"),
            "unblock": lambda patron: self._status(patron, "active"),
            "set-status": lambda patron, status: self._status(patron, status),
            "checkout": lambda patron, item, no_block=False: self._outcome(
                lib.checkout(patron, item, no_block=bool(no_block), date=None, via="desk")),
            "checkin": lambda item: self._outcome(lib.checkin(item, return_date=None, no_block=False, via="desk")),
            "hold": self._hold,
            "add-patron": lambda patron, patron_class="adult", status="active": self._do(
                lambda: vars(lib.add_patron(patron, patron_class, status))),
            "add-item": lambda item, title: self._do(lambda: {"item": lib.add_item(item, title).id, "title": title}),
            "down": lambda: (srv.go_down(), "down")[1],
            "up": self._up,
            "drop": self._drop,
            "slow": lambda ms: self._set(slow_ms=float(ms)),
            "badsum": lambda n=1: self._set(badsum_next=int(n)),
            "garbage": lambda n=1: self._set(garbage_next=int(n)),
            "huge": lambda n=1: self._set(huge_next=int(n)),
            "refuse": self._refuse,
            "heal": self._heal,
        }

    @staticmethod
    def _do(fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except (KeyError, ValueError) as exc:
            raise SimError(str(exc).strip("'\"")) from None

    def _status(self, patron: str, status: str) -> dict:
        p = self._do(lambda: self.library.set_status(patron, status))
        return {"patron": p.id, "status": p.status}

    def _hold(self, patron: str, item: str, cancel: bool = False) -> dict:
        i = self._do(lambda: self.library.hold(patron, item, cancel=bool(cancel)))
        return {"item": i.id, "hold_for": i.hold_for}

    @staticmethod
    def _outcome(outcome) -> dict:
        if not outcome.ok:
            raise SimError(outcome.message)
        item = outcome.item
        return {"ok": True, "item": item.id, "title": item.title, "due": item.due.isoformat() if item.due else None,
                "message": outcome.message or None}

    def _up(self) -> str:
        try:
            self.server.come_up()
        except OSError as exc:
            raise SimError(f"cannot listen on port {self.server.port} again: {exc.strerror or exc}") from None
        return "up"

    def _set(self, **faults: Any) -> dict:
        for name, value in faults.items():
            setattr(self.server.faults, name, value)
        return self.server.faults.to_dict()

    def _drop(self, n: int = 1, kind: str | None = None) -> dict:
        if kind is not None and kind not in KINDS:
            raise SimError(f"unknown kind {kind!r} (known: {', '.join(sorted(KINDS))})")
        return self._set(drop_next=0, drop_kind=KINDS[kind]) if kind else self._set(drop_next=int(n))

    def _refuse(self, n: int | None = None, item: str | None = None, message: str | None = None) -> dict:
        lib = self.library
        with lib.lock:
            if item:
                lib.refuse_items.add(item)
            if n:
                lib.refuse_next = int(n)
            if message is not None:
                lib.refuse_message = message
            return {"refuse_items": sorted(lib.refuse_items), "refuse_next": lib.refuse_next,
                    "message": lib.refuse_message or None}

    def _heal(self) -> str:
        self.server.faults.heal()
        self._up()
        with self.library.lock:
            self.library.refuse_items.clear()
            self.library.refuse_next, self.library.refuse_message = 0, ""
        return "healed"


def is_ils_dir(link_dir: str | os.PathLike) -> bool:
    return (Path(link_dir) / MARKER).is_file()


def run_ils(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.password_file:
        try:
            password = args.password_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise SimError(f"cannot read the password file {args.password_file}: {exc.strerror or exc}") from None
    else:
        password = args.password if args.password is not None else DEFAULT_PASSWORD
    library = Library.demo(args.items)
    server = IlsServer(library, host=args.host, port=args.port, user=args.user, password=password,
                       charset=args.charset, latency_ms=args.latency_ms, institution=args.institution,
                       timeout_period=args.timeout_period, retries_allowed=args.retries)
    sim = IlsSimulator(args.link_dir, library, server)
    stop = threading.Event()
    try:
        sim.start()
    except OSError as exc:
        raise SimError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        print(f"simulated ILS ready: SIP2 on {args.host}:{server.port} (user {args.user}, {args.charset}, "
              f"latency {args.latency_ms:g} ms), {len(library.patrons)} patrons, {len(library.items)} items",
              flush=True)
        print(f"control ready: {sim.control.path} (try: kiosk-sim ctl {args.link_dir} status)", flush=True)
        stop.wait()
        print("stopping", flush=True)
    finally:
        sim.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print("stopped: control socket removed", flush=True)
    return 0


def run_ils_ctl(args: argparse.Namespace) -> int:
    params = {k: v for k, v in vars(args).items()
              if k not in ("command", "link_dir", "ils_command") and v not in (None, False)}
    result = call(args.link_dir, args.ils_command, **params)
    print(json.dumps(result, ensure_ascii=False, indent=2) if not isinstance(result, str) else result)
    return 0


def main(args: argparse.Namespace) -> int:
    try:
        return run_ils(args) if args.command == "ils" else run_ils_ctl(args)
    except SimError as exc:
        print(f"kiosk-sim: error: {exc}", file=sys.stderr)
        return 1

