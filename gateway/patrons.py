"""Patrons: the library's export -> the private key -> ILS-id map, the bookcases' snapshot, retained statuses.

``citybook-gateway patrons import <export>`` reads the library's patron export, CSV (with a header line) or
JSON lines, one patron per line::

    card,uids,class,status,patron_id
    3101120000018,04A224B2C35E80,adult,active,
    {"card": "3101120000026", "uids": ["04B3C5D7E9F101"], "class": "child", "status": "active"}

``card`` is the reader card's barcode; ``uids`` the contactless cards' UIDs (hex, any separators; in CSV
separated by ``;`` or spaces); ``class`` the loan class (adult, branch, child, …); ``status`` one of active,
blocked, expired, lost, overdue; ``patron_id`` the ILS's patron identifier when it is not the card barcode.
Other columns (a name, say) are ignored and never stored. Each card number and UID becomes a patron key (the
bookcases' HMAC, kiosk.core.policy.patron_key) mapped to the ILS patron id, in the journal only.

The import then writes the bookcases' snapshot (keys, classes, statuses — no card numbers: ``kiosk patrons
load``) and marks changed statuses for publishing: the running gateway publishes each retained on
``<root>central/patron/<key>`` (kiosk.sync.schema "patron_status"). After every loan or return, and on a
schedule, it asks the ILS (patron information 63/64) and publishes a status that changed.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from gateway.journal import ImportCounts, Journal, PatronRow
from kiosk.core.policy import STATUSES, patron_key

LOGGER = logging.getLogger(__name__)

_ALIASES = {"card": ("card", "barcode", "card_barcode", "card_number"), "uids": ("uids", "uid", "contactless"),
            "class": ("class", "patron_class", "category"), "status": ("status",),
            "patron_id": ("patron_id", "ils_id"), "loans_elsewhere": ("loans_elsewhere",)}
_CLASS = re.compile(r"[a-z_]{1,32}")
_HEX = re.compile(r"[0-9A-F]{2,32}")
MAX_ERRORS_KEPT = 20


class ExportError(ValueError):
    """A line of the export that cannot be used; says what is wrong."""


@dataclass
class ImportReport:
    patrons: int = 0
    keys: int = 0
    skipped: int = 0
    errors: list[str] = field(default_factory=list)
    ignored_columns: set[str] = field(default_factory=set)
    counts: ImportCounts = ImportCounts()
    snapshot: Path | None = None

    def note(self, line: int, message: str) -> None:
        self.skipped += 1
        if len(self.errors) < MAX_ERRORS_KEPT:
            self.errors.append(f"line {line}: {message}")


def _field(record: dict, name: str) -> object:
    for alias in _ALIASES[name]:
        if alias in record and record[alias] not in (None, ""):
            return record[alias]
    return None


def parse_record(record: dict, secret: str) -> list[PatronRow]:
    """One export record -> a PatronRow per card number and UID (all mapped to the same ILS patron id)."""
    card = _field(record, "card")
    if card is not None and not isinstance(card, (str, int)):
        raise ExportError("card must be text")
    card = str(card).strip() if card is not None else ""
    uids_raw = _field(record, "uids") or []
    if isinstance(uids_raw, str):
        uids_raw = re.split(r"[;,\s|]+", uids_raw.strip())
    if not isinstance(uids_raw, list) or not all(isinstance(u, str) for u in uids_raw):
        raise ExportError("uids must be a list of hex UIDs (in CSV: separated by ';')")
    uids = []
    for raw in uids_raw:
        uid = re.sub(r"[\s:-]", "", raw).upper()
        if not uid:
            continue
        if not _HEX.fullmatch(uid):
            raise ExportError(f"UID {raw!r} is not hex (e.g. 04A224B2C35E80)")
        uids.append(uid)
    if not card and not uids:
        raise ExportError("no card barcode and no UID: nothing to identify the patron by")
    klass = str(_field(record, "class") or "").strip().lower()
    if not _CLASS.fullmatch(klass):
        raise ExportError(f"class {klass!r} must be lower-case letters or '_' (adult, branch, child)")
    status = str(_field(record, "status") or "").strip().lower()
    if status not in STATUSES:
        raise ExportError(f"status must be one of {', '.join(STATUSES)}, got {status!r}")
    ils_id = str(_field(record, "patron_id") or card).strip()
    if not ils_id:
        raise ExportError("patron_id is needed when there is no card barcode (the ILS's patron identifier)")
    if "|" in ils_id:
        raise ExportError("patron_id must not contain '|' (SIP2's field separator)")
    loans = _field(record, "loans_elsewhere") or 0
    try:
        loans = int(loans)
    except (TypeError, ValueError):
        raise ExportError("loans_elsewhere must be a whole number") from None
    if not 0 <= loans <= 1000:
        raise ExportError("loans_elsewhere must be from 0 to 1000")
    return [PatronRow(patron_key(secret, number), ils_id, klass, status, loans)
            for number in ([card] if card else []) + uids]


def read_export(path: Path, report: ImportReport) -> Iterator[tuple[int, dict]]:
    """(line number, record) for each line of a CSV or JSON-lines export."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise ExportError(f"{path}: not UTF-8 text (save the export as UTF-8)") from None
    first = text.lstrip()[:1]
    if first == "{":
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as exc:
                report.note(number, f"not JSON ({exc})")
                continue
            if not isinstance(record, dict):
                report.note(number, "expected a JSON object")
                continue
            yield number, record
        return
    reader = csv.DictReader(io.StringIO(text))
    known = {a for names in _ALIASES.values() for a in names}
    header = [h.strip().lower() for h in reader.fieldnames or []]
    if not header:
        raise ExportError(f"{path}: empty: expected a CSV header line (card,uids,class,status) or JSON lines")
    reader.fieldnames = header
    report.ignored_columns = {h for h in header if h not in known}
    for record in reader:
        yield reader.line_num, {k: (v.strip() if isinstance(v, str) else v) for k, v in record.items() if k}


def import_export(journal: Journal, path: Path, secret: str, *, snapshot: Path | None, full: bool = True
                  ) -> ImportReport:
    """Read the export, update the map in the journal, write the bookcases' snapshot. Bad lines are reported."""
    report = ImportReport()
    rows: dict[str, PatronRow] = {}
    for number, record in read_export(path, report):
        try:
            parsed = parse_record(record, secret)
        except ExportError as exc:
            report.note(number, str(exc))
            continue
        report.patrons += 1
        for row in parsed:
            rows[row.key] = row
    report.keys = len(rows)
    if full and not rows:
        raise ExportError(f"{path}: no usable patron in it; nothing changed (a full import of nobody would "
                          "expire every card)")
    report.counts = journal.import_patrons(list(rows.values()), full=full)
    if snapshot is not None:
        write_snapshot(journal.patrons(), snapshot)
        report.snapshot = snapshot
    return report


def snapshot_lines(rows: Iterable[PatronRow]) -> Iterator[str]:
    """The bookcases' snapshot (kiosk.store.patrons): keys only, never a card number."""
    for r in rows:
        if not r.removed:
            yield json.dumps({"key": r.key, "class": r.patron_class, "status": r.status,
                              "loans_elsewhere": r.loans_elsewhere}, sort_keys=True)


def write_snapshot(rows: Iterable[PatronRow], path: Path) -> int:
    """Write the snapshot atomically (a bookcase copying it meanwhile gets the old or the new one, whole)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    n = 0
    with open(tmp, "w", encoding="utf-8") as f:
        for line in snapshot_lines(rows):
            f.write(line + "\n")
            n += 1
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return n


def status_from_ils(resp, current: str) -> str:
    """The bookcases' status from a patron information (64) answer; ``current``: what the export said."""
    flags = getattr(resp, "patron_status", "") or ""

    def flag(i: int) -> bool:
        return i < len(flags) and (flags[i] is True or flags[i] == "Y")
    if getattr(resp, "valid_patron", None) is False:
        return "expired"
    if flag(4):                     # card reported lost
        return "lost"
    if flag(6):                     # too many items overdue
        return "overdue"
    if flag(0) or flag(10) or flag(11) or flag(9) or flag(13):   # charge denied, fines, fees, lost, billed
        return "expired" if current == "expired" else "blocked"
    # SIP2 has no flag for an expired card: the library's export says so until the card is renewed there.
    return "expired" if current == "expired" else "active"
