"""``kiosk-sim``: run a simulated bookcase on pseudo-terminals (``world``) and drive it (``ctl``)."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from simulators.control import call
from simulators.errors import SimError
from simulators.vpcd import VPCD_PORT

DEVICES = ("lockboard", "rfid", "scanner")
FAULTS = ("garble", "silence", "slow", "unplug", "replug", "heal")

DESCRIPTION = """\
Hardware simulators of a city bookcase (城市书柜): a Kerong lock board, a bus of FEIG HF RFID
readers and a serial QR/barcode scanner, each on its own pseudo-terminal, around one shared world
of books, compartments and doors."""

EXAMPLES = """\
examples:
  kiosk-sim world --config config/demo.toml --link-dir var/demo/sim
  kiosk-sim ctl var/demo/sim scan 3101120000018
  kiosk-sim ctl var/demo/sim take --door 2 --item MH20200061
  kiosk-sim ctl var/demo/sim close --door 2
  kiosk-sim ctl var/demo/sim garble rfid
  kiosk-sim ctl var/demo/sim status | jq '.doors[1]'
"""

WORLD_EXAMPLES = """\
The links are DIR/lockboard, DIR/rfid, DIR/scanner (symlinks to ptys) and DIR/control.sock.
Point the bookcase config's lockboard.port, rfid.port and scanner.port at them.
Runs until Ctrl-C or SIGTERM, then removes its links.

examples:
  kiosk-sim world --config config/demo.toml --link-dir var/demo/sim
  kiosk-sim world --config config/demo.toml --link-dir /tmp/sim --books-per-door 30 --miss 0.05 --seed 7
  kiosk-sim world --config config/demo.toml --link-dir /tmp/sim --empty --air-ms 0
"""

CTL_EXAMPLES = """\
examples:
  kiosk-sim ctl var/demo/sim scan 3101120000018        a patron shows a card / e-card QR code
  kiosk-sim ctl var/demo/sim tap 04A224B2C35E80        a patron taps a library card on the PC/SC reader
  kiosk-sim ctl var/demo/sim tap A1B2C3D4 --hold 5 --error 6A81
  kiosk-sim ctl var/demo/sim take --door 2 --item MH20200061
  kiosk-sim ctl var/demo/sim put --door 2 --item MH20200061
  kiosk-sim ctl var/demo/sim put --door 2 --junk       a foreign tag that does not decode
  kiosk-sim ctl var/demo/sim close --door 2
  kiosk-sim ctl var/demo/sim force --door 3            open a door without an unlock command
  kiosk-sim ctl var/demo/sim flaky --item MH20200007   seen only every other inventory round
  kiosk-sim ctl var/demo/sim status                    JSON: doors, items, devices, stats
  kiosk-sim ctl var/demo/sim unplug rfid               faults: garble silence slow unplug replug heal
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kiosk-sim", description=DESCRIPTION, epilog=EXAMPLES,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="{world,ctl,ils,ils-ctl,fleet-load}")

    world = sub.add_parser("world", help="bring up the simulated bookcase and run until stopped",
                           description="Bring up the simulated bookcase described by a kiosk config file.",
                           epilog=WORLD_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    world.add_argument("--config", required=True, type=Path, metavar="FILE", help="the bookcase's TOML config")
    world.add_argument("--link-dir", required=True, type=Path, metavar="DIR",
                       help="where to put the device links and control.sock (created if missing)")
    world.add_argument("--seed", type=int, default=0, metavar="N", help="seed of every random choice (default 0)")
    world.add_argument("--air-ms", type=_non_negative, default=8.0, metavar="MS",
                       help="RFID air time per tag and inventory round, in ms (default 8)")
    world.add_argument("--miss", type=_probability, default=0.0, metavar="P",
                       help="probability that a tag misses an inventory round, 0..1 (default 0)")
    world.add_argument("--books-per-door", type=int, default=60, metavar="N",
                       help="demo books behind each door (default 60)")
    world.add_argument("--empty", action="store_true",
                       help="start with every compartment empty (the demo books are outside, ready to put)")
    world.add_argument("--pop-ms", type=_non_negative, default=200.0, metavar="MS",
                       help="how long after an unlock the spring pops the door open (default 200)")
    world.add_argument("--vpcd-port", type=int, default=VPCD_PORT, metavar="PORT",
                       help="TCP port of pcscd's vpcd reader that `ctl tap` presents cards to (default 35963, "
                            "\"Virtual PCD 00 00\"; 35964 is its second slot, \"Virtual PCD 00 01\")")
    world.add_argument("-v", "--verbose", action="store_true", help="log every frame")

    ctl = sub.add_parser("ctl", help="drive a running simulator", description="Drive a running `kiosk-sim world`.",
                         epilog=CTL_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    ctl.add_argument("link_dir", type=Path, metavar="DIR", help="the --link-dir of the running simulator")
    cmds = ctl.add_subparsers(dest="ctl_command", required=True, metavar="COMMAND")
    scan = cmds.add_parser("scan", help="scan a card number or e-card QR code")
    scan.add_argument("card", help="the text the scanner reads, e.g. 3101120000018")
    tap = cmds.add_parser(
        "tap", help="tap a library card on the PC/SC reader (a virtual card on pcscd's vpcd reader)",
        description="Present a virtual contactless card (MIFARE Classic 1K) to pcscd's vpcd reader (on "
                    "127.0.0.1, the world's --vpcd-port), hold it, and take it away. Needs pcscd running with "
                    "vsmartcard-vpcd "
                    "(and [pcsc] enabled = true in the bookcase config for the daemon to listen). Returns once "
                    "the card has been taken away.")
    tap.add_argument("uid", help="the card's UID in hex, 4, 7 or 10 bytes, e.g. 04A224B2C35E80")
    tap.add_argument("--hold", type=_non_negative, default=0.5, metavar="SECONDS",
                     help="how long the card stays on the reader once the reader notices it (default 0.5)")
    tap.add_argument("--error", metavar="SW", help="fault: the card answers GET UID with this status word, "
                     "e.g. 6A81 (function not supported) or 6300 (failed)")
    tap.add_argument("--slow", type=_non_negative, default=0.0, metavar="MS",
                     help="fault: the card answers every command this many ms late (default 0)")
    take = cmds.add_parser("take", help="take a book out of an open compartment")
    _door(take)
    take.add_argument("--item", required=True, metavar="ID", help="item id, e.g. MH20200001")
    put = cmds.add_parser("put", help="put a book (or a foreign tag) into an open compartment")
    _door(put)
    what = put.add_mutually_exclusive_group(required=True)
    what.add_argument("--item", metavar="ID", help="item id of a book that is outside the bookcase")
    what.add_argument("--junk", action="store_true", help="a foreign tag whose data does not decode")
    _door(cmds.add_parser("close", help="close a door"))
    _door(cmds.add_parser("force", help="pry a door open without an unlock command"))
    flaky = cmds.add_parser("flaky", help="make a tag answer only every other inventory round")
    flaky.add_argument("--item", required=True, metavar="ID", help="item id")
    flaky.add_argument("--off", action="store_true", help="make the tag reliable again")
    cmds.add_parser("status", help="print the world, the devices and the timing counters as JSON")
    for fault, text in (("garble", "noise before responses and some broken checksums"),
                        ("silence", "read requests but never answer"),
                        ("slow", "answer one byte at a time with gaps"),
                        ("unplug", "remove the device: its link vanishes"),
                        ("replug", "plug the device back in (a new pty behind the same link)"),
                        ("heal", "clear garble, silence and slow")):
        p = cmds.add_parser(fault, help=text)
        p.add_argument("device", choices=DEVICES, help="which device")
    from simulators.ils import cli as ils_cli
    ils_cli.register(sub)
    from simulators.scale import cli as scale_cli
    fleet = sub.add_parser("fleet-load", help="a fleet of bookcases, the gateway and the ILS on a simulated clock",
                           description=scale_cli.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    scale_cli.add_arguments(fleet)
    return parser


def _door(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--door", required=True, type=int, metavar="N", help="door number")


def _non_negative(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {text}")
    return value


def _probability(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    from simulators.ils import cli as ils_cli
    if argv[:1] == ["ctl"] and len(argv) > 1 and ils_cli.is_ils_dir(argv[1]):
        argv[0] = "ils-ctl"                      # `kiosk-sim ctl DIR …` on a simulated ILS's DIR
    args = build_parser().parse_args(argv)
    try:
        if args.command == "world":
            return run_world(args)
        if args.command in ("ils", "ils-ctl"):
            from simulators.ils import cli as ils_cli
            return ils_cli.main(args)
        if args.command == "fleet-load":
            from simulators.scale import cli as scale_cli
            return scale_cli.main(args)
        return run_ctl(args)
    except SimError as exc:
        print(f"kiosk-sim: error: {exc}", file=sys.stderr)
        return 1


# --------------------------------------------------------------------- world

def run_world(args: argparse.Namespace) -> int:
    import logging

    from kiosk.config import ConfigError, load_config
    from simulators.bookcase import SimulatedBookcase

    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        cfg = load_config(args.config)
    except ConfigError as exc:
        raise SimError(str(exc)) from None
    printer = _Printer()
    sim = SimulatedBookcase(cfg, args.link_dir, seed=args.seed, air_ms=args.air_ms, miss=args.miss,
                            books_per_door=args.books_per_door, empty=args.empty, pop_delay_ms=args.pop_ms,
                            vpcd_port=args.vpcd_port,
                            control=True, on_event=lambda msg: printer(f"world: {msg}"),
                            on_command=lambda cmd, a, reply: printer(_describe_command(cmd, a, reply)))
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        sim.start()
        _print_ready(sim, cfg, printer)
        while not stop.wait(0.5):
            pass
        printer("stopping")
    finally:
        sim.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    printer("stopped: links and control socket removed")
    return 0


def _print_ready(sim: Any, cfg: Any, printer: _Printer) -> None:
    boards = sorted({d.board for d in cfg.doors})
    readers = sorted(d.reader for d in cfg.doors)
    details = {
        "lockboard": f"{cfg.lockboard.baudrate} 8N1, board {', '.join(map(str, boards))}, "
                     f"lock bit {cfg.lockboard.lock_bit_unlocked} = unlocked, "
                     f"sensor bit {cfg.lockboard.sensor_bit_open} = open",
        "rfid": f"{cfg.rfid.baudrate} 8E1, readers at COM-ADR {', '.join(map(str, readers))}",
        "scanner": f"{cfg.scanner.baudrate} 8N1",
    }
    configured = {"lockboard": cfg.lockboard.port, "rfid": cfg.rfid.port, "scanner": cfg.scanner.port}
    for name, link in sim.links.items():
        printer(f"{name} ready: {link.link_path} -> {link.device} ({details[name]})")
        if os.path.abspath(configured[name]) != os.path.abspath(link.link_path):
            printer(f"  note: {cfg.path} has {name}.port = {configured[name]}, not this link")
    status = sim.world.status()
    inside = sum(d["count"] for d in status["doors"])
    printer(f"world: {len(status['doors'])} doors, {status['books']} books "
            f"({inside} behind doors, {len(status['outside'])} outside)")
    printer(f"control ready: {sim.paths['control']} (try: kiosk-sim ctl {sim.link_dir} status)")


def _describe_command(cmd: str, args: dict[str, Any], reply: dict[str, Any]) -> str:
    shown = " ".join(f"{k}={v}" for k, v in args.items())
    outcome = "ok" if reply.get("ok") else f"error: {reply.get('error')}"
    return f"ctl: {cmd}{' ' + shown if shown else ''} -> {outcome}"


class _Printer:
    """Thread-safe line printer to stdout, flushed at once (a supervising process reads it live)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def __call__(self, line: str) -> None:
        with self._lock:
            print(line, flush=True)


# --------------------------------------------------------------------- ctl

def run_ctl(args: argparse.Namespace) -> int:
    command = args.ctl_command
    link_dir = args.link_dir
    if command == "status":
        print(json.dumps(call(link_dir, "status"), ensure_ascii=False, indent=2))
    elif command == "tap":
        result = call(link_dir, "tap", uid=args.uid, hold_s=args.hold, error_sw=args.error, slow_ms=args.slow,
                      timeout=args.hold + args.slow / 1000 + 20)
        reads = result["uid_reads"]
        print(f"tapped card {result['uid']} for {result['hold_s']:g} s: the reader noticed it after "
              f"{result['detect_ms']:.0f} ms and read its UID {reads} time{'s' if reads != 1 else ''}"
              + ("" if reads else " (is the daemon running with [pcsc] enabled = true?)"))
    elif command == "scan":
        result = call(link_dir, "scan", card=args.card)
        print(f"scanned {args.card}" if result["sent"] else f"scan of {args.card} lost (the scanner line is silenced)")
    elif command == "take":
        book = call(link_dir, "take", door=args.door, item=args.item)
        print(f"took {_book(book)} out of door {args.door}")
    elif command == "put" and args.junk:
        uid = call(link_dir, "put_junk", door=args.door)
        print(f"put a foreign tag {uid} into door {args.door}")
    elif command == "put":
        book = call(link_dir, "put", door=args.door, item=args.item)
        print(f"put {_book(book)} into door {args.door}")
    elif command in ("close", "force"):
        door = call(link_dir, command, door=args.door)
        verb = "closed" if command == "close" else "forced open"
        print(f"door {args.door} {verb} ({door['count']} items behind it)")
    elif command == "flaky":
        book = call(link_dir, "flaky", item=args.item, on=not args.off)
        print(f"{_book(book)} is {'flaky' if book['flaky'] else 'reliable'} now")
    else:
        device = call(link_dir, command, device=args.device)
        state = "plugged in" if device["plugged"] else "unplugged"
        faults = ", ".join(device["faults"]) or "no faults"
        print(f"{args.device}: {state}, {faults}")
    return 0


def _book(book: dict[str, Any]) -> str:
    by = f" ({book['author']})" if book.get("author") else ""
    return f"{book['item']} 《{book['title']}》{by}"


if __name__ == "__main__":
    sys.exit(main())
