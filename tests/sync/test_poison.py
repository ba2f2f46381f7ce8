"""Poison messages: whatever a message is, it is refused, counted and acknowledged, and never stalls the fleet.

Only a failure of ours (the database locked, a full disk) leaves a message unacknowledged, for a bounded number
of tries, after which it is parked for staff. Schema gaps, fuzzing of the whole inbound path, and log escaping;
the same over a real broker in test_poison_broker.py.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import subprocess
import sys
import uuid
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiosk.config import load_config
from kiosk.logtext import SafeFormatter
from kiosk.store import replica
from kiosk.store.ledger import Store
from kiosk.sync import retry, schema
from kiosk.sync.events import Received
from kiosk.sync.replication import APPLIED, OWN, REFUSED, Replicator
from kiosk.sync.schema import MessageError
from kiosk.sync.service import FleetSync
from kiosk.sync.topics import Topics
from simulators.fleet.bookcases import write_fleet_config
from tests.sync.fleet import ROOT_TOPIC
from tests.sync.test_bad_input import EVENT, loan, patron_status

SURROGATE = b'"\\ud800"'


def _raw_loan(**raw: bytes) -> bytes:
    """A loan event as bytes, with some values replaced by raw JSON text (escapes survive as written)."""
    body = json.dumps(loan())
    for key, value in raw.items():
        start = body.index(f'"{key}": ') + len(key) + 4
        end = body.index(", ", start) if ", " in body[start:] else body.index("}", start)
        body = body[:start] + value.decode() + body[end:]
    return body.encode()


# --- the schema's gaps ------------------------------------------------------------------------------

@pytest.mark.parametrize("type_", [[], ["loan"], {}, {"loan": 1}])
def test_a_type_that_is_a_list_or_an_object_is_refused_not_a_crash(type_):
    with pytest.raises(MessageError) as caught:
        schema.check_event(loan(type=type_))
    assert caught.value.reason == "unknown_type"
    with pytest.raises(MessageError):
        schema.check_outgoing(loan(type=type_))


@pytest.mark.parametrize("payload", [
    _raw_loan(item=SURROGATE),
    _raw_loan(item=b'"MH\\uDFFF1"'),
    b'{"v": 1, "type": "loan", "\\ud83d": 1}',                     # in a key
    _raw_loan(door=b'{"deep": [["\\udc00"]]}'),                     # nested
])
def test_a_lone_surrogate_anywhere_is_refused_at_decode(payload):
    with pytest.raises(MessageError) as caught:
        schema.decode(payload, 65536)
    assert caught.value.reason == "bad_text"


@pytest.mark.parametrize("payload", [
    _raw_loan(item=b'"MH\\u00002020"'),
    b'{"v": 1, "type": "loan", "\\u0000": 1}',                     # in a key
    _raw_loan(door=b'{"deep": [["x\\u0000"]]}'),                  # nested
])
def test_a_nul_character_anywhere_is_refused_at_decode(payload):
    # PostgreSQL's text cannot hold one: the gateway's journal failed on such an event on every try, and the
    # gateway, which retries a batch it cannot journal, consumed nothing more.
    with pytest.raises(MessageError) as caught:
        schema.decode(payload, 65536)
    assert caught.value.reason == "bad_text" and "NUL" in caught.value.detail
    with pytest.raises(MessageError) as caught:
        schema.check_outgoing(loan(item="MH\x002020"))
    assert caught.value.reason == "bad_text"


@pytest.mark.parametrize("ts", [5, None, ["2026"], {"a": 1}, "not a time"])
def test_a_content_announcement_is_read_whatever_extra_ts_it_carries(ts):
    # The announcement has no time in its schema; a "ts" of any other kind than a string raised TypeError.
    assert schema.check_content({"v": 1, "version": 3, "ts": ts})["version"] == 3


@pytest.mark.parametrize("url", ["https://cdn.example/c\x1b[2J/", "https://cdn.example/\x07/", "https://x/\x9b1m/",
                                 "https://x/a b/", "https://x/\x00/"])
def test_a_content_url_with_control_characters_is_refused(url):
    with pytest.raises(MessageError) as caught:
        schema.check_content({"v": 1, "version": 3, "url": url})
    assert caught.value.reason == "invalid"
    assert schema.check_content({"v": 1, "version": 3, "url": "https://内容.example/minhang/v3/"})


def test_a_real_pair_of_surrogates_is_an_ordinary_character():
    msg = schema.decode(_raw_loan(item=b'"MH\\ud83d\\udcda"'), 65536)
    assert msg["item"] == "MH\U0001f4da"


@pytest.mark.parametrize("text", [b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-1e400"])
def test_nan_infinity_and_overflowing_numbers_are_not_json(text):
    # Python's json reads them; SQLite stores NaN as NULL, and PostgreSQL and every other JSON reader refuse them.
    with pytest.raises(MessageError) as caught:
        schema.decode(_raw_loan(door=b'{"x": [' + text + b"]}"), 65536)
    assert caught.value.reason == "not_json"
    assert schema.decode(_raw_loan(door=b"1.5e3"), 65536)["door"] == 1500.0


@pytest.mark.parametrize("seq", [2 ** 53, 2 ** 63, 2 ** 70])
def test_a_sequence_number_no_journal_column_can_hold_is_refused(seq):
    # The gateway's journal keeps seq in a BIGINT: a number beyond it would fail there, again and again.
    with pytest.raises(MessageError) as caught:
        schema.check_event(loan(seq=seq))
    assert caught.value.reason == "invalid"
    assert schema.check_event(loan(seq=schema.MAX_INTEGER))["seq"] == schema.MAX_INTEGER


@pytest.mark.parametrize("msg", [[], ["loan"], "loan", 7, None])
def test_the_checks_refuse_what_is_not_an_object(msg):
    for check in (schema.check_event, schema.check_outgoing, schema.check_content,
                  lambda m: schema.check_message("ack", m)):
        with pytest.raises(MessageError) as caught:
            check(msg)
        assert caught.value.reason == "not_object"


def test_an_outgoing_event_with_a_lone_surrogate_is_held_not_sent():
    with pytest.raises(MessageError) as caught:
        schema.check_outgoing(loan(item="MH\ud800"))
    assert caught.value.reason == "bad_text"


@pytest.mark.parametrize("bookcase", ["..", ".", "a..b", "-MH", "MH-", "M" * 65, "MH 01", "MH/01", "MH-01\n"])
def test_bookcase_ids_follow_the_configs_rule(bookcase, tmp_path):
    with pytest.raises(MessageError) as caught:
        schema.check_event(loan(bookcase=bookcase))
    assert caught.value.reason == "invalid"
    path = write_fleet_config(tmp_path, "MH-0001", "x", None)
    path.write_text(path.read_text(encoding="utf-8").replace('id = "MH-0001"', f'id = {json.dumps(bookcase)}'),
                    encoding="utf-8")
    with pytest.raises(Exception, match="bookcase.id"):
        load_config(path)


def test_remote_text_in_log_lines_is_escaped(caplog):
    record = logging.LogRecord("kiosk.sync", logging.WARNING, __file__, 1, "refused on %s: %s",
                               ("citybook/\x1b[2J", "bad\n12:00:00 INFO    kiosk.app: all is well\u2028"), None)
    line = SafeFormatter("%(levelname)s %(message)s").format(record)
    assert "\n" not in line and "\x1b" not in line and "\u2028" not in line
    assert line == ("WARNING refused on citybook/\\x1b[2J: bad\\n12:00:00 INFO    kiosk.app: all is well\\u2028")


def test_remote_text_in_a_logged_traceback_is_escaped():
    # An exception's text may quote a message ("applying a message failed with ValueError: …", once per kind).
    try:
        try:
            raise KeyError("\x1b]0;pwned\x07")
        except KeyError as inner:
            raise ValueError("bad ts\n12:00:00 INFO    kiosk.app: all is well") from inner
    except ValueError:
        record = logging.LogRecord("kiosk.sync", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    text = SafeFormatter("%(levelname)s %(message)s").format(record)
    assert "\x1b" not in text and "\x07" not in text
    lines = text.splitlines()
    assert "ValueError: bad ts\\n12:00:00 INFO    kiosk.app: all is well" in lines
    assert not any(line.startswith("12:00:00") for line in lines)
    assert "The above exception was the direct cause of the following exception:" in lines
    assert sum(line.startswith("Traceback (most recent call last):") for line in lines) == 2


# --- the whole inbound path, fuzzed ----------------------------------------------------------------

@pytest.fixture(scope="module")
def replicator(tmp_path_factory):
    store = Store(tmp_path_factory.mktemp("fuzz") / "k.sqlite3", "MH-B")
    yield Replicator(store, Topics(ROOT_TOPIC, "MH-B"), 8192, Counter())
    store.close()


def _footprint(store: Store) -> tuple:
    return tuple(store.db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
                 for t in ("inbox", "remote_loans", "remote_returns", "remote_holdings", "patrons", "peers",
                           "search_titles", "parked_messages", "outbox"))


def _has_surrogate(value) -> bool:
    if isinstance(value, str):
        return any(0xD800 <= ord(c) <= 0xDFFF for c in value)
    if isinstance(value, dict):
        return any(_has_surrogate(k) or _has_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_surrogate(v) for v in value)
    return False


# Text as anyone may send it: any character, lone surrogates (hypothesis leaves them out unless asked) and
# control characters included.
TEXT = st.text(st.characters() | st.characters(categories=["Cs", "Cc", "Zl", "Zp", "Cf"]), max_size=12)
TOPICS = st.sampled_from([EVENT, ROOT_TOPIC + "bookcase/MH-X/holdings", ROOT_TOPIC + "central/patron/" + "a" * 32,
                          ROOT_TOPIC + "central/ack/MH-B", ROOT_TOPIC + "bookcase/MH-B/event", "elsewhere/x",
                          ROOT_TOPIC + "central/patron/\x1b[31m", ROOT_TOPIC + "bookcase/../event",
                          ROOT_TOPIC + "central/content"]) | TEXT
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | TEXT | st.sampled_from(
                        [2 ** 53, 2 ** 64, -1, 0, "", "..", "loan", "return", "MH-X", loan()["patron"]]),
                    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(TEXT, kids, max_size=4),
                    max_leaves=12)
FIELDS = ("v", "id", "bookcase", "seq", "ts", "type", "session", "door", "item", "uid", "patron", "due", "items",
          "results", "status", "patron_class", "loans_elsewhere")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(topic=TOPICS, payload=st.binary(max_size=300))
def test_fuzz_any_bytes_on_any_topic(replicator, topic, payload):
    before = _footprint(replicator.store)
    outcome = replicator.receive(topic, payload)       # must not raise
    if outcome == REFUSED:
        assert _footprint(replicator.store) == before


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(topic=TOPICS, changes=st.dictionaries(st.sampled_from(FIELDS), JSON, max_size=4))
def test_fuzz_messages_shaped_like_events(replicator, topic, changes):
    before = _footprint(replicator.store)
    body = {**loan(), **changes}
    payload = json.dumps(body, ensure_ascii=True).encode()      # lone surrogates travel as \uXXXX escapes
    outcome = replicator.receive(topic, payload)
    if outcome == REFUSED:
        assert _footprint(replicator.store) == before
    if _has_surrogate(body):
        assert outcome in (REFUSED, OWN)                        # OWN: our own topic, never read


MESSAGE_FIELDS = FIELDS + ("version", "url", "name", "latitude", "online", "outbox_depth", "last_sync", "counters",
                           "health", "doors", "content")
_HOLDINGS = {"v": 1, "id": str(uuid.uuid4()), "bookcase": "MH-X", "ts": "2026-11-25T10:00:00+08:00",
             "type": "holdings", "items": []}
_ACK = {"v": 1, "id": str(uuid.uuid4()), "ts": "2026-11-25T10:00:00+08:00", "type": "ack", "bookcase": "MH-B",
        "results": []}
_STATE = {"v": 1, "id": str(uuid.uuid4()), "bookcase": "MH-X", "ts": "2026-11-25T10:00:00+08:00", "type": "state",
          "online": True, "version": "1.0", "outbox_depth": 0, "last_sync": None}
# Each check with a message it passes, to be changed a few fields at a time.
CHECKS = [(schema.check_event, loan()), (schema.check_outgoing, loan()),
          (schema.check_content, {"v": 1, "version": 2, "url": "https://cdn.example/v2/"}),
          (lambda m: schema.check_message("patron_status", m), patron_status()),
          (lambda m: schema.check_message("holdings", m), _HOLDINGS),
          (lambda m: schema.check_message("ack", m), _ACK),
          (lambda m: schema.check_message("state", m), _STATE)]


@pytest.mark.parametrize("check, msg", CHECKS)
def test_each_fuzzed_check_passes_its_message_unchanged(check, msg):
    check(dict(msg))


@settings(max_examples=1500, deadline=None)
@given(pair=st.sampled_from(CHECKS), changes=st.dictionaries(st.sampled_from(MESSAGE_FIELDS), JSON, max_size=4))
def test_fuzz_the_checks_raise_nothing_but_a_message_error(pair, changes):
    # The gateway calls them too, and catches MessageError only: anything else would end its journal writer.
    check, base = pair
    try:
        check({**base, **changes})
    except MessageError as exc:
        assert exc.reason in schema.REASONS


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _received(mid: int, payload: bytes, topic: str = EVENT) -> Received:
    return Received(gen=1, topic=topic, payload=payload, mid=mid, qos=1, retain=False)


def _fleet_sync(tmp_path):
    path = write_fleet_config(tmp_path, "MH-B", "测试书柜", {"host": "127.0.0.1", "port": 1})
    cfg = load_config(path)
    store = Store(cfg.db_path, "MH-B")
    clock = _Clock()
    fs = FleetSync(cfg, store, lambda event: None, clock=clock)
    acks: list[int] = []
    fs.link.ack = lambda gen, mid, qos: acks.append(mid)          # the network's edge: record what is acked
    return fs, store, clock, acks, path


@pytest.fixture(scope="module")
def fleet_sync(tmp_path_factory):
    fs, store, clock, acks, path = _fleet_sync(tmp_path_factory.mktemp("fuzz-sync"))
    yield fs, acks
    store.close()


@settings(max_examples=300, deadline=None)
@given(topic=TOPICS, changes=st.dictionaries(st.sampled_from(FIELDS + ("version", "url")), JSON, max_size=4),
       raw=st.none() | st.binary(max_size=200))
def test_fuzz_every_message_is_acknowledged_once_and_none_is_left_waiting(fleet_sync, topic, changes, raw):
    # The whole inbound path as the core loop runs it (FleetSync.handle): whatever arrives is acknowledged
    # exactly once, at once; nothing is left for a retry (that is for failures of ours only).
    fs, acks = fleet_sync
    mid = len(acks) + 1
    payload = raw if raw is not None else json.dumps({**loan(), **changes}, ensure_ascii=True).encode()
    fs.handle(_received(mid, payload, topic))
    assert acks[-1:] == [mid] and acks.count(mid) == 1
    assert len(fs.retries) == 0 and fs.counters["apply_failed"] == 0
    # Every refusal has a reason the schema gave: none got as far as failing while it was applied.
    assert fs.counters["bad_unreadable"] == 0


# --- failures of ours: bounded tries, then parked ------------------------------------------------------

@pytest.fixture
def sync(tmp_path):
    fs, store, clock, acks, path = _fleet_sync(tmp_path)
    yield fs, store, clock, acks, path
    store.close()


def test_a_failure_of_ours_is_retried_then_applied(sync, monkeypatch):
    fs, store, clock, acks, config_path = sync
    real, failures = replica.apply_once, [2]

    def locked_twice(*args, **kwargs):
        if failures[0]:
            failures[0] -= 1
            raise sqlite3.OperationalError("database is locked")
        return real(*args, **kwargs)

    monkeypatch.setattr(replica, "apply_once", locked_twice)
    good = loan()
    fs.handle(_received(1, json.dumps(good).encode()))
    assert acks == [] and len(fs.retries) == 1
    for _ in range(2):
        clock.now += 100
        fs.pump()
    assert acks == [1] and len(fs.retries) == 0
    assert [r["event_id"] for r in store.db.query("SELECT event_id FROM remote_loans")] == [good["id"]]
    assert fs.counters["apply_failed"] == 2 and replica.parked(store.db) == []


def test_a_message_that_keeps_failing_for_us_is_parked_once_and_acknowledged(sync, monkeypatch, caplog):
    fs, store, clock, acks, config_path = sync
    caplog.set_level(logging.ERROR, logger="kiosk.sync")

    def full(*args, **kwargs):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(replica, "apply_once", full)
    payload = json.dumps(loan()).encode()
    fs.handle(_received(7, payload))
    for _ in range(retry.MAX_ATTEMPTS + 3):
        clock.now += 1000
        fs.pump()
    (parked,) = replica.parked(store.db)
    assert parked["attempts"] == retry.MAX_ATTEMPTS and "disk is full" in parked["error"] and parked["topic"] == EVENT
    assert store.db.execute("SELECT payload FROM parked_messages").fetchone()[0] == payload
    assert acks == [7] and len(fs.retries) == 0 and fs.counters["parked"] == 1
    parked_lines = [r.getMessage() for r in caplog.records if "parked a message" in r.getMessage()]
    assert len(parked_lines) == 1 and "kiosk sync status" in parked_lines[0]
    # Staff see it in `kiosk sync status`.
    fs._save()
    out = subprocess.run([sys.executable, "-m", "kiosk", "sync", "status", "--config", str(config_path)],
                         capture_output=True, text=True, check=True).stdout
    assert "parked for staff: 1 message(s)" in out and "database or disk is full" in out


def _park(fs, clock, monkeypatch, *payloads: bytes) -> None:
    """Park each payload: the database 'full' for every try of it (a failure of ours)."""
    def full(*args, **kwargs):
        raise sqlite3.OperationalError("database or disk is full")

    with monkeypatch.context() as m:
        m.setattr(replica, "apply_once", full)
        for mid, payload in enumerate(payloads, 1):
            fs.handle(_received(mid, payload))
        for _ in range(retry.MAX_ATTEMPTS + 3):
            clock.now += 1000
            fs.pump()
    assert len(replica.parked(fs.store.db)) == len(payloads)


def test_parked_messages_are_applied_at_the_next_start_once_the_fault_is_gone(sync, monkeypatch):
    # Parked and forgotten, a loan from another bookcase would never count against the patron's limit here.
    fs, store, clock, acks, config_path = sync
    loans = [loan(item=f"MH2020900{i}") for i in (1, 2)]
    _park(fs, clock, monkeypatch, *(json.dumps(x).encode() for x in loans))
    again = FleetSync(load_config(config_path), store, lambda event: None, clock=clock)
    again.start()
    again.close()
    assert sorted(r["event_id"] for r in store.db.query("SELECT event_id FROM remote_loans")) == \
        sorted(x["id"] for x in loans)
    assert replica.parked(store.db) == [] and again.counters["unparked"] == 2


def test_parked_messages_stay_parked_while_the_fault_lasts(sync, monkeypatch, caplog):
    fs, store, clock, acks, config_path = sync
    _park(fs, clock, monkeypatch, json.dumps(loan()).encode())
    caplog.set_level(logging.ERROR, logger="kiosk.sync")
    monkeypatch.setattr(replica, "apply_once", lambda *a, **k: (_ for _ in ()).throw(
        sqlite3.OperationalError("database is locked")))
    again = FleetSync(load_config(config_path), store, lambda event: None, clock=clock)
    again.start()
    again.close()
    assert len(replica.parked(store.db)) == 1 and again.counters["unparked"] == 0
    assert any("still cannot be applied" in r.getMessage() for r in caplog.records)


def test_a_locked_database_keeps_a_valid_message_with_the_broker_until_the_lock_goes(sync, caplog):
    # Another process holds the write lock (as `kiosk patrons load` does while it writes): neither applying nor
    # parking can write, so the loan stays unacknowledged (the broker keeps it) and is applied once the lock goes;
    # poison meanwhile is refused and acknowledged, as it writes nothing.
    fs, store, clock, acks, config_path = sync
    caplog.set_level(logging.ERROR, logger="kiosk.sync")
    store.db.conn.execute("PRAGMA busy_timeout = 50")             # not the daemon's 10 s per try, in a test
    other = sqlite3.connect(store.db.conn.execute("PRAGMA database_list").fetchone()[2], isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        good = loan(id=str(uuid.uuid4()))
        fs.handle(_received(1, json.dumps(good).encode()))
        fs.handle(_received(2, _raw_loan(item=SURROGATE)))
        for _ in range(retry.MAX_ATTEMPTS + 2):
            clock.now += 1000
            fs.pump()
        assert acks == [2] and len(fs.retries) == 1 and fs.counters["apply_failed"] == 1 + retry.MAX_ATTEMPTS + 2
        assert sum("cannot be parked either" in r.getMessage() for r in caplog.records) == 1
        # The counters could not be saved either: one line while it lasts, not a traceback on every event.
        assert sum("could not write the sync counters" in r.getMessage() for r in caplog.records) == 1
    finally:
        other.execute("ROLLBACK")
        other.close()
    clock.now += 1000
    fs.pump()
    assert acks == [2, 1] and len(fs.retries) == 0 and replica.parked(store.db) == []
    assert [r["event_id"] for r in store.db.query("SELECT event_id FROM remote_loans")] == [good["id"]]


def test_a_peers_name_reaches_the_operators_terminal_escaped(sync):
    # Another bookcase names itself in its holdings; `kiosk sync status` prints the name on a staff terminal.
    fs, store, clock, acks, config_path = sync
    holdings = {"v": 1, "id": str(uuid.uuid4()), "bookcase": "MH-X", "ts": "2026-11-25T10:00:00+08:00",
                "type": "holdings", "name": "书柜\x1b]2;owned\x07\x1b[2J\nbookcase MH-Z: fake", "items": []}
    fs.handle(_received(1, json.dumps(holdings).encode(), ROOT_TOPIC + "bookcase/MH-X/holdings"))
    assert acks == [1] and fs.counters["holdings_applied"] == 1
    out = subprocess.run([sys.executable, "-m", "kiosk", "sync", "status", "--config", str(config_path)],
                         capture_output=True, text=True, check=True).stdout
    assert "\x1b" not in out and "\x07" not in out
    assert "  bookcase MH-X 书柜\\x1b]2;owned\\x07\\x1b[2J\\nbookcase MH-Z: fake: holds 0 books" in out


def test_an_unforeseen_error_is_the_messages_fault_refused_and_acknowledged(sync, monkeypatch, caplog):
    fs, store, clock, acks, config_path = sync
    caplog.set_level(logging.ERROR, logger="kiosk.sync")

    def broken(conn, msg):
        raise KeyError("a field no schema foresaw")

    monkeypatch.setattr(replica, "remote_loan", broken)
    for mid in (1, 2, 3):
        fs.handle(_received(mid, json.dumps(loan()).encode()))
    assert acks == [1, 2, 3] and len(fs.retries) == 0
    assert fs.counters["bad_unreadable"] == 3
    assert len([r for r in caplog.records if r.exc_info]) == 1          # one traceback for the kind, not three


def test_the_replicator_applies_a_clean_message(replicator):
    assert replicator.receive(EVENT, json.dumps(loan(id=str(uuid.uuid4()))).encode()) == APPLIED
