"""The operator tools for issue 3: ``kiosk ecard issue``, ``kiosk patrons load/show`` and ``kiosk staff add/remove``,
run as the command line runs them, against a bookcase's real SQLite database."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import pytest

from kiosk.cli import main
from kiosk.config import load_config
from kiosk.core import ecard
from kiosk.core.policy import patron_key
from kiosk.core.staff import check_pin
from kiosk.store.ledger import Store
from tests.scenarios.harness import write_config

ECARD_KEY = "admin-test-ecard-key-0123"
CARD = "3101120000018"


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_config(tmp_path, doors=2, extra=f'[ecard]\nkey = "{ECARD_KEY}"\n')


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def store_of(config: Path) -> Store:
    cfg = load_config(config)
    return Store(cfg.db_path, cfg.bookcase.id)


# --- kiosk ecard issue --------------------------------------------------------------------------------


def test_ecard_issue_makes_a_code_the_bookcase_accepts_for_that_card(config: Path, capsys) -> None:
    before = int(time.time())
    code, out, err = run(capsys, "ecard", "issue", "--config", str(config), "--card", CARD)
    after = int(time.time())
    assert (code, err) == (0, "")
    token = out.strip()
    assert out.endswith("\n") and "\n" not in token          # one line, as the scanner sends it
    card = ecard.verify(ECARD_KEY, token, after)
    assert card.patron_key == patron_key(load_config(config).secret, CARD)
    assert before <= card.issued <= after and card.lifetime_s == ecard.DEFAULT_LIFETIME_S
    with pytest.raises(ecard.EcardError) as refused:
        ecard.verify("another-librarys-key-000", token, after)
    assert refused.value.reason == ecard.FORGED


def test_ecard_issue_by_key_with_a_lifetime_and_an_age(config: Path, capsys) -> None:
    key = "0123456789abcdef0123456789abcdef"
    code, out, _ = run(capsys, "ecard", "issue", "--config", str(config), "--key", key, "--lifetime", "10")
    card = ecard.verify(ECARD_KEY, out.strip(), int(time.time()))
    assert code == 0 and (card.patron_key, card.lifetime_s) == (key, 10)
    # --age makes an already expired code, for testing the refusal.
    code, out, _ = run(capsys, "ecard", "issue", "--config", str(config), "--card", CARD, "--age", "120")
    assert code == 0
    with pytest.raises(ecard.EcardError) as refused:
        ecard.verify(ECARD_KEY, out.strip(), int(time.time()))
    assert refused.value.reason == ecard.EXPIRED


def test_two_codes_for_the_same_card_differ(config: Path, capsys) -> None:
    codes = {run(capsys, "ecard", "issue", "--config", str(config), "--card", CARD)[1] for _ in range(3)}
    assert len(codes) == 3                                   # a fresh nonce each time: none is a replay


def test_ecard_issue_without_a_key_says_so(tmp_path: Path, capsys) -> None:
    config = write_config(tmp_path, doors=1)
    code, out, err = run(capsys, "ecard", "issue", "--config", str(config), "--card", CARD)
    assert (code, out) == (2, "")
    assert str(config) in err and "no [ecard] key" in err


@pytest.mark.parametrize("argv, words", [
    (["--key", "not-a-patron-key"], "the patron key must be 32 hex characters"),
    (["--card", CARD, "--lifetime", "0"], "the lifetime must be between 1 and 65535 seconds"),
])
def test_ecard_issue_refuses_bad_input_in_words(config: Path, capsys, argv: list[str], words: str) -> None:
    code, out, err = run(capsys, "ecard", "issue", "--config", str(config), *argv)
    assert (code, out) == (2, "") and err == f"kiosk: {words}\n"


# --- kiosk patrons load / show ------------------------------------------------------------------------


def test_patrons_load_then_show_by_card_and_by_key(config: Path, tmp_path: Path, capsys) -> None:
    secret = load_config(config).secret
    snapshot = tmp_path / "patrons.jsonl"
    snapshot.write_text("\n".join(json.dumps(r) for r in [
        {"card": CARD, "class": "adult", "status": "active", "loans_elsewhere": 2},
        {"key": patron_key(secret, "04A224B2C35E80"), "class": "child", "status": "overdue"},
    ]) + "\n", encoding="utf-8")
    code, out, err = run(capsys, "patrons", "load", "--config", str(config), str(snapshot))
    assert code == 0 and err == ""
    assert f"{snapshot}: 2 patrons loaded, 0 removed" in out
    code, out, _ = run(capsys, "patrons", "show", "--config", str(config), "--card", CARD)
    assert code == 0 and json.loads(out) == {"key": patron_key(secret, CARD), "class": "adult", "status": "active",
                                             "loans_elsewhere": 2, "open_loans_here": 0,
                                             "open_loans_at_other_bookcases": 0, "offline_loans": 0}
    code, out, _ = run(capsys, "patrons", "show", "--config", str(config), "--key", patron_key(secret, "04A224B2C35E80"))
    assert code == 0 and json.loads(out)["status"] == "overdue"
    code, out, _ = run(capsys, "patrons", "show", "--config", str(config), "--card", "3109999999999")
    assert code == 1 and "not in this bookcase's cache" in out


def test_patrons_load_names_bad_lines_and_fails(config: Path, tmp_path: Path, capsys) -> None:
    snapshot = tmp_path / "patrons.jsonl"
    snapshot.write_text(json.dumps({"card": CARD, "class": "adult", "status": "active"}) + "\n"
                        + json.dumps({"card": "1", "class": "adult", "status": "asleep"}) + "\n", encoding="utf-8")
    code, out, err = run(capsys, "patrons", "load", "--config", str(config), str(snapshot))
    assert code == 1 and out == "" and "nothing was loaded" in err
    assert "line 2: status: must be one of" in err
    code, _, err = run(capsys, "patrons", "load", "--config", str(config), str(tmp_path / "nowhere.jsonl"))
    assert code == 1 and "cannot read" in err and "nowhere.jsonl" in err


# --- kiosk staff add / remove -------------------------------------------------------------------------


def test_staff_add_stores_a_pin_hash_and_remove_withdraws_the_card(config: Path, capsys, monkeypatch) -> None:
    staff_card = "04A1B2C3D4E5F6"
    monkeypatch.setattr("sys.stdin", io.StringIO("2468\n"))
    code, out, _ = run(capsys, "staff", "add", "--config", str(config), "--card", staff_card, "--name", "restock team",
                       "--pin-stdin")
    assert code == 0 and out == "staff card ****E5F6 registered for restock team\n"
    key = patron_key(load_config(config).secret, staff_card)
    store = store_of(config)
    try:
        stored = store.staff_pin_hash(key)
        assert stored is not None and "2468" not in stored and check_pin("2468", stored)
        assert not check_pin("1357", stored)
    finally:
        store.close()
    code, out, _ = run(capsys, "staff", "remove", "--config", str(config), "--card", staff_card)
    assert code == 0 and "removed" in out
    code, _, err = run(capsys, "staff", "remove", "--config", str(config), "--card", staff_card)
    assert code == 1 and "was not registered" in err


def test_staff_add_refuses_a_pin_that_is_not_4_to_8_digits(config: Path, capsys, monkeypatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("12ab\n"))
    code, _, err = run(capsys, "staff", "add", "--config", str(config), "--card", "04A1B2C3D4E5F6", "--pin-stdin")
    assert code == 2 and "4 to 8 digits" in err


def test_a_uid_typed_with_separators_or_in_lower_case_is_taken_as_the_reader_reports_it(config: Path, capsys,
                                                                                         monkeypatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("2468\n"))
    code, _, err = run(capsys, "staff", "add", "--config", str(config), "--card", "04:a1:b2:c3:d4:e5:f6", "--pin-stdin")
    assert code == 0 and "taken as the card UID 04A1B2C3D4E5F6, as the card reader reports it" in err
    store = store_of(config)
    try:
        assert store.staff_pin_hash(patron_key(load_config(config).secret, "04A1B2C3D4E5F6")) is not None
    finally:
        store.close()
    # A card number is taken as it is.
    code, out, err = run(capsys, "ecard", "issue", "--config", str(config), "--card", CARD)
    assert code == 0 and err == ""
    assert ecard.verify(ECARD_KEY, out.strip(), int(time.time())).patron_key == patron_key(load_config(config).secret,
                                                                                           CARD)


# --- issue 11 item 7: `kiosk patrons load` is all or nothing ------------------------------------------------


def _cache(config: Path) -> dict[str, str]:
    store = store_of(config)
    try:
        return dict(store.db.execute("SELECT patron_key, status FROM patrons").fetchall())
    finally:
        store.close()


def _snapshot(tmp_path: Path, records: list) -> Path:
    path = tmp_path / "patrons.jsonl"
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records), encoding="utf-8")
    return path


def test_patrons_load_with_a_typo_changes_nothing_and_names_the_line(config: Path, tmp_path: Path, capsys) -> None:
    secret = load_config(config).secret
    assert run(capsys, "patrons", "load", "--config", str(config), str(_snapshot(tmp_path, [
        {"card": c, "class": "adult", "status": "active"} for c in ("A1", "A2", "A3")])))[0] == 0
    before = _cache(config)
    snapshot = _snapshot(tmp_path, [{"card": "A1", "class": "adult", "status": "blocked"},
                                    {"card": "A2", "class": "adult", "status": "actve"},
                                    {"card": "A3", "class": "teacher", "status": "active"},
                                    {"card": "A4", "class": "adult", "status": "active"}])
    code, out, err = run(capsys, "patrons", "load", "--config", str(config), str(snapshot))
    assert (code, out) == (1, "")
    assert err.splitlines() == [
        f"kiosk: {snapshot}: 2 bad line(s): nothing was loaded, the patron cache is unchanged",
        "  line 2: status: must be one of active, blocked, expired, lost, overdue, got 'actve'",
        "  line 3: class: 'teacher' is not a loan class of this bookcase ([policy.classes]: adult, branch, child)"]
    assert _cache(config) == before and patron_key(secret, "A2") in before


def test_patrons_load_of_an_empty_file_removes_nobody(config: Path, tmp_path: Path, capsys) -> None:
    assert run(capsys, "patrons", "load", "--config", str(config), str(_snapshot(tmp_path, [
        {"card": "A1", "class": "adult", "status": "active"}])))[0] == 0
    before = _cache(config)
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    code, out, err = run(capsys, "patrons", "load", "--config", str(config), str(empty))
    assert (code, out) == (1, "") and "lists no patron" in err and "--merge" in err
    assert _cache(config) == before and len(before) == 1


def test_a_long_list_of_bad_lines_is_cut_short_with_a_count_by_field(config: Path, tmp_path: Path, capsys) -> None:
    from kiosk.admin import SHOW_ERRORS
    records = []
    for i in range(2000):
        status = "actve" if i % 4 == 1 else "active"              # 500 typos
        records.append({"card": f"C{i}", "class": "teacher" if i % 50 == 2 else "adult", "status": status})
    records.append("{truncated")
    code, out, err = run(capsys, "patrons", "load", "--config", str(config), str(_snapshot(tmp_path, records)))
    lines = err.splitlines()
    assert (code, out) == (1, "") and lines[0].endswith("541 bad line(s): nothing was loaded, the patron cache is "
                                                        "unchanged")
    assert [line.split(":")[0] for line in lines[1:SHOW_ERRORS + 1]] == [
        f"  line {n}" for n in sorted({i + 1 for i in range(2000) if i % 4 == 1 or i % 50 == 2})][:SHOW_ERRORS]
    assert lines[SHOW_ERRORS + 1:] == [f"  … and {541 - SHOW_ERRORS} more bad line(s); bad lines by field: "
                                       "status 500, class 40, line 1"]
    assert _cache(config) == {}


# --- issue 11 item 10: staff cards --------------------------------------------------------------------------


def test_a_pin_change_keeps_the_holders_name(config: Path, capsys) -> None:
    """Through a real terminal, as an operator types the PIN twice."""
    from tests.test_operator_commands import _in_a_terminal, _kiosk
    card = "04A1B2C3D4E5F6"
    code, out = _in_a_terminal(_kiosk("staff", "add", "--config", str(config), "--card", card, "--name", "张老师"),
                               ["2468", "2468"])
    assert code == 0 and "staff card ****E5F6 registered for 张老师" in out
    code, out = _in_a_terminal(_kiosk("staff", "add", "--config", str(config), "--card", card), ["1357", "1357"])
    assert code == 0 and "staff card ****E5F6 changed: new PIN for 张老师" in out
    code, out, _ = run(capsys, "staff", "list", "--config", str(config))
    assert code == 0 and "****E5F6  张老师" in out
    store = store_of(config)
    try:
        assert check_pin("1357", store.staff_pin_hash(patron_key(load_config(config).secret, card)))
    finally:
        store.close()


def test_the_demo_staff_card_is_listed_by_its_hint(config: Path, capsys) -> None:
    from kiosk.demodata import DEMO_STAFF_CARD
    from kiosk.store.seed import seed_demo
    store = store_of(config)
    try:
        assert seed_demo(store, load_config(config))
    finally:
        store.close()
    code, out, _ = run(capsys, "staff", "list", "--config", str(config))
    assert code == 0 and f"card ****{DEMO_STAFF_CARD[-4:]}  demo staff" in out


# --- issue 11 item 10: `kiosk patrons show --card` -----------------------------------------------------------


def test_patrons_show_by_card_counts_loans_here_and_at_other_bookcases_apart(tmp_path: Path, capsys) -> None:
    from tests.scenarios.harness import ADULT, Bookcase
    case = Bookcase(tmp_path).start()
    try:
        book = case.items(1)[0]
        case.session(ADULT, 1, take=[book])
        assert case.loans() == [book]
    finally:
        case.stop()
    store = store_of(case.config_path)
    try:
        key = patron_key(case.cfg.secret, ADULT)
        # A loan the patron made at another bookcase, as the fleet's events replicate it.
        store.db.execute("INSERT INTO remote_loans (event_id, bookcase, item_id, patron_key, loaned_at, loaned_utc) "
                         "VALUES ('e-1', 'MH-0102', 'MH20209999', ?, '2026-12-01T10:00:00+08:00', "
                         "'2026-12-01T02:00:00Z')", (key,))
    finally:
        store.close()
    code, out, err = run(capsys, "patrons", "show", "--config", str(case.config_path), "--card", f" {ADULT} ")
    shown = json.loads(out)
    assert (code, err) == (0, "") and shown["key"] == key
    assert (shown["open_loans_here"], shown["open_loans_at_other_bookcases"]) == (1, 1)
    assert ADULT not in out and case.cfg.secret not in out
