"""`kiosk sync status`: the fleet link as the bookcase's database records it (works with or without the daemon)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Callable

EXAMPLES = "  kiosk sync status --config config/demo.toml    (outbox, last sync, refused messages, gateway answers)\n"


def register(sub: argparse._SubParsersAction, commands: dict[str, Callable[[argparse.Namespace], int]]) -> None:
    parser = sub.add_parser("sync", help="the fleet link: outbox, last sync, refused messages, other bookcases")
    parser.add_argument("action", choices=["status"])
    parser.add_argument("--config", required=True, type=Path)
    parser.add_argument("--json", action="store_true")
    commands["sync"] = _status


def _status(args: argparse.Namespace) -> int:
    from kiosk.config import ConfigError, load_config
    from kiosk.logtext import shown
    from kiosk.store import replica
    from kiosk.store.ledger import Store
    from kiosk.cli import _running
    try:
        config = load_config(_running(args.config))
    except ConfigError as exc:
        print(f"kiosk: config error: {exc}", file=sys.stderr)
        return 2
    store = Store(config.db_path, config.bookcase.id)
    try:
        st = replica.status(store.db)
    finally:
        store.close()
    m = config.mqtt
    st["broker"] = f"{m.host}:{m.port}" if m else None
    if args.json:
        print(json.dumps(st, ensure_ascii=False, indent=2))
        return 0
    c = st["counters"]
    if m is None:
        print(f"bookcase {config.bookcase.id}: no [mqtt] section, so no fleet link: the bookcase runs offline")
    else:
        print(f"bookcase {config.bookcase.id}: fleet link to {st['broker']} ({'TLS' if m.tls else 'no TLS'}), "
              f"topics under {m.topic_root}")
    print(f"  outbox: {st['outbox_depth']} event(s) unsent (oldest {st['oldest_unsent'] or '-'}), {st['sent']} sent; "
          f"the library's gateway applied {st['gateway'].get('applied', 0)}, "
          f"rejected {st['gateway'].get('rejected', 0)}")
    print(f"  last sync: {st['last_sync'] or 'never'}; the link to the broker dropped {c.get('link_lost', 0)} "
          f"time(s)")
    print(f"  applied here: {c.get('events_applied', 0)} loans and returns from other bookcases, "
          f"{c.get('holdings_applied', 0)} holdings, {c.get('patrons_applied', 0)} patron statuses; "
          f"{c.get('duplicates', 0)} duplicates ignored; {c.get('broker_refused', 0)} events refused by the broker")
    bad = {k[4:]: v for k, v in sorted(c.items()) if k.startswith("bad_")}
    print("  refused messages: " + (", ".join(f"{k.replace('_', ' ')} {v}" for k, v in bad.items()) or "none"))
    if st["parked"]:
        print(f"  parked for staff: {len(st['parked'])} message(s) this bookcase could not apply after several tries "
              "(a fault here, not in the message; the fleet link went on without them). Each start of the daemon "
              "tries them again: fix the fault, then restart it:")
        for row in st["parked"][-10:]:
            print(f"    #{row['id']} {shown(row['topic'])} at {row['parked_at']}: {shown(row['error'])}")
    for p in st["peers"]:
        print(f"  bookcase {p['bookcase']} {shown(p['name'])}: holds {p['holdings']} books (as of {p['holdings_ts']})")
    print(f"  open loans made at other bookcases: {st['remote_loans_open']}")
    return 0
