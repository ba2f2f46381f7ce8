"""The patron cache: bulk load from the library's snapshot file (JSON lines) and single updates.

One JSON object per line::

    {"key": "<32 hex: HMAC of the card>", "class": "adult", "status": "active", "loans_elsewhere": 2}
    {"card": "3101120000018", "class": "child", "status": "overdue"}

``key`` is the patron key (docs/design.md §7); a line may give the raw ``card`` number or UID instead, which is
hashed on load and never stored. A card number is given as its barcode reads; a UID as the card reader
reports it, upper-case hex without separators (``04A224B2C35E80``), or it will never match a tap. ``status``
is one of active, expired, blocked, lost, overdue. ``loans_elsewhere`` counts the patron's open loans the
library knows of that were not made at a bookcase (the bookcases count their own through sync). ``class`` must be one of the bookcase's loan classes
when it has any ([policy.classes]). A full snapshot (the default) also removes patrons it no longer lists.

A load is all or nothing: the whole file is checked first, and if any line is wrong nothing changes — a
snapshot loaded in part would remove the patrons whose lines have a typo — and ``SnapshotError`` lists
every bad line with its number and every wrong field of it. A patron listed twice, differently, is a bad
line, and a full snapshot that lists nobody (an empty file) is refused instead of emptying the cache.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Collection, Iterable, Iterator

from kiosk.core.policy import STATUSES, patron_key
from kiosk.store.db import transaction
from kiosk.store.ledger import Store, _now

_KEY = re.compile(r"[0-9a-f]{32}")
MAX_ERRORS_KEPT = 10_000      # every bad line of any real file; a file of nothing but garbage stops here


class PatronLineError(ValueError):
    """A record is wrong: ``problems`` lists each (field, what is wrong), "line" standing for the whole record;
    ``field`` is the first one's field."""

    def __init__(self, field: str, message: str, more: Iterable[tuple[str, str]] = ()) -> None:
        self.problems = [(field, message), *more]
        self.field = field
        super().__init__("; ".join(f"{f}: {m}" if f != "line" else m for f, m in self.problems))


@dataclass
class LoadReport:
    loaded: int = 0
    removed: int = 0
    bad_lines: int = 0
    errors: list[str] = field(default_factory=list)      # "line N: field: what is wrong", in file order
    fields: Counter = field(default_factory=Counter)     # bad lines per field ("line": the whole record)

    def note(self, line_no: int, message: str, fields: Iterable[str] = ("line",)) -> None:
        self.bad_lines += 1
        self.fields.update(set(fields))
        if len(self.errors) < MAX_ERRORS_KEPT:
            self.errors.append(f"line {line_no}: {message}")


class SnapshotError(ValueError):
    """The snapshot cannot be loaded, so nothing was; ``report.errors`` lists its bad lines, if that is why."""

    def __init__(self, report: LoadReport, why: str = "") -> None:
        self.report = report
        super().__init__(why or f"{report.bad_lines} bad line(s): nothing was loaded, the patron cache is unchanged")


def parse_patron(obj: object, secret: str, classes: Collection[str] = ()) -> tuple[str, str, str, int]:
    """One snapshot record -> (patron key, class, status, loans elsewhere); PatronLineError, naming every wrong
    field, if it is wrong. ``classes``: the loan classes the bookcase knows (any class when empty)."""
    if not isinstance(obj, dict):
        raise PatronLineError("line", "expected a JSON object")
    problems: list[tuple[str, str]] = []
    unknown = set(obj) - {"key", "card", "class", "status", "loans_elsewhere"}
    if unknown:
        names = ", ".join(_shown(name) for name in sorted(map(str, unknown))[:5])
        problems.append(("line", f"unknown field(s) {names}{', …' if len(unknown) > 5 else ''}"))
    key = ""
    if ("key" in obj) == ("card" in obj):
        problems.append(("line", "give exactly one of key (patron key) or card (card number or UID)"))
    elif "key" in obj:
        key = obj["key"]
        if not isinstance(key, str) or not _KEY.fullmatch(key):
            problems.append(("key", "must be 32 lower-case hex characters"))
    else:
        card = obj["card"]
        if not isinstance(card, str) or not card.strip():
            problems.append(("card", "must be a non-empty string"))
        elif not _is_text(card):
            problems.append(("card", f"{_shown(card)} holds an unpaired surrogate, which is no character"))
        else:
            key = patron_key(secret, card)
    patron_class = obj.get("class")
    if not isinstance(patron_class, str) or not patron_class.strip():
        problems.append(("class", "must be a non-empty string, e.g. adult, branch, child"))
    elif not _is_text(patron_class):
        problems.append(("class", f"{_shown(patron_class)} holds an unpaired surrogate, which is no character"))
    elif classes and patron_class not in classes:
        problems.append(("class", f"{_shown(patron_class)} is not a loan class of this bookcase "
                                  f"([policy.classes]: {', '.join(sorted(classes))})"))
    status = obj.get("status")
    if status not in STATUSES:
        problems.append(("status", f"must be one of {', '.join(STATUSES)}, got {_shown(status)}"))
    loans = obj.get("loans_elsewhere", 0)
    if not isinstance(loans, int) or isinstance(loans, bool) or not 0 <= loans <= 1000:
        problems.append(("loans_elsewhere", "must be a whole number from 0 to 1000"))
    if problems:
        raise PatronLineError(*problems[0], problems[1:])
    return key, patron_class, status, loans


def _is_text(value: str) -> bool:
    """False for a string JSON allows but UTF-8 (and so SQLite) does not: one with a lone surrogate ("\\ud800")."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _shown(value: object, limit: int = 40) -> str:
    """A wrong value as an error line quotes it: escaped (repr), and cut short."""
    shown = repr(value)
    return shown if len(shown) <= limit else shown[:limit - 1] + "…"


def read_lines(lines: Iterable[str | bytes], secret: str, report: LoadReport,
               classes: Collection[str] = ()) -> Iterator[tuple[int, tuple]]:
    """(line number, parsed record) for each good line; each bad one is noted in ``report``."""
    decode = json.JSONDecoder().decode          # a str in hand: no encoding sniffing per line, as json.loads does
    for number, line in enumerate(lines, 1):
        try:
            text = line.decode("utf-8") if isinstance(line, bytes) else line
            text = text.rstrip("\r\n").removeprefix("\ufeff") if number == 1 else text.rstrip("\r\n")
            if not text.strip():
                continue
            yield number, parse_patron(decode(text), secret, classes)
        except UnicodeDecodeError:
            report.note(number, "not UTF-8 text")
        except PatronLineError as exc:
            report.note(number, str(exc), (f for f, _ in exc.problems))
        except json.JSONDecodeError as exc:
            report.note(number, f"not JSON ({exc.msg} at column {exc.colno})")
        except ValueError:                  # the one other: a number thousands of digits long
            report.note(number, "not JSON this bookcase reads (a number thousands of digits long)")
        except RecursionError:
            report.note(number, "not JSON (nested too deeply)")


def check(lines: Iterable[str | bytes], secret: str, classes: Collection[str] = (),
          report: LoadReport | None = None) -> list[tuple]:
    """Every record of a snapshot, checked whole before anything is written: the rows, sorted by patron key, or
    SnapshotError listing every bad line. A patron listed again with other data is a bad line (which of the two
    is the library's word?); listed again the same, it is loaded once."""
    report = report if report is not None else LoadReport()
    first: dict[str, tuple[int, tuple]] = {}
    rows = []
    for number, row in read_lines(lines, secret, report, classes):
        seen, earlier = first.setdefault(row[0], (number, row))
        if seen == number:
            rows.append(row)
        elif earlier != row:
            report.note(number, f"the same patron as line {seen}, with another class, status or loans_elsewhere "
                                "(a card or key listed twice)", ("card or key",))
    if report.bad_lines:
        raise SnapshotError(report)
    rows.sort()                # in key order, SQLite writes the primary key's index page by page
    return rows


def load(store: Store, lines: Iterable[str | bytes], secret: str, *, full: bool = True,
         classes: Collection[str] = ()) -> LoadReport:
    """Load a snapshot in one transaction, all or nothing: the whole file is checked first, and SnapshotError (no
    change) if any line is bad. With ``full``, patrons not in it are removed; a full snapshot of nobody (an empty
    or truncated file) is refused rather than emptying the cache."""
    report = LoadReport()
    now = _now()
    upsert = ("INSERT INTO patrons (patron_key, patron_class, status, loans_elsewhere, card_hint, updated) "
              "VALUES (?, ?, ?, ?, '', ?) ON CONFLICT(patron_key) DO UPDATE SET "
              "patron_class = excluded.patron_class, status = excluded.status, "
              "loans_elsewhere = excluded.loans_elsewhere, updated = excluded.updated")
    rows = [(*row, now) for row in check(lines, secret, classes, report)]
    if full and not rows:
        raise SnapshotError(report, "lists no patron: a full snapshot of nobody would remove every patron of the "
                                    "cache, so nothing was loaded (was the file cut short? --merge loads a partial "
                                    "list without removing anyone)")
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
            listed = {row[0] for row in rows}
            gone = [(key,) for (key,) in conn.execute("SELECT patron_key FROM patrons") if key not in listed]
            conn.executemany("DELETE FROM patrons WHERE patron_key = ?", gone)
            report.removed = len(gone)
    report.loaded = len(rows)
    return report


def update(store: Store, record: dict, secret: str, classes: Collection[str] = ()) -> str:
    """Apply one patron update (same fields as a snapshot line); returns the patron key."""
    key, patron_class, status, loans = parse_patron(record, secret, classes)
    store.upsert_patrons([{"patron_key": key, "patron_class": patron_class, "status": status,
                           "loans_elsewhere": loans}])
    return key
