"""The session state machine against a real SQLite ledger; devices are replaced by the events they post."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from kiosk.core import events as ev
from kiosk.core import flow as fl
from kiosk.core.policy import LoanPolicy, card_hint, patron_key
from kiosk.store.ledger import Store

SECRET = "test-secret-0123456789"
ADULT, BLOCKED, FULL = "3101120000018", "3101120000075", "3101120000034"


class Harness:
    def __init__(self, path, **kw):
        self.now = 1000.0
        self.wall_offset_s = 0.0            # moves the wall clock (a daemon that was down for a while)
        self.path = path
        self.store = Store(path, "T-1")
        self.store.upsert_patrons([
            {"patron_key": patron_key(SECRET, ADULT), "patron_class": "adult", "status": "active",
             "card_hint": card_hint(ADULT)},
            {"patron_key": patron_key(SECRET, BLOCKED), "patron_class": "adult", "status": "blocked"},
            {"patron_key": patron_key(SECRET, FULL), "patron_class": "adult", "status": "active",
             "loans_elsewhere": 14},
        ])
        self.store.upsert_catalogue([{"item_id": f"MH{i}", "title": f"书{i}", "author": ""} for i in range(10)])
        self.kw = kw
        self.flow = self.make_flow()

    def make_flow(self):
        kw = dict(door_open_prompt_s=30, door_open_alarm_s=90, door_open_timeout_s=20, receipt_s=8,
                  rescan_interval_s=10, choose_door_timeout_s=30)
        kw.update(self.kw)
        return fl.Flow(bookcase_id="T-1", doors=[1, 2], ledger=self.store, policy=LoanPolicy(15, {"adult": 15}),
                       secret=SECRET, clock=lambda: self.now,
                       wallclock=lambda: datetime(2026, 11, 25, 10, 0, tzinfo=timezone.utc)
                       + timedelta(seconds=self.wall_offset_s), **kw)

    def stock(self, door, uids):
        self.store.place_holdings(door, [(u, "MH" + u[-1]) for u in uids])
        self.store.db.execute("INSERT OR REPLACE INTO meta VALUES (?, 'x')", (f"counted:door:{door}",))

    def start(self, closed=(1, 2)):
        out = self.flow.start()
        for d in closed:
            out += self.flow.handle(ev.DoorSensed(d, False, True))
        return out

    def send(self, event):
        return self.flow.handle(event)

    def tick(self, seconds):
        self.now += seconds
        return self.flow.handle(ev.Tick())

    def scan_result(self, effect, present, uncertain=(), tags=None):
        return self.send(ev.ScanResult(effect.door, effect.session_id, frozenset(present), frozenset(uncertain),
                                       2, True, tags or {}, effect.attempt))

    def borrow_session(self, door, card=ADULT):
        self.send(ev.DoorChosen(door))
        (unlock,) = self.send(ev.CardPresented(card))
        assert isinstance(unlock, ev.Unlock) and unlock.door == door
        self.send(ev.UnlockResult(door, unlock.session_id))
        self.send(ev.DoorSensed(door, True, False))
        (scan,) = self.send(ev.DoorSensed(door, False, True))
        assert isinstance(scan, ev.Scan) and scan.session_id == unlock.session_id
        return scan


@pytest.fixture
def h(tmp_path):
    harness = Harness(tmp_path / "k.sqlite3")
    harness.stock(1, ["U1", "U2", "U3"])
    harness.stock(2, ["U4"])
    yield harness
    harness.store.close()


def types(store):
    return [e["type"] for e in store.outbox()]


def test_borrow_two_books(h):
    h.start()
    h.send(ev.DoorChosen(1))
    (unlock,) = h.send(ev.CardPresented(ADULT))
    # Invariant 2: the before-inventory is persisted before the unlock effect is handed out.
    (row,) = h.store.sessions()
    assert row["state"] == "unlocking" and "U1" in row["before_json"]
    assert h.flow.state == fl.DOOR_OPEN
    h.send(ev.UnlockResult(1, unlock.session_id))
    h.send(ev.DoorSensed(1, True, False))
    (scan,) = h.send(ev.DoorSensed(1, False, True))
    assert h.flow.state == fl.SCANNING and scan.known >= {"U1", "U2", "U3"}
    h.scan_result(scan, {"U1"})
    assert h.flow.state == fl.RECEIPT
    assert [(i, t) for i, t, _ in h.flow.receipt.borrowed] == [("MH2", "书2"), ("MH3", "书3")]
    loans = h.store.loans()
    assert [(r["item_id"], r["patron_key"], r["due_at"]) for r in loans] == [
        ("MH2", patron_key(SECRET, ADULT), "2026-12-25"), ("MH3", patron_key(SECRET, ADULT), "2026-12-25")]
    assert {r["uid"] for r in h.store.holdings(1)} == {"U1"}
    assert types(h.store).count("loan") == 2 and "session_closed" in types(h.store)
    assert h.store.open_sessions() == []
    h.tick(9)
    assert h.flow.state == fl.IDLE


def test_return_closes_the_loan_and_both_in_one_session(h):
    h.start()
    scan = h.borrow_session(1)
    h.scan_result(scan, {"U1", "U2"})               # U3 borrowed
    h.tick(9)
    scan = h.borrow_session(2)
    h.scan_result(scan, {"U3"})                     # U4 borrowed, U3 returned at door 2
    loans = {r["item_id"]: r for r in h.store.loans()}
    assert loans["MH3"]["returned_at"] is not None and loans["MH4"]["returned_at"] is None
    (ret,) = h.store.returns()
    assert ret["item_id"] == "MH3" and ret["loan_id"] == loans["MH3"]["id"] and ret["door"] == 2
    assert [i for i, _ in h.flow.receipt.returned] == ["MH3"]
    assert {r["uid"] for r in h.store.holdings(2)} == {"U3"}


def test_uncertain_tag_is_not_charged(h):
    h.start()
    scan = h.borrow_session(1)
    h.scan_result(scan, {"U1"}, uncertain={"U2"})
    assert [r["item_id"] for r in h.store.loans()] == ["MH3"]
    assert "uncertain_tag" in types(h.store)
    assert h.flow.receipt.uncertain == 1
    # The next scan finds U2 gone for sure: it is missing, never the next patron's loan.
    h.tick(9)
    scan = h.borrow_session(1)
    h.scan_result(scan, {"U1"})
    assert [r["item_id"] for r in h.store.loans()] == ["MH3"]
    assert [r["item_id"] for r in h.store.missing()] == ["MH2"]


def test_unknown_tag_becomes_foreign_object(h):
    h.start()
    scan = h.borrow_session(1)
    tags = {"JUNK": ev.TagInfo(None, None, "CRC mismatch in both byte orders")}
    h.scan_result(scan, {"U1", "U2", "U3", "JUNK"}, tags=tags)
    (foreign,) = [e for e in h.store.outbox() if e["type"] == "foreign_object"]
    assert foreign["uid"] == "JUNK" and "CRC" in foreign["reason"] and foreign["change"] == "added"
    assert h.store.loans() == [] and h.store.returns() == []


def test_blocked_and_unknown_patrons_are_refused(h):
    h.start()
    assert h.send(ev.CardPresented(BLOCKED)) == []
    assert (h.flow.state, h.flow.reason) == (fl.REFUSED, "blocked")
    h.tick(9)
    assert h.send(ev.CardPresented("9999999999999")) == []
    assert h.flow.reason == "unknown_card"
    assert [e["reason"] for e in h.store.outbox() if e["type"] == "refusal"] == ["blocked", "unknown_card"]
    assert h.store.sessions() == []


def test_over_the_limit_still_records_what_left_and_alarms(h):
    h.start()
    scan = h.borrow_session(1, card=FULL)          # 14 elsewhere, limit 15: may borrow 1
    h.scan_result(scan, {"U1"})                      # takes 2
    assert len(h.store.loans()) == 2
    (alarm,) = [e for e in h.store.outbox() if e.get("alarm") == "over_limit"]
    assert (alarm["borrowed"], alarm["may_borrow"]) == (2, 1)


def test_door_held_open_prompts_then_alarms_once(h):
    h.start()
    h.send(ev.DoorChosen(1))
    (unlock,) = h.send(ev.CardPresented(ADULT))
    h.send(ev.DoorSensed(1, True, False))
    h.tick(31)
    assert not any(e.get("alarm") == "door_held_open" for e in h.store.outbox())
    h.tick(60)
    h.tick(60)
    assert sum(e.get("alarm") == "door_held_open" for e in h.store.outbox()) == 1
    (scan,) = h.send(ev.DoorSensed(1, False, True))
    h.scan_result(scan, {"U1", "U2", "U3"})
    assert h.flow.state == fl.RECEIPT and h.store.loans() == []


def test_forced_door_records_missing_not_loans(h):
    h.start()
    assert h.send(ev.DoorSensed(1, True, False)) == []
    assert any(e.get("alarm") == "door_forced" for e in h.store.outbox())
    (scan,) = h.send(ev.DoorSensed(1, False, True))
    h.scan_result(scan, {"U1"})
    assert h.store.loans() == []
    assert sorted(r["item_id"] for r in h.store.missing()) == ["MH2", "MH3"]
    assert h.flow.state == fl.IDLE                   # nobody's session: the screen is not hijacked


def test_reader_silent_mid_scan_keeps_the_session_and_retries(h):
    h.start()
    scan = h.borrow_session(1)
    h.send(ev.ScanFailed(1, scan.session_id, "RFID reader 1: no answer after 3 tries", scan.attempt))
    assert h.flow.state == fl.RECEIPT and h.flow.receipt.pending
    assert h.store.loans() == [] and len(h.store.open_sessions()) == 1
    assert 1 in h.flow.snapshot().doors_out_of_service
    assert h.tick(5) == []
    (again,) = h.tick(6)
    assert again.session_id == scan.session_id
    h.send(ev.ScanFailed(1, scan.session_id, "RFID reader 1: no answer after 3 tries", again.attempt))
    assert h.tick(15) == []                          # the second failure waits twice as long
    (again,) = h.tick(6)
    h.scan_result(again, {"U1", "U2"})
    assert [r["item_id"] for r in h.store.loans()] == ["MH3"]
    assert 1 not in h.flow.snapshot().doors_out_of_service


def test_reopened_during_scan_discards_the_stale_result(h):
    h.start()
    scan = h.borrow_session(1)
    h.send(ev.DoorSensed(1, True, False))
    h.scan_result(scan, {"U1"})
    assert h.store.loans() == []
    (scan2,) = h.send(ev.DoorSensed(1, False, True))
    h.scan_result(scan2, {"U1", "U2"})
    assert [r["item_id"] for r in h.store.loans()] == ["MH3"]


def test_restart_resumes_an_open_session(h):
    h.start()
    h.send(ev.DoorChosen(1))
    h.send(ev.CardPresented(ADULT))
    h.send(ev.DoorSensed(1, True, False))
    # Power cut. A new flow over the same database, doors reported as the board sees them now.
    h.flow = h.make_flow()
    assert h.flow.start() == []
    assert h.flow.state == fl.DOOR_OPEN
    (scan,) = h.send(ev.DoorSensed(1, False, True))
    h.send(ev.DoorSensed(2, False, True))
    h.scan_result(scan, {"U1", "U3"})
    assert [r["item_id"] for r in h.store.loans()] == ["MH2"]
    assert h.store.open_sessions() == []


def test_settling_twice_does_not_double_a_loan(h):
    h.start()
    scan = h.borrow_session(1)
    live = h.flow.live[scan.session_id]
    h.scan_result(scan, {"U1", "U2"})
    h.flow.live[scan.session_id] = live              # a replayed result for a session already settled
    live.scanning = True
    h.scan_result(scan, {"U1", "U2"})
    assert len(h.store.loans()) == 1


def test_first_start_takes_stock_without_returns(tmp_path):
    h = Harness(tmp_path / "fresh.sqlite3")
    h.flow.start()
    (scan,) = h.send(ev.DoorSensed(1, False, True))
    h.send(ev.DoorSensed(2, False, True))
    h.scan_result(scan, {"U7", "U8"}, tags={"U7": ev.TagInfo("MH7", 1), "U8": ev.TagInfo("MH8", 1)})
    assert h.store.returns() == [] and {r["uid"] for r in h.store.holdings(1)} == {"U7", "U8"}
    # The next restart does not take stock again.
    h.flow = h.make_flow()
    h.flow.start()
    assert h.send(ev.DoorSensed(1, False, True)) == []
    h.store.close()


def test_lock_board_fault_takes_doors_out_of_service(h):
    h.start()
    h.send(ev.DeviceLink("lockboard", False, "board 0 does not answer", (1,)))
    snap = h.flow.snapshot()
    assert snap.doors_out_of_service == (1,) and snap.doors_in_service == (2,) and not snap.out_of_service
    h.send(ev.DoorChosen(1))
    assert h.send(ev.CardPresented(ADULT)) == []     # door 1 cannot open: the patron chooses again
    assert h.flow.state == fl.CHOOSING
    (unlock,) = h.send(ev.DoorChosen(2))
    assert unlock.door == 2
    h.send(ev.DeviceLink("lockboard", False, "port vanished", (1, 2)))
    assert h.flow.snapshot().out_of_service


def test_link_alarms_only_for_a_link_that_went_down(h):
    h.start()
    h.send(ev.DeviceLink("rfid", True, "connected", (1, 2)))          # start-up: nothing to clear
    assert [e for e in h.store.outbox() if e["type"].startswith("alarm")] == []
    h.send(ev.DeviceLink("rfid", False, "port vanished", (1, 2)))
    h.send(ev.DeviceLink("rfid", False, "still gone", (1, 2)))        # a reconnect attempt failing again
    h.send(ev.DeviceLink("rfid", True, "connected", (1, 2)))
    assert [(e["type"], e["alarm"], e.get("device")) for e in h.store.outbox() if e["type"].startswith("alarm")] == [
        ("alarm", "hardware_fault", "rfid"), ("alarm", "out_of_service", None),
        ("alarm_cleared", "hardware_fault", "rfid"), ("alarm_cleared", "out_of_service", None)]
