"""The patron export -> the private map, the bookcases' snapshot (loaded by `kiosk patrons load`), statuses."""

from __future__ import annotations

import json

import pytest

from gateway.patrons import ExportError, import_export, status_from_ils
from kiosk.core.policy import patron_key
from kiosk.store import patrons as kiosk_patrons
from kiosk.store.ledger import Store
from simulators.fleet.bookcases import SECRET
from tests.gateway.fakes import Resp
from tests.gateway.support import sqlite_journal


def test_csv_export_maps_cards_and_uids_and_writes_a_snapshot_the_bookcase_loads(tmp_path):
    journal = sqlite_journal(tmp_path)
    export = tmp_path / "export.csv"
    export.write_text("Card,UIDs,Class,Status,Name,Patron_ID\n"
                      "3101120000018,04:a2:24:b2:c3:5e:80;04B3C5D7E9F101,adult,active,张三,P-18\n"
                      "3101120000075,,adult,blocked,李四,\n"
                      "3101120000083,,branch,retired,王五,\n"
                      ",,child,active,,\n", encoding="utf-8")
    report = import_export(journal, export, SECRET, snapshot=tmp_path / "snap.jsonl")
    assert report.patrons == 2 and report.keys == 4 and report.skipped == 2 and "name" in report.ignored_columns
    assert report.errors[0].startswith("line 4: status must be one of")
    assert journal.patron(patron_key(SECRET, "04A224B2C35E80")).ils_id == "P-18"
    assert journal.keys_of("P-18") == sorted([patron_key(SECRET, "3101120000018"), patron_key(SECRET,
                                              "04A224B2C35E80"), patron_key(SECRET, "04B3C5D7E9F101")])
    text = (tmp_path / "snap.jsonl").read_text()
    assert "3101120000018" not in text and "张三" not in text and "P-18" not in text
    store = Store(tmp_path / "bookcase.sqlite3", "MH-A")
    loaded = kiosk_patrons.load(store, text.splitlines(), SECRET)
    assert loaded.loaded == 4 and loaded.bad_lines == 0
    assert store.patron(patron_key(SECRET, "3101120000075")).status == "blocked"
    store.close()
    journal.close()


def test_json_lines_and_a_full_import_expires_patrons_no_longer_listed(tmp_path):
    journal = sqlite_journal(tmp_path)
    export = tmp_path / "export.jsonl"
    export.write_text(json.dumps({"card": "3101120000018", "class": "adult", "status": "active"}) + "\n" +
                      json.dumps({"card": "3101120000026", "uids": ["04B3C5D7E9F101"], "class": "child",
                                  "status": "overdue"}) + "\n")
    first = import_export(journal, export, SECRET, snapshot=None)
    assert (first.counts.added, first.counts.removed) == (3, 0)
    export.write_text(json.dumps({"card": "3101120000018", "class": "adult", "status": "blocked"}) + "\n")
    second = import_export(journal, export, SECRET, snapshot=tmp_path / "s.jsonl")
    assert (second.counts.changed, second.counts.removed) == (1, 2)
    assert journal.patron(patron_key(SECRET, "3101120000026")).status == "expired"
    assert len((tmp_path / "s.jsonl").read_text().splitlines()) == 1
    export.write_text("garbage\n")
    with pytest.raises(ExportError, match="no usable patron"):
        import_export(journal, export, SECRET, snapshot=None)
    journal.close()


@pytest.mark.parametrize("flags, valid, current, expected", [
    (" " * 14, True, "active", "active"),
    ("Y" + " " * 13, True, "active", "blocked"),
    ("    Y" + " " * 9, True, "active", "lost"),
    ("      Y" + " " * 7, True, "active", "overdue"),
    (" " * 14, True, "expired", "expired"),
    (" " * 14, False, "active", "expired"),
])
def test_status_from_the_ils_patron_flags(flags, valid, current, expected):
    assert status_from_ils(Resp(True, patron_status=flags, valid_patron=valid), current) == expected
