"""The patron cache: snapshot loading, bad lines, full versus merge, single updates, staff and e-card memory."""

from __future__ import annotations

import json

import pytest

from kiosk.core.policy import patron_key
from kiosk.store import patrons
from kiosk.store.ledger import Store

SECRET = "test-secret-0123456789"


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "k.sqlite3", "T-1")
    yield s
    s.close()


def lines(*records):
    return [json.dumps(r, ensure_ascii=False) + "\n" for r in records]


def test_a_snapshot_loads_cards_and_keys_without_storing_card_numbers(store):
    key = patron_key(SECRET, "3101120000026")
    report = patrons.load(store, lines({"card": "3101120000018", "class": "adult", "status": "active"},
                                       {"key": key, "class": "child", "status": "overdue", "loans_elsewhere": 2}),
                          SECRET)
    assert (report.loaded, report.bad_lines, report.removed) == (2, 0, 0)
    p = store.patron(patron_key(SECRET, "3101120000018"))
    assert (p.patron_class, p.status, p.loans_elsewhere) == ("adult", "active", 0)
    assert store.patron(key).status == "overdue"
    dump = "\n".join(str(row) for row in store.db.execute("SELECT * FROM patrons"))
    assert "3101120000018" not in dump


@pytest.mark.parametrize("line, words", [
    ("{not json", "Expecting"),
    ('["a list"]', "JSON object"),
    ('{"card": "1", "key": "' + "a" * 32 + '", "class": "adult", "status": "active"}', "exactly one"),
    ('{"key": "XYZ", "class": "adult", "status": "active"}', "key: must be 32 lower-case hex"),
    ('{"card": "1", "class": "adult", "status": "sleeping"}', "status: must be one of"),
    ('{"card": "1", "class": "", "status": "active"}', "class: must be"),
    ('{"card": "1", "class": "adult", "status": "active", "loans_elsewhere": -1}', "loans_elsewhere"),
    ('{"card": "1", "class": "adult", "status": "active", "name": "张三"}', "unknown field"),
    ('{"card": "1", "class": "teacher", "status": "active"}', "class: 'teacher' is not a loan class"),
])
def test_a_bad_line_loads_nothing_and_is_reported_by_number_and_field(store, line, words):
    before = lines({"card": "A1", "class": "adult", "status": "active"})
    patrons.load(store, before, SECRET, classes={"adult", "child"})
    good = lines({"card": "3101120000018", "class": "adult", "status": "active"})
    with pytest.raises(patrons.SnapshotError) as caught:
        patrons.load(store, [*good, line + "\n", *good], SECRET, classes={"adult", "child"})
    report = caught.value.report
    assert report.bad_lines == 1 and report.errors[0].startswith("line 2: ") and words in report.errors[0]
    # Nothing changed: A1 (not in the new file) was not removed, the good lines were not loaded.
    assert store.patron(patron_key(SECRET, "A1")) is not None
    assert store.patron(patron_key(SECRET, "3101120000018")) is None


def test_every_bad_line_is_listed_with_its_field(store):
    records = [json.dumps({"card": f"C{i}", "class": "adult", "status": "actve" if i % 3 == 0 else "active"})
               for i in range(1, 301)]
    with pytest.raises(patrons.SnapshotError) as caught:
        patrons.load(store, records, SECRET)
    report = caught.value.report
    assert report.bad_lines == 100 and len(report.errors) == 100
    assert report.errors[0] == "line 3: status: must be one of active, blocked, expired, lost, overdue, got 'actve'"
    assert [int(e.split(":")[0][5:]) for e in report.errors] == list(range(3, 301, 3))
    assert store.db.execute("SELECT COUNT(*) FROM patrons").fetchone()[0] == 0


def test_a_full_snapshot_removes_patrons_it_no_longer_lists_and_merge_does_not(store):
    patrons.load(store, lines({"card": "A1", "class": "adult", "status": "active"},
                              {"card": "A2", "class": "adult", "status": "active"}), SECRET)
    report = patrons.load(store, lines({"card": "A3", "class": "adult", "status": "active"}), SECRET, full=False)
    assert report.removed == 0 and store.patron(patron_key(SECRET, "A1")) is not None
    report = patrons.load(store, lines({"card": "A2", "class": "adult", "status": "lost"}), SECRET)
    assert report.removed == 2
    assert store.patron(patron_key(SECRET, "A1")) is None and store.patron(patron_key(SECRET, "A3")) is None
    assert store.patron(patron_key(SECRET, "A2")).status == "lost"


def test_a_single_update_changes_one_patron(store):
    patrons.load(store, lines({"card": "A1", "class": "adult", "status": "active"}), SECRET)
    key = patrons.update(store, {"card": "A1", "class": "adult", "status": "blocked"}, SECRET)
    assert store.patron(key).status == "blocked"
    with pytest.raises(patrons.PatronLineError):
        patrons.update(store, {"card": "A1", "status": "blocked"}, SECRET)


def test_two_hundred_thousand_patrons_load_and_answer(store):
    records = ({"key": f"{i:032x}", "class": "adult", "status": "active"} for i in range(200_000))
    report = patrons.load(store, (json.dumps(r) for r in records), SECRET)
    assert report.loaded == 200_000
    assert store.patron(f"{123_456:032x}").status == "active"
    assert store.db.execute("SELECT COUNT(*) FROM patrons").fetchone()[0] == 200_000


def test_used_ecard_codes_are_remembered_until_they_expire(store):
    assert store.ecard_seen("t1", expires_at=1060, now=1000) is False
    assert store.ecard_seen("t1", expires_at=1060, now=1010) is True
    assert store.ecard_seen("t2", expires_at=1200, now=1061) is False      # purges t1
    assert store.db.execute("SELECT token_id FROM ecard_used").fetchall() == [("t2",)]


def test_staff_cards(store):
    store.set_staff("k1", "hash-1", "restock team")
    store.set_staff("k1", "hash-2", "restock team")
    assert store.staff_pin_hash("k1") == "hash-2"
    assert store.remove_staff("k1") is True and store.staff_pin_hash("k1") is None
    assert store.remove_staff("k1") is False
