"""The patron cache: snapshot loading, bad lines, full versus merge, single updates, staff and e-card memory."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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


# --- issue 11 item 7: a snapshot is checked whole, and nothing is lost to a bad one ---------------------------

def test_every_wrong_field_of_a_line_is_named(store):
    bad = {"card": "A2", "class": "teacher", "status": "actve", "loans_elsewhere": "2"}
    with pytest.raises(patrons.SnapshotError) as caught:
        patrons.load(store, lines({"card": "A1", "class": "adult", "status": "active"}, bad), SECRET,
                     classes={"adult", "child"})
    report = caught.value.report
    assert report.bad_lines == 1 and len(report.errors) == 1
    assert report.errors[0] == ("line 2: class: 'teacher' is not a loan class of this bookcase ([policy.classes]: "
                                "adult, child); status: must be one of active, blocked, expired, lost, overdue, got "
                                "'actve'; loans_elsewhere: must be a whole number from 0 to 1000")
    assert report.fields == {"class": 1, "status": 1, "loans_elsewhere": 1}


def test_a_patron_listed_twice_differently_is_a_bad_line_naming_the_first(store):
    patrons.load(store, lines({"card": "A9", "class": "adult", "status": "active"}), SECRET)
    twice = lines({"card": "A1", "class": "adult", "status": "active"},
                  {"card": "A2", "class": "adult", "status": "active"},
                  {"key": patron_key(SECRET, "A1"), "class": "adult", "status": "blocked"})   # A1 again, by key
    with pytest.raises(patrons.SnapshotError) as caught:
        patrons.load(store, twice, SECRET)
    assert caught.value.report.errors == ["line 3: the same patron as line 1, with another class, status or "
                                          "loans_elsewhere (a card or key listed twice)"]
    assert store.patron(patron_key(SECRET, "A9")) is not None and store.patron(patron_key(SECRET, "A1")) is None
    # The same line twice says nothing new: loaded once.
    report = patrons.load(store, twice[:2] + twice[:1], SECRET)
    assert (report.loaded, report.removed) == (2, 1)


@pytest.mark.parametrize("text", ["", "\n\n", "   \n"])
def test_a_full_snapshot_of_nobody_removes_nobody(store, text):
    patrons.load(store, lines({"card": "A1", "class": "adult", "status": "active"},
                              {"card": "A2", "class": "adult", "status": "active"}), SECRET)
    with pytest.raises(patrons.SnapshotError, match="lists no patron: .* nothing was loaded"):
        patrons.load(store, text.splitlines(keepends=True), SECRET)
    assert store.db.execute("SELECT COUNT(*) FROM patrons").fetchone()[0] == 2
    # Merging nobody changes nothing, and says so without an error.
    assert patrons.load(store, text.splitlines(keepends=True), SECRET, full=False).loaded == 0
    assert store.db.execute("SELECT COUNT(*) FROM patrons").fetchone()[0] == 2


def test_a_snapshot_with_the_issue_s_typo_keeps_the_patron_and_loads_nothing(store):
    """The report: good lines saved, the patron whose line said "actve" removed, then exit 1."""
    patrons.load(store, lines(*({"card": c, "class": "adult", "status": "active"} for c in ("A1", "A2", "A3"))),
                 SECRET)
    update = lines({"card": "A1", "class": "adult", "status": "blocked"},
                   {"card": "A2", "class": "adult", "status": "actve"},
                   {"card": "A4", "class": "adult", "status": "active"})
    with pytest.raises(patrons.SnapshotError):
        patrons.load(store, update, SECRET)
    rows = dict(store.db.execute("SELECT patron_key, status FROM patrons").fetchall())
    assert rows == {patron_key(SECRET, c): "active" for c in ("A1", "A2", "A3")}


def test_strings_json_allows_but_sqlite_cannot_store_are_bad_lines_not_a_crash(store):
    with pytest.raises(patrons.SnapshotError) as caught:
        patrons.load(store, ['{"card": "A\\ud800", "class": "adult", "status": "active"}\n',
                             '{"card": "A2", "class": "ad\\udfffult", "status": "active"}\n',
                             '{"card": "A3", "class": "adult", "status": "active", "loans_elsewhere": 1' + "1" * 5000
                             + "}\n"], SECRET)
    assert caught.value.report.errors == [
        "line 1: card: 'A\\ud800' holds an unpaired surrogate, which is no character",
        "line 2: class: 'ad\\udfffult' holds an unpaired surrogate, which is no character",
        "line 3: not JSON this bookcase reads (a number thousands of digits long)"]


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
                           max_leaves=8)
records = st.fixed_dictionaries({}, optional={"key": json_values | st.just("a" * 32), "card": json_values | st.text(),
                                              "class": json_values | st.sampled_from(["adult", "child"]),
                                              "status": json_values | st.just("active"),
                                              "loans_elsewhere": json_values, "name": json_values})


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(records.map(lambda r: json.dumps(r).encode()) | st.binary(max_size=40), max_size=6))
def test_any_file_loads_whole_or_is_refused_with_every_bad_line_named(store, raw_lines):
    """No other exception escapes, and a refused file changes nothing."""
    before = store.db.execute("SELECT COUNT(*), MAX(updated) FROM patrons").fetchone()
    try:
        report = patrons.load(store, [line + b"\n" for line in raw_lines], SECRET, full=False,
                              classes={"adult", "child"})
    except patrons.SnapshotError as exc:
        assert len(exc.report.errors) == exc.report.bad_lines > 0
        assert store.db.execute("SELECT COUNT(*), MAX(updated) FROM patrons").fetchone() == before
    else:
        assert report.loaded <= len(raw_lines)
