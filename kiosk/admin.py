"""Operator tools of the `kiosk` command: the patron cache, staff cards and test e-card codes."""

from __future__ import annotations

import argparse
import getpass
import json
import re
import sys
import time
from pathlib import Path
from typing import Callable

EXAMPLES = """  kiosk patrons load --config F patrons.jsonl    (the library's snapshot; --merge to only add/update)
  kiosk patrons show --config F --card 3101120000018
  kiosk staff add --config F --card 04A1B2C3D4E5F6 --name "restock team"   (asks for the PIN twice)
  kiosk staff list --config F
  kiosk staff remove --config F --card 04A1B2C3D4E5F6
  kiosk ecard issue --config F --card 3101120000018   (a test QR code, valid 60 s)
"""


SHOW_ERRORS = 100         # bad snapshot lines printed; the count of the rest follows, by field
_UID_HEX = re.compile(r"(?:[0-9A-Fa-f]{2}){4,10}")


def _card(text: str) -> str:
    """The card as the bookcase reads it. A UID typed with separators or in lower case (04:a2:24:b2…) is
    taken in the card reader's form (04A224B2…), or its patron key would never match a tap; said on stderr."""
    card = text.strip()
    compact = re.sub(r"[:\- ]", "", card)
    if (compact != card or compact != compact.upper()) and _UID_HEX.fullmatch(compact):
        print(f"kiosk: card {card!r} taken as the card UID {compact.upper()}, as the card reader reports it",
              file=sys.stderr)
        return compact.upper()
    return card


def register(sub: argparse._SubParsersAction, commands: dict[str, Callable[[argparse.Namespace], int]]) -> None:
    patrons = sub.add_parser("patrons", help="load or look up the patron cache")
    psub = patrons.add_subparsers(dest="patrons_command", required=True)
    load = psub.add_parser("load", help="load the library's patron snapshot (JSON lines)")
    load.add_argument("--config", required=True, type=Path)
    load.add_argument("file", type=Path, help="JSON lines: key or card, class, status, loans_elsewhere")
    load.add_argument("--merge", action="store_true",
                      help="add and update only; without it, patrons missing from the file are removed")
    show = psub.add_parser("show", help="what the bookcase knows of one card")
    show.add_argument("--config", required=True, type=Path)
    who = show.add_mutually_exclusive_group(required=True)
    who.add_argument("--card", help="card number or card UID")
    who.add_argument("--key", help="patron key (32 hex)")

    staff = sub.add_parser("staff", help="staff cards that may restock (card + PIN)")
    ssub = staff.add_subparsers(dest="staff_command", required=True)
    add = ssub.add_parser("add", help="add a staff card, or change its PIN")
    add.add_argument("--config", required=True, type=Path)
    add.add_argument("--card", required=True, help="the staff card's number, or its UID as the card reader reports it "
                     "(upper-case hex, e.g. 04A1B2C3D4E5F6)")
    add.add_argument("--name", help="who holds it (shown to staff only); a PIN change keeps the name unless given")
    add.add_argument("--pin-stdin", action="store_true",
                     help="read the PIN from standard input (one line; for scripts) instead of asking twice")
    listing = ssub.add_parser("list", help="the registered staff cards (never their PINs)")
    listing.add_argument("--config", required=True, type=Path)
    remove = ssub.add_parser("remove", help="withdraw a staff card")
    remove.add_argument("--config", required=True, type=Path)
    remove.add_argument("--card", required=True, help="the staff card's number or UID")

    ecard = sub.add_parser("ecard", help="the library's e-card QR codes")
    esub = ecard.add_subparsers(dest="ecard_command", required=True)
    issue = esub.add_parser("issue", help="make an e-card code for testing (the WeChat side makes real ones)")
    issue.add_argument("--config", required=True, type=Path)
    who = issue.add_mutually_exclusive_group(required=True)
    who.add_argument("--card", help="card number or card UID")
    who.add_argument("--key", help="patron key (32 hex)")
    issue.add_argument("--lifetime", type=int, default=60, help="seconds the code is valid (default 60)")
    issue.add_argument("--age", type=int, default=0, help="pretend it was issued this many seconds ago")

    commands.update(patrons=_patrons, staff=_staff, ecard=_ecard)


def _store(config):
    from kiosk.store.db import StoreError
    from kiosk.store.ledger import Store
    try:
        return Store(config.db_path, config.bookcase.id)
    except StoreError as exc:
        print(f"kiosk: {exc}", file=sys.stderr)
        raise SystemExit(1) from None


def _patrons(args: argparse.Namespace) -> int:
    from kiosk.cli import _load
    from kiosk.core.policy import patron_key
    from kiosk.store import patrons, replica
    config = _load(args.config)
    store = _store(config)
    try:
        if args.patrons_command == "load":
            started = time.monotonic()
            try:
                with args.file.open("rb") as f:
                    report = patrons.load(store, f, config.secret, full=not args.merge,
                                          classes=set(config.policy.class_limits))
            except OSError as exc:
                print(f"kiosk: cannot read {args.file} ({exc.strerror})", file=sys.stderr)
                return 1
            except patrons.SnapshotError as exc:
                _print_bad_lines(args.file, exc)
                return 1
            print(f"{args.file}: {report.loaded} patrons loaded, {report.removed} removed, "
                  f"in {time.monotonic() - started:.1f} s")
            return 0
        key = args.key or patron_key(config.secret, _card(args.card))     # as the daemon keys a card it reads
        patron = store.patron(key)
        if patron is None:
            print(f"patron {key}: not in this bookcase's cache")
            return 1
        at_other_bookcases = replica.open_remote_loans(store.db, key)
        print(json.dumps({"key": key, "class": patron.patron_class, "status": patron.status,
                          "loans_elsewhere": patron.loans_elsewhere,            # the library's count, not bookcases'
                          "open_loans_here": store.open_loan_count(key) - at_other_bookcases,
                          "open_loans_at_other_bookcases": at_other_bookcases,
                          "offline_loans": store.offline_loan_count(key)}, ensure_ascii=False))
        return 0
    finally:
        store.close()


def _print_bad_lines(path: Path, exc) -> None:
    """A refused snapshot: why, its bad lines (the first SHOW_ERRORS), then how many more and which fields."""
    report = exc.report
    print(f"kiosk: {path}: {exc}", file=sys.stderr)
    for error in report.errors[:SHOW_ERRORS]:
        print(f"  {error}", file=sys.stderr)
    if report.bad_lines > SHOW_ERRORS:
        by_field = ", ".join(f"{name} {count:,}" for name, count in report.fields.most_common())
        print(f"  … and {report.bad_lines - SHOW_ERRORS:,} more bad line(s); bad lines by field: {by_field}",
              file=sys.stderr)


def _staff(args: argparse.Namespace) -> int:
    from kiosk.cli import _load
    from kiosk.core.policy import card_hint, patron_key
    from kiosk.core.staff import hash_pin, valid_pin
    config = _load(args.config)
    store = _store(config)
    if args.staff_command == "list":
        try:
            rows = store.staff()
        finally:
            store.close()
        print(f"bookcase {config.bookcase.id}: {len(rows)} staff card(s)")
        for row in rows:
            print(f"  card {row['card_hint'] or row['staff_key'][:8] + '…'}  {row['name'] or '(no name)'}  "
                  f"since {row['updated'][:16]}")
        return 0
    card = _card(args.card)
    key = patron_key(config.secret, card)
    try:
        if args.staff_command == "remove":
            if not store.remove_staff(key):
                print(f"staff card {card_hint(card)} was not registered", file=sys.stderr)
                return 1
            print(f"staff card {card_hint(card)} removed")
            return 0
        if args.pin_stdin:
            pin = sys.stdin.readline().strip()
        else:
            pin = getpass.getpass("PIN (4-8 digits): ")
            if valid_pin(pin) and getpass.getpass("the same PIN again: ") != pin:
                print("kiosk: the two PINs differ; nothing changed", file=sys.stderr)
                return 2
        if not valid_pin(pin):
            print("kiosk: a staff PIN is 4 to 8 digits; nothing changed", file=sys.stderr)
            return 2
        name = args.name
        if name is None:        # a PIN change keeps who holds the card
            name = next((row["name"] for row in store.staff() if row["staff_key"] == key), "")
        changed = store.set_staff(key, hash_pin(pin), name, card_hint(card))
        print(f"staff card {card_hint(card)} {'changed: new PIN' if changed else 'registered'}"
              f"{' for ' + name if name else ''}")
        return 0
    finally:
        store.close()


def _ecard(args: argparse.Namespace) -> int:
    from kiosk.cli import _load
    from kiosk.core import ecard
    from kiosk.core.policy import patron_key
    config = _load(args.config)
    key = config.ecard.key
    if not key:
        print(f"kiosk: {args.config} has no [ecard] key, so this bookcase accepts no e-card codes", file=sys.stderr)
        return 2
    try:
        print(ecard.issue(key, args.key or patron_key(config.secret, _card(args.card)), int(time.time()) - args.age,
                          lifetime_s=args.lifetime))
    except ValueError as exc:
        print(f"kiosk: {exc}", file=sys.stderr)
        return 2
    return 0
