"""The journal on both databases: idempotent on id, order per item and per bookcase, leases, review, acks."""

from __future__ import annotations

import time

import pytest

from gateway.config import JournalConfig
from gateway.journal import Outcome, open_journal
from tests.gateway.support import Bookcase, add_patrons, record

ADULT = "3101120000018"


@pytest.fixture(params=["sqlite", "postgresql"])
def journal(request, tmp_path):
    if request.param == "sqlite":
        j = open_journal(JournalConfig(path=tmp_path / "journal.sqlite3"))
    else:
        server = request.getfixturevalue("postgres_server")
        j = open_journal(JournalConfig(url=server.new_database()))
    yield j
    j.close()


def test_an_event_is_journaled_once_and_a_copy_counts_as_duplicate(journal):
    a = Bookcase("MH-A")
    loan = a.loan("MH20200001", ADULT)
    assert [r.status for r in record(journal, loan)] == ["new"]
    assert [r.status for r in record(journal, loan, loan)] == ["duplicate", "duplicate"]
    row = journal.event(loan["id"])
    assert row["state"] == "received" and row["duplicates"] == 2 and row["item"] == "MH20200001"


def test_other_events_are_informational_at_once_and_their_ack_is_due(journal):
    a = Bookcase("MH-A")
    alarm = a.event("alarm", alarm="door_held_open", door=2)
    record(journal, alarm)
    assert journal.event(alarm["id"])["state"] == "informational"
    acks = journal.claim_acks("gw/acks", 10)
    assert [r["id"] for r in acks] == [alarm["id"]]
    assert journal.claim_acks("other/acks", 10) == []        # leased to the first
    journal.mark_acked([alarm["id"]], "gw/acks")
    assert journal.event(alarm["id"])["acked_at"] is not None


def test_each_item_goes_in_event_time_order_whatever_the_arrival(journal):
    a, b = Bookcase("MH-A"), Bookcase("MH-B")
    loan = a.loan("MH20200001", ADULT, minutes=1)
    ret = b.ret("MH20200001", minutes=30)
    other = b.loan("MH20200002", ADULT, minutes=1)
    record(journal, ret, other)          # the return comes first: A was offline
    record(journal, loan)
    first = journal.claim("w1", 60)
    assert first.id == loan["id"]        # the earliest event of all
    second = journal.claim("w2", 60)
    assert second.id == other["id"]      # the return waits: its item's loan is being sent
    assert journal.claim("w3", 60) is None
    assert journal.finish(first, "w1", Outcome("applied", due="2026-12-29"), "gw")
    assert journal.claim("w3", 60).id == ret["id"]


def test_a_seq_after_a_gap_waits_for_the_gap_and_is_released_when_it_fills(journal):
    a = Bookcase("MH-A")
    e1, e2, e3 = a.loan("I1", ADULT), a.loan("I2", ADULT), a.loan("I3", ADULT)
    record(journal, e1, e3)
    assert journal.event(e3["id"])["state"] == "held"
    assert {journal.claim("w", 60).id} == {e1["id"]} and journal.claim("w", 60) is None
    record(journal, e2)
    assert journal.event(e3["id"])["state"] == "received"


def test_a_gap_that_never_fills_is_forgiven_after_the_hold(journal):
    a = Bookcase("MH-A")
    e1, _, e3, e4 = a.loan("I1", ADULT), a.loan("I2", ADULT), a.loan("I3", ADULT), a.loan("I4", ADULT)
    record(journal, e1, e3, hold_s=0.2)
    time.sleep(0.3)
    assert journal.forgive_gaps() == 1
    record(journal, e4, hold_s=60)
    assert journal.event(e4["id"])["state"] == "received"       # not held behind the old gap any more


def test_an_event_left_sending_by_a_dead_gateway_is_taken_over_uncertain(journal):
    a = Bookcase("MH-A")
    loan = a.loan("I1", ADULT)
    record(journal, loan)
    claimed = journal.claim("gw-1#aaaa/0", lease_s=60)
    assert claimed.uncertain is False
    assert journal.claim("gw-2#bbbb/0", lease_s=60) is None      # its lease holds
    assert journal.expire_own("gw-1") == 1                         # gw-1 restarted
    again = journal.claim("gw-1#cccc/0", lease_s=60)
    assert again.id == loan["id"] and again.uncertain and again.previous == "sending" and again.attempts == 2
    assert not journal.finish(claimed, "gw-1#aaaa/0", Outcome("applied"), "gw-1")    # the old owner is out


def test_review_queue_retry_and_resolve_are_recorded_with_who(journal):
    a = Bookcase("MH-A")
    loan, loan2 = a.loan("I1", ADULT), a.loan("I2", ADULT)
    record(journal, loan, loan2)
    for ev in (journal.claim("w", 60), journal.claim("w", 60)):
        journal.finish(ev, "w", Outcome("rejected", reason="Item cannot be checked out",
                                        screen_message="Item cannot be checked out"), "gw")
    queue = journal.review_list()
    assert [r["id"] for r in queue] == [loan["id"], loan2["id"]]
    assert queue[0]["screen_message"] == "Item cannot be checked out" and queue[0]["patron"].endswith("…")
    journal.review_retry(loan["id"][:8], "li.wei", "item record fixed")
    claimed = journal.claim("w", 60)
    assert claimed.id == loan["id"]
    journal.finish(claimed, "w", Outcome("applied"), "gw")
    journal.review_resolve(loan2["id"], "zhang.min", "lent by hand at the desk")
    assert journal.review_list() == []
    done = {r["id"]: r for r in journal.review_list(everything=True)}
    assert done[loan["id"]]["resolved_by"] == "retry"
    assert done[loan2["id"]]["resolved_by"] == "zhang.min"
    assert [h["action"] for h in done[loan["id"]]["history"]] == ["rejected", "retry"]
    with pytest.raises(ValueError, match="not in the review queue"):
        journal.review_resolve(loan2["id"], "x", "again")


def test_open_bookcase_loans_count_only_loans_not_ended_later(journal):
    a, b = Bookcase("MH-A"), Bookcase("MH-B")
    add_patrons(journal, [ADULT])
    l1, l2, r1 = a.loan("I1", ADULT), a.loan("I2", ADULT), b.ret("I1", minutes=10)
    record(journal, l1, l2, r1)
    for _ in range(3):
        ev = journal.claim("w", 60)
        journal.finish(ev, "w", Outcome("applied"), "gw")
    from tests.gateway.support import key
    assert journal.open_bookcase_loans(key(ADULT)) == 1


def test_a_refused_message_holding_a_nul_byte_is_kept_and_the_stream_goes_on(journal):
    # PostgreSQL text cannot hold a NUL: stored raw, the batch failed on every try and the gateway stalled.
    from gateway.journal import Incoming
    a = Bookcase("MH-A")
    garbage = Incoming("citybook/v1/minhang/bookcase/MH-A/event", "MH-A", b"\x00 hello \x00", reason="not_json",
                       detail="not JSON text")
    bad_event = a.event("alarm", alarm="door_held_open", door=2)
    with_envelope = Incoming("citybook/v1/minhang/bookcase/MH-A/event", "MH-A", b'{"junk": "\x00"}',
                             reason="invalid", detail="door: \x00", envelope=bad_event)
    good = a.loan("MH20200001", ADULT)
    out = journal.record([garbage, with_envelope], "gw-test", 60.0) + record(journal, good)
    assert [r.status for r in out] == ["refused", "refused", "new"]
    assert "\\x00" in journal.event(bad_event["id"])["payload"]
