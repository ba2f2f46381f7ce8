"""The patron cache: bulk load from the library's snapshot file (JSON lines) and single updates.

One JSON object per line::

    {"key": "<32 hex: HMAC of the card>", "class": "adult", "status": "active", "loans_elsewhere": 2}
    {"card": "3101120000018", "class": "child", "status": "overdue"}

``key`` is the patron key (docs/design.md §7); a line may give the raw ``card`` number or UID instead, which is
hashed on load and never stored. A card number is given as its barcode reads; a UID as the card reader
reports it, upper-case hex without separators (``04A224B2C35E80``), or it will never match a tap. ``status`` is one of active, expired, blocked, lost, overdue.
``loans_elsewhere`` counts the patron's open loans the library knows of that were not made at a
bookcase (the bookcases count their own through sync). ``class`` must be one of the bookcase's loan classes
when it has any ([policy.classes]). A full snapshot (the default) also removes patrons it no longer lists.

A load is all or nothing: the whole file is checked first, and if any line is wrong nothing changes — a
snapshot loaded in part would remove the patrons whose lines have a typo — and ``SnapshotError`` lists
every bad line with its number, the field and the problem.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Collection, Iterable, Iterator

from kiosk.core.policy import STATUSES, patron_key
from kiosk.store.db import transaction
from kiosk.store.ledger import Store, _now

_KEY = re.compile(r"[0-9a-f]{32}")
MAX_ERRORS_KEPT = 10_000      # every bad line of any real file; a file of nothing but garbage stops here


class PatronLineError(ValueError):
    """One record is wrong: ``field`` (or "line" for the whole record) and what is wrong with it."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}" if field != "line" else message)


@dataclass
class LoadReport:
    loaded: int = 0
    removed: int = 0
    bad_lines: int = 0
    errors: list[str] = field(default_factory=list)      # "line N: field: what is wrong", in file order

    def note(self, line_no: int, message: str) -> None:
        self.bad_lines += 1
        if len(self.errors) < MAX_ERRORS_KEPT:
            self.errors.append(f"line {line_no}: {message}")


class SnapshotError(ValueError):
    """The snapshot has bad lines, so nothing was loaded; ``report.errors`` lists them."""

    def __init__(self, report: LoadReport) -> None:
        self.report = report
        super().__init__(f"{report.bad_lines} bad line(s): nothing was loaded, the patron cache is unchanged")


def parse_patron(obj: object, secret: str, classes: Collection[str] = ()) -> tuple[str, str, str, int]:
    """One snapshot record -> (patron key, class, status, loans elsewhere); PatronLineError if wrong.
    ``classes``: the loan classes the bookcase knows (any class when empty)."""
    if not isinstance(obj, dict):
        raise PatronLineError("line", "expected a JSON object")
    unknown = set(obj) - {"key", "card", "class", "status", "loans_elsewhere"}
    if unknown:
        raise PatronLineError("line", f"unknown field(s) {', '.join(sorted(map(str, unknown)))}")
    if ("key" in obj) == ("card" in obj):
        raise PatronLineError("line", "give exactly one of key (patron key) or card (card number or UID)")
    if "key" in obj:
        key = obj["key"]
        if not isinstance(key, str) or not _KEY.fullmatch(key):
            raise PatronLineError("key", "must be 32 lower-case hex characters")
    else:
        card = obj["card"]
        if not isinstance(card, str) or not card.strip():
            raise PatronLineError("card", "must be a non-empty string")
        key = patron_key(secret, card)
    patron_class = obj.get("class")
    if not isinstance(patron_class, str) or not patron_class.strip():
        raise PatronLineError("class", "must be a non-empty string, e.g. adult, branch, child")
    if classes and patron_class not in classes:
        raise PatronLineError("class", f"{patron_class!r} is not a loan class of this bookcase "
                                       f"([policy.classes]: {', '.join(sorted(classes))})")
    status = obj.get("status")
    if status not in STATUSES:
        raise PatronLineError("status", f"must be one of {', '.join(STATUSES)}, got {status!r}")
    loans = obj.get("loans_elsewhere", 0)
    if not isinstance(loans, int) or isinstance(loans, bool) or not 0 <= loans <= 1000:
        raise PatronLineError("loans_elsewhere", "must be a whole number from 0 to 1000")
    return key, patron_class, status, loans


def read_lines(lines: Iterable[str | bytes], secret: str, report: LoadReport,
               classes: Collection[str] = ()) -> Iterator[tuple]:
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            yield parse_patron(json.loads(line), secret, classes)
        except UnicodeDecodeError:
            report.note(number, "not UTF-8 text")
        except ValueError as exc:          # JSONDecodeError and PatronLineError are ValueErrors
            report.note(number, str(exc) if isinstance(exc, PatronLineError) else f"not JSON ({exc})")
        except RecursionError:
            report.note(number, "not JSON (nested too deeply)")


def load(store: Store, lines: Iterable[str | bytes], secret: str, *, full: bool = True,
         classes: Collection[str] = ()) -> LoadReport:
    """Load a snapshot in one transaction, all or nothing: SnapshotError (and no change) if any line is bad.
    With ``full``, patrons not in it are removed."""
    report = LoadReport()
    now = _now()
    upsert = ("INSERT INTO patrons (patron_key, patron_class, status, loans_elsewhere, card_hint, updated) "
              "VALUES (?, ?, ?, ?, '', ?) ON CONFLICT(patron_key) DO UPDATE SET "
              "patron_class = excluded.patron_class, status = excluded.status, "
              "loans_elsewhere = excluded.loans_elsewhere, updated = excluded.updated")
    rows = [(*row, now) for row in read_lines(lines, secret, report, classes)]
    if report.bad_lines:
        raise SnapshotError(report)
    with transaction(store.db) as conn:
        conn.executemany(upsert, rows)
        # The library's word restarts each listed patron's offline loan cap.
        if full:
            conn.execute("UPDATE loans SET offline = 0 WHERE offline = 1")
        else:
            conn.executemany("UPDATE loans SET offline = 0 WHERE patron_key = ? AND offline = 1",
                             [(row[0],) for row in rows])
        if full:
            # Patrons the snapshot does not list are gone from the library.
            conn.execute("CREATE TEMP TABLE IF NOT EXISTS snapshot_keys (patron_key TEXT PRIMARY KEY)")
            conn.execute("DELETE FROM snapshot_keys")
            conn.executemany("INSERT OR IGNORE INTO snapshot_keys VALUES (?)", [(row[0],) for row in rows])
            report.removed = conn.execute("DELETE FROM patrons WHERE patron_key NOT IN "
                                          "(SELECT patron_key FROM snapshot_keys)").rowcount
            conn.execute("DELETE FROM snapshot_keys")
    report.loaded = len(rows)
    return report


def update(store: Store, record: dict, secret: str, classes: Collection[str] = ()) -> str:
    """Apply one patron update (same fields as a snapshot line); returns the patron key."""
    key, patron_class, status, loans = parse_patron(record, secret, classes)
    store.upsert_patrons([{"patron_key": key, "patron_class": patron_class, "status": status,
                           "loans_elsewhere": loans}])
    return key
