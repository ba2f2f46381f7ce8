"""The `citybook-gateway` command: run the gateway, show its status, import patrons, work the review queue."""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from gateway import __version__
from gateway.config import ConfigError, GatewayConfig, load_gateway_config
from gateway.journal import JournalError, ReviewError, open_journal

EXAMPLES = """examples:
  citybook-gateway run --config /etc/citybook/gateway.toml
  citybook-gateway check-config /etc/citybook/gateway.toml
  citybook-gateway status --config /etc/citybook/gateway.toml          (backlog, ILS, review queue)
  citybook-gateway patrons import --config gateway.toml patrons.csv    (CSV or JSON lines; see docs/gateway.md)
  citybook-gateway review list --config gateway.toml
  citybook-gateway review retry --config gateway.toml 3f2a9c1e --note "item record fixed"
  citybook-gateway review resolve --config gateway.toml 3f2a9c1e --note "lent at the desk by hand"
  citybook-gateway user add --config gateway.toml --role operator zhang   (asks for the password twice)
  citybook-gateway console --config gateway.toml      (the operators' console alone, beside a running gateway)
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="citybook-gateway", epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="The City Bookcase library gateway: applies every bookcase loan and return to the library "
                    "system (ILS) over SIP2, exactly once and in order, acknowledges them to the bookcases, and "
                    "publishes patron statuses.")
    parser.add_argument("--version", action="version", version=f"citybook-gateway {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the gateway (until SIGTERM or Ctrl-C)")
    run.add_argument("--config", required=True, type=Path, help="the gateway's TOML config file")
    run.add_argument("-v", "--verbose", action="store_true", help="debug logging")

    check = sub.add_parser("check-config", help="check a config file and print what it says (no secrets)")
    check.add_argument("config", type=Path)

    status = sub.add_parser("status", help="backlog depth and age, the ILS, acks due, the review queue, "
                                           "each gateway process's heartbeat")
    status.add_argument("--config", required=True, type=Path)
    status.add_argument("--json", action="store_true", help="machine-readable")

    patrons = sub.add_parser("patrons", help="the patron map")
    psub = patrons.add_subparsers(dest="patrons_command", required=True)
    imp = psub.add_parser("import", help="import the library's patron export (CSV or JSON lines: card, uids, "
                                         "class, status[, patron_id]); writes the bookcases' snapshot")
    imp.add_argument("--config", required=True, type=Path)
    imp.add_argument("export", type=Path, help="the export file")
    imp.add_argument("--snapshot", type=Path, help="where to write the bookcases' snapshot for `kiosk patrons "
                                                   "load` (default: [patrons] snapshot)")
    imp.add_argument("--partial", action="store_true", help="the export lists only some patrons: do not expire "
                                                            "the others")

    review = sub.add_parser("review", help="the review queue: what the ILS refused")
    rsub = review.add_subparsers(dest="review_command", required=True)
    rlist = rsub.add_parser("list", help="rejections still to be looked at, with the ILS's screen message")
    rlist.add_argument("--config", required=True, type=Path)
    rlist.add_argument("--all", action="store_true", help="resolved ones too")
    rlist.add_argument("--json", action="store_true")
    for name, text in (("retry", "send a rejected event to the ILS again (after fixing the cause)"),
                       ("resolve", "close a rejection by hand, with a note saying how")):
        p = rsub.add_parser(name, help=text)
        p.add_argument("--config", required=True, type=Path)
        p.add_argument("event", help="the event id (its first 8 characters are enough)")
        p.add_argument("--note", default="", required=name == "resolve", help="what was done")
        p.add_argument("--by", default=_who(), help="who does it (default: %(default)s)")

    console = sub.add_parser("console", help="run the operators' console alone (the gateway's `run` serves it "
                                            "too when [console] listen is set)")
    console.add_argument("--config", required=True, type=Path)
    console.add_argument("--listen", help="HOST:PORT (default: [console] listen, else 127.0.0.1:8080)")
    console.add_argument("-v", "--verbose", action="store_true")

    user = sub.add_parser("user", help="the console's staff accounts")
    usub = user.add_subparsers(dest="user_command", required=True)
    uadd = usub.add_parser("add", help="add an account, or change its password and role")
    uadd.add_argument("--config", required=True, type=Path)
    uadd.add_argument("name")
    uadd.add_argument("--role", choices=["viewer", "operator"], default="viewer",
                      help="viewer: looks; operator: also acknowledges alarms and works the review queue")
    uadd.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    ulist = usub.add_parser("list", help="the accounts and their roles (never a password)")
    ulist.add_argument("--config", required=True, type=Path)
    urm = usub.add_parser("remove", help="remove an account (its sessions end)")
    urm.add_argument("--config", required=True, type=Path)
    urm.add_argument("name")

    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    except (JournalError, ReviewError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _who() -> str:
    try:
        return os.environ.get("SUDO_USER") or getpass.getuser()
    except (KeyError, OSError):
        return "staff"


def _setup_logging(verbose: bool = False) -> None:
    from kiosk import logtext
    logtext.configure(logging.DEBUG if verbose else logging.INFO,
                      "%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S", sys.stdout)


def _run(args: argparse.Namespace) -> int:
    _setup_logging(args.verbose)
    cfg = load_gateway_config(args.config)
    from gateway.service import Gateway
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    gateway = Gateway(cfg)
    console = None
    if cfg.console.listen:
        from gateway.console import ConsoleServer
        console = ConsoleServer(cfg, gateway.journal)
        console.start()
    try:
        gateway.run(stop)
    finally:
        if console is not None:
            console.stop()
    return 0


def _console(args: argparse.Namespace) -> int:
    _setup_logging(args.verbose)
    from dataclasses import replace

    from gateway.console import ConsoleServer
    cfg = load_gateway_config(args.config)
    listen = args.listen or cfg.console.listen or "127.0.0.1:8080"
    cfg = replace(cfg, console=replace(cfg.console, listen=listen))
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    journal = open_journal(cfg.journal)
    server = ConsoleServer(cfg, journal)
    try:
        server.start()
        print(f"the operators' console: {server.url}", flush=True)
        stop.wait()
    finally:
        server.stop()
        journal.close()
    return 0


def _user(args: argparse.Namespace) -> int:
    from gateway.console.auth import hash_password
    cfg = load_gateway_config(args.config)
    journal = open_journal(cfg.journal)
    try:
        if args.user_command == "list":
            users = journal.users()
            print(f"{len(users)} console account(s)")
            for u in users:
                off = " (disabled)" if u["disabled"] else ""
                print(f"  {u['name']}: {u['role']}{off}, since {u['created_at'][:10]}")
            return 0
        if args.user_command == "remove":
            if not journal.user_remove(args.name):
                print(f"error: no console account {args.name!r}", file=sys.stderr)
                return 1
            journal.audit(_who(), "user remove", args.name)
            print(f"account {args.name} removed")
            return 0
        if args.password_stdin:
            password = sys.stdin.readline().rstrip("\n")
        else:
            password = getpass.getpass(f"password for {args.name}: ")
            if getpass.getpass("the same password again: ") != password:
                print("error: the two passwords differ; nothing changed", file=sys.stderr)
                return 2
        try:
            changed = journal.user_set(args.name, hash_password(password), args.role)
        except ValueError as exc:
            print(f"error: {exc}; nothing changed", file=sys.stderr)
            return 2
        journal.audit(_who(), "user changed" if changed else "user added", args.name, args.role)
        print(f"account {args.name} ({args.role}) {'changed: new password' if changed else 'added'}")
        return 0
    finally:
        journal.close()


def _check_config(args: argparse.Namespace) -> int:
    cfg = load_gateway_config(args.config)
    print(_describe(cfg))
    return 0


def _describe(cfg: GatewayConfig) -> str:
    m, i = cfg.mqtt, cfg.ils
    return "\n".join([
        f"{cfg.path}: OK",
        f"  gateway {cfg.id} of library {cfg.library}",
        f"  broker {m.host}:{m.port} ({'TLS' if m.tls else 'no TLS'}), client id {m.client_id}, "
        f"user {m.username or '(none)'}, topics under {m.topic_root}",
        f"  ILS {i.host}:{i.port}, SIP2 user {i.user}, location {i.location}, {i.charset}, "
        f"{i.pool_size} connection(s), answer within {i.timeout_s:g} s",
        f"  journal: {cfg.journal.describe()}",
        f"  patrons: snapshot {cfg.patrons.snapshot or '(not written)'}, every status asked every "
        f"{cfg.patrons.refresh_interval_s:g} s",
        f"  order: hold {cfg.order.hold_s:g} s; acks: {cfg.acks.batch} per message, wait {cfg.acks.delay_ms} ms"])


def _status(args: argparse.Namespace) -> int:
    cfg = load_gateway_config(args.config)
    journal = open_journal(cfg.journal)
    try:
        st = journal.status()
    finally:
        journal.close()
    if args.json:
        print(json.dumps(st, indent=2, ensure_ascii=False, sort_keys=True))
        return 0
    b = st["backlog"]
    age = f", the oldest waiting {b['oldest_age_s']:.0f} s" if b["oldest_age_s"] is not None else ""
    print(f"journal: {st['journal']}")
    print(f"backlog: {b['depth']} loan(s)/return(s) to apply ({b['received']} waiting, {b['held']} held for "
          f"order, {b['sending']} being sent){age}")
    print(f"acks due: {b['acks_due']}; review queue: {b['review_open']} open")
    print("events: " + (", ".join(f"{k} {v}" for k, v in sorted(st["events"].items())) or "none yet")
          + f"; unreadable messages refused: {st['refused_unreadable']}; bookcases seen: {st['bookcases']}")
    print(f"patrons: {st['patrons']['keys']} key(s), {st['patrons']['to_publish']} status(es) to publish, "
          f"{st['patrons']['to_ask']} to ask the ILS about after a loan or return")
    for g in st["gateways"]:
        ils = g.get("ils") or {}
        ils_text = {True: "up", False: "DOWN", None: "not tried"}[ils.get("up")]
        err = f" ({ils['last_error']})" if ils.get("last_error") and ils.get("up") is False else ""
        print(f"gateway {g['id']}: heartbeat {g['heartbeat_age_s']:.0f} s ago, broker "
              f"{'connected' if g.get('online') else 'NOT connected'}, ILS {ils_text}{err}, "
              f"applied {g.get('counters', {}).get('applied', 0)} since {g['started_at'][:19]}")
    return 0


def _patrons(args: argparse.Namespace) -> int:
    from gateway.patrons import import_export
    cfg = load_gateway_config(args.config)
    journal = open_journal(cfg.journal)
    try:
        report = import_export(journal, args.export, cfg.patrons.secret, snapshot=args.snapshot or cfg.patrons.snapshot,
                               full=not args.partial)
    finally:
        journal.close()
    c = report.counts
    print(f"{args.export}: {report.patrons} patron(s), {report.keys} card key(s): {c.added} new, {c.changed} changed, "
          f"{c.unchanged} unchanged, {c.removed} no longer listed (now expired); {report.skipped} line(s) skipped")
    for line in report.errors:
        print(f"  {line}")
    if report.ignored_columns:
        print(f"  ignored columns (never stored): {', '.join(sorted(report.ignored_columns))}")
    if report.snapshot:
        print(f"bookcases' snapshot written to {report.snapshot} (copy it to each bookcase: kiosk patrons load)")
    print(f"{c.added + c.changed + c.removed} status(es) to publish: the running gateway publishes them")
    return 0 if not report.skipped else 1


def _review(args: argparse.Namespace) -> int:
    cfg = load_gateway_config(args.config)
    journal = open_journal(cfg.journal)
    try:
        if args.review_command == "list":
            items = journal.review_list(everything=args.all)
            if args.json:
                print(json.dumps(items, indent=2, ensure_ascii=False))
            elif not items:
                print("the review queue is empty")
            for r in items if not args.json else []:
                print(f"{r['id'][:8]}  {r['type']} of {r['item']} at {r['bookcase']} (seq {r['seq']}, {r['ts'][:19]}), "
                      f"patron {r['patron'] or '-'}: {r['review']}")
                if r["state"] == "rejected":
                    print(f"          the ILS said: {r['screen_message'] or r['reason'] or '(nothing)'}")
                else:
                    print(f"          {r['state']} ({r['reason'] or '-'}): {r['note'] or '(no note)'}")
                for h in r["history"]:
                    print(f"          {h['at'][:19]} {h['action']} by {h['who']}" + (f": {h['note']}" if h["note"]
                                                                                     else ""))
            return 0
        if args.review_command == "retry":
            full = journal.review_retry(args.event, args.by, args.note)
            print(f"event {full}: back in the queue; the running gateway sends it to the ILS again")
        else:
            full = journal.review_resolve(args.event, args.by, args.note)
            print(f"event {full}: resolved by {args.by}")
        return 0
    finally:
        journal.close()


COMMANDS = {"run": _run, "check-config": _check_config, "status": _status, "patrons": _patrons, "review": _review,
            "console": _console, "user": _user}
