"""The `kiosk` command: run the daemon, inspect tags, send intents, check a config, show the ledger."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from kiosk import __version__, admin
from kiosk.content import cli as content_cli
from kiosk.sync import cli as sync_cli

EXAMPLES = """examples:
  kiosk run --config config/demo.toml
  kiosk screenshot --state door_open --lang en --out door.png --size 1920x1080
  kiosk check-config /boot/citybook.toml
  kiosk intent --config config/demo.toml door 2
  kiosk ledger --config config/demo.toml
  kiosk tag decode 11010130...               (32 bytes of tag memory as hex)
  kiosk tag encode --barcode MH20200001 --isil CN-310112 --country CN
""" + admin.EXAMPLES + sync_cli.EXAMPLES + content_cli.EXAMPLES


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kiosk", description="City Bookcase (城市书柜) kiosk daemon and tools.",
                                     epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"kiosk {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the bookcase daemon")
    run.add_argument("--config", required=True, type=Path, help="the bookcase's TOML config file")
    run.add_argument("--headless", action="store_true", help="no touch screen (tests, benchmarks, a bookcase "
                     "whose screen is broken); without it the screen opens as [screen] in the config says")
    run.add_argument("-v", "--verbose", action="store_true", help="debug logging (raw frames)")

    check = sub.add_parser(
        "check-config", help="check a config file: every mistake, then warnings, then what it says",
        description="Lists every mistake in the file at once (file, key, problem; doors by their number), then "
                    "warnings about what is valid but looks wrong for a real bookcase: a serial port that does not "
                    "exist, a non-standard baud rate, the demo's secrets or seed data, a relative data folder.",
        epilog="exit status: 0 no mistakes (warnings may be printed), 1 mistakes (the daemon would not start), "
               "3 warnings only, with --strict", formatter_class=argparse.RawDescriptionHelpFormatter)
    check.add_argument("config", type=Path)
    check.add_argument("--strict", action="store_true", help="warnings count too: exit 3 if there are any")

    intent = sub.add_parser(
        "intent", help="send a patron intent to a running daemon (headless runs, tests)",
        description="Sends the intent to the daemon of the config's intent_socket and prints its answer: the state "
                    "after the daemon handled it (JSON on stdout) and what it did in one line on stderr, e.g. "
                    "'door 3 unlocked; now door 3 open for a patron'.")
    intent.add_argument("--config", required=True, type=Path)
    intent.add_argument("action", choices=["door", "cancel", "status"])
    intent.add_argument("door", nargs="?", type=int, help="door number, for 'door'")

    shot = sub.add_parser("screenshot", help="render a screen with sample data to a PNG (no display needed)")
    shot.add_argument("--state", required=True, help="attract, identifying, refused, door_open, scanning, receipt, "
                      "out_of_service, staff_pin, staff_restock, diagnostics (also choosing, find, help)")
    shot.add_argument("--lang", choices=["zh", "en"], default="zh")
    shot.add_argument("--out", required=True, type=Path, help="the PNG file to write")
    shot.add_argument("--size", default="1080x1920", help="WIDTHxHEIGHT in pixels (default 1080x1920, portrait)")

    ledger = sub.add_parser("ledger", help="print loans, returns and the outbox of a bookcase's database")
    ledger.add_argument("--config", required=True, type=Path)
    ledger.add_argument("--json", action="store_true")

    tag = sub.add_parser("tag", help="decode or encode ISO 28560-3 library tag memory")
    tag_sub = tag.add_subparsers(dest="tag_command", required=True)
    dec = tag_sub.add_parser("decode", help="decode 32 bytes of tag memory given as hex")
    dec.add_argument("hex")
    enc = tag_sub.add_parser("encode", help="make the 32 bytes for a library tag")
    enc.add_argument("--barcode", required=True, help="primary item identifier, up to 16 ASCII characters")
    enc.add_argument("--isil", default="CN-310112", help="owner library ISIL, up to 9 characters")
    enc.add_argument("--country", default="CN", help="two-letter country code")
    enc.add_argument("--usage", type=int, default=1, help="1 circulating, 2 reference, 7 discarded, 8 patron card")
    enc.add_argument("--reversed", action="store_true", help="store each 4-byte block reversed")

    admin.register(sub, COMMANDS)
    sync_cli.register(sub, COMMANDS)
    content_cli.register(sub, COMMANDS)
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        return 130


def _setup_logging(verbose: bool = False) -> None:
    from kiosk import logtext
    logtext.configure(logging.DEBUG if verbose else logging.INFO,
                      "%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S", sys.stdout)


def _load(path: Path):
    from kiosk.config import ConfigError, load_config
    path = _running(path)
    try:
        return load_config(path)
    except ConfigError as exc:
        print(f"kiosk: config error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def _running(path: Path) -> Path:
    """The config a running demo made of ``path`` (kiosk.config.running_config), said on stderr; else ``path``."""
    from kiosk.config import running_config
    actual = running_config(path)
    if actual != path:
        print(f"kiosk: reading {actual}, the config the running demo made of {path.name} (with its broker and "
              "content server)", file=sys.stderr)
    return actual


def _run(args: argparse.Namespace) -> int:
    _setup_logging(args.verbose)
    from kiosk.config import ConfigError, load_config
    try:
        config = load_config(args.config)          # the daemon runs exactly the file it is given
    except ConfigError as exc:
        print(f"kiosk: config error: {exc}", file=sys.stderr)
        return 2
    ui = None
    if not args.headless:
        from kiosk.ui import UIError
        from kiosk.ui.runner import build_ui
        try:
            ui = build_ui(config)          # fonts and sounds; the window opens once the core runs
        except UIError as exc:
            print(f"kiosk: the touch screen cannot start: {exc}\n(kiosk run --headless runs the bookcase "
                  "without it)", file=sys.stderr)
            return 1
    from kiosk.app import App
    from kiosk.store.db import StoreError
    try:
        app = App(config)
    except StoreError as exc:
        logging.getLogger("kiosk").error("%s", exc)
        if ui is not None:
            ui.close()
        return 1
    if ui is not None:
        from kiosk.ui.runner import run_with_ui
        return run_with_ui(app, ui)
    app.run()
    return 0


def _screenshot(args: argparse.Namespace) -> int:
    from kiosk.ui.samples import STATES
    if args.state not in STATES:
        print(f"kiosk: screenshot: no state {args.state!r} (states: {', '.join(STATES)})", file=sys.stderr)
        return 2
    try:
        width, height = (int(n) for n in args.size.lower().split("x"))
        if not (320 <= width <= 7680 and 320 <= height <= 7680):
            raise ValueError
    except ValueError:
        print(f"kiosk: screenshot: --size {args.size!r} is not WIDTHxHEIGHT (320..7680 each)", file=sys.stderr)
        return 2
    from kiosk.ui import UIError
    from kiosk.ui.screenshot import screenshot
    try:
        out = screenshot(args.state, args.lang, args.out, (width, height))
    except UIError as exc:
        print(f"kiosk: screenshot: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"kiosk: screenshot: cannot write {args.out} ({exc.strerror or exc})", file=sys.stderr)
        return 1
    print(out)
    return 0


def _check_config(args: argparse.Namespace) -> int:
    from kiosk.config import ConfigError, load_config
    from kiosk.config_check import warnings
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"kiosk: {args.config}: {len(exc.errors)} mistake(s); the bookcase would not start:", file=sys.stderr)
        for error in exc.errors:
            print(f"  {error.key or '(file)'}: {error.message}", file=sys.stderr)
        return 1
    found = warnings(config)
    for warning in found:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"{args.config}: {'ok' if not found else f'ok, with {len(found)} warning(s)'} — bookcase "
          f"{config.bookcase.id} ({config.bookcase.name}), library {config.library}, "
          f"{len(config.doors)} doors, data in {config.data_dir}")
    for door in config.doors:
        print(f"  door {door.number}: board {door.board} lock {door.lock}, reader COM-ADR {door.reader}, "
              f"capacity {door.capacity}")
    return 3 if found and args.strict else 0


def _intent(args: argparse.Namespace) -> int:
    config = _load(args.config)
    if config.intent_socket is None:
        print(f"kiosk: {args.config} sets no intent_socket", file=sys.stderr)
        return 2
    if args.action == "door" and args.door is None:
        print("kiosk: intent door needs a door number", file=sys.stderr)
        return 2
    if args.action == "door" and args.door not in {door.number for door in config.doors}:
        print(f"kiosk: bookcase {config.bookcase.id} has no door {args.door} (its doors: "
              f"{', '.join(str(door.number) for door in config.doors)})", file=sys.stderr)
        return 2
    from kiosk.intents import send
    request = {"intent": args.action, **({"door": args.door} if args.action == "door" else {})}
    try:
        reply = send(config.intent_socket, request)
    except OSError as exc:
        print(f"kiosk: no daemon answering at {config.intent_socket} ({exc.strerror or exc})", file=sys.stderr)
        return 1
    print(json.dumps(reply, ensure_ascii=False, indent=2))
    if reply.get("result"):              # what it did, in a line, after the state it left (kiosk.intents.result)
        print(f"kiosk: {reply['result']}", file=sys.stderr)
    return 0 if reply.get("ok") else 1


def _ledger(args: argparse.Namespace) -> int:
    config = _load(args.config)
    from kiosk.store.ledger import Store
    store = Store(config.db_path, config.bookcase.id)
    try:
        loans, returns, outbox = store.loans(), store.returns(), store.outbox()
        if args.json:
            print(json.dumps({"loans": loans, "returns": returns, "outbox": outbox}, ensure_ascii=False, indent=2))
            return 0
        titles = store.titles({r["item_id"] for r in loans + returns})
        print(f"bookcase {config.bookcase.id}: {len(loans)} loans ({sum(1 for r in loans if not r['returned_at'])} "
              f"open), {len(returns)} returns, {store.outbox_depth()} of {len(outbox)} events unsent")
        for r in loans:
            state = f"returned {r['returned_at'][:16]}" if r["returned_at"] else f"due {r['due_at']}"
            print(f"  loan   {r['item_id']} 《{titles.get(r['item_id'], '?')}》 door {r['door']} "
                  f"{r['loaned_at'][:16]} {state}")
        for r in returns:
            print(f"  return {r['item_id']} 《{titles.get(r['item_id'], '?')}》 door {r['door']} {r['returned_at'][:16]}")
    finally:
        store.close()
    return 0


def _tag(args: argparse.Namespace) -> int:
    from kiosk.drivers.rfid.tag import LibraryTag, TagDecodeError, decode_tag
    if args.tag_command == "decode":
        try:
            data = bytes.fromhex(args.hex.replace(" ", "").replace(":", ""))
        except ValueError:
            print("kiosk: tag decode: expected hexadecimal bytes", file=sys.stderr)
            return 2
        try:
            tag, was_reversed = decode_tag(data)
        except TagDecodeError as exc:
            print(f"kiosk: not a valid library tag: {exc}", file=sys.stderr)
            return 1
        print(json.dumps({"item_id": tag.item_id, "usage": int(tag.usage), "version": tag.version,
                          "parts_in_set": tag.parts_in_set, "part_number": tag.part_number,
                          "country": tag.country, "isil": tag.isil, "reversed_blocks": was_reversed},
                         ensure_ascii=False, indent=2))
        return 0
    try:
        data = LibraryTag(item_id=args.barcode, usage=args.usage, country=args.country,
                          isil=args.isil).encode(reversed_blocks=args.reversed)
    except ValueError as exc:
        print(f"kiosk: tag encode: {exc}", file=sys.stderr)
        return 2
    print(data.hex().upper())
    return 0


COMMANDS = {"run": _run, "check-config": _check_config, "intent": _intent, "ledger": _ledger, "tag": _tag,
            "screenshot": _screenshot}

if __name__ == "__main__":
    sys.exit(main())
