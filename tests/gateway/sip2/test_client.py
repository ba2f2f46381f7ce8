"""Sip2Client against the simulated ILS over real TCP (and a scripted server for what the ILS never does)."""

from __future__ import annotations

import socket
from datetime import datetime, timedelta

import pytest

from gateway.sip2 import (CheckoutResponse, ItemInformationResponse, LoginResponse, ScStatusResponse, Sip2Error,
                          Sip2LoginRefused, Sip2Lost, Sip2Unavailable)
from gateway.sip2.codec import decode, encode
from gateway.sip2.messages import RequestScResend
from tests.gateway.sip2.conftest import NOW, PASSWORD

ADULT, BLOCKED, NEAR_LIMIT = "3101120000018", "3101120000075", "3101120000034"
BOOK = "MH20200001"


def test_a_wrong_password_is_refused_and_nothing_else_is_sent(ils, client):
    c = client(password="wrong")
    with pytest.raises(Sip2LoginRefused, match="refused the SIP2 login of user 'citybook'"):
        c.connect()
    assert isinstance(Sip2LoginRefused("x"), Sip2Unavailable)
    assert not c.connected
    assert ils.server.stats["logins_refused"] == 1 and ils.requests("99") == 0


def test_no_ils_listening_is_unavailable(client):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]                # bound, not listening: connection refused
        c = client(port=port, connect_timeout_s=2)
        with pytest.raises(Sip2Unavailable, match=f"cannot connect to the ILS at 127.0.0.1:{port}"):
            c.connect()


def test_a_request_before_connect_is_unavailable(client):
    with pytest.raises(Sip2Unavailable, match="not connected"):
        client().item_information(BOOK)


def test_login_reads_the_acs_status(ils, client):
    c = client()
    c.connect()
    assert isinstance(c.acs, ScStatusResponse) and c.acs.online and c.acs.checkout_ok and c.acs.checkin_ok
    assert c.acs.institution == "CN-310112" and ils.server.stats["logins"] == 1 and ils.requests("99") == 1
    status = c.sc_status()
    assert status.protocol_version == "2.00" and ils.requests("99") == 2


def test_each_transaction(ils, client):
    c = client()
    c.connect()
    title = ils.library.item(BOOK).title
    loan_at = NOW - timedelta(days=3)               # an offline loan, replayed three days later
    out = c.checkout(ADULT, BOOK, no_block=True, transaction_ts=loan_at)
    assert isinstance(out, CheckoutResponse)
    assert out.ok and out.item_id == BOOK and out.patron_id == ADULT and out.title == title
    assert out.due_date == "20261231    235959"     # the ILS's: 30 days from *now*, end of day (not from loan_at)
    assert out.screen_message == ""

    info = c.item_information(BOOK)
    assert isinstance(info, ItemInformationResponse)
    assert info.circulation_status == "04" and info.patron_id == ADULT and info.due_date == out.due_date
    assert info.title == title and info.permanent_location == "MH-BOOKCASES"

    patron = c.patron_information(ADULT, items="charged")
    assert patron.valid_patron and patron.charged_items_count == 1 and patron.charged_items == (BOOK,)
    assert patron.patron_status == " " * 14 and patron.charged_items_limit == 15
    status = c.patron_status(ADULT)
    assert status.valid_patron and not status.flag(0) and status.personal_name

    back_at = NOW - timedelta(days=1)
    back = c.checkin(BOOK, return_ts=back_at)
    assert back.ok and not back.alert and back.patron_id == ADULT and back.permanent_location == "MH-BOOKCASES"
    assert c.item_information(BOOK).circulation_status == "03"
    assert c.end_session(ADULT).end_session

    loan, ret = ils.library.transactions()
    assert (loan["kind"], loan["patron"], loan["no_block"]) == ("checkout", ADULT, True)
    assert loan["date"] == loan_at.isoformat() and loan["at"] == NOW.isoformat()
    assert (ret["kind"], ret["date"]) == ("checkin", back_at.isoformat())      # the return date is honoured


def test_refusals_and_no_block(ils, client):
    c = client()
    c.connect()
    refused = c.checkout(BLOCKED, BOOK, no_block=False)
    assert not refused.ok and "blocked" in refused.screen_message and refused.due_date == ""
    lent = c.checkout(BLOCKED, BOOK, no_block=True)
    assert lent.ok and "despite" in lent.screen_message
    assert ils.library.transactions()[-1]["overridden"] == ["Patron blocked: see a librarian"]
    other = c.checkout(ADULT, BOOK)
    assert not other.ok and other.screen_message == "Item checked out to another patron"
    assert c.patron_status(BLOCKED).flag(0)
    unknown = c.item_information("NO-SUCH-ITEM")
    assert unknown.circulation_status == "01" and unknown.title == "" and not unknown.ok


def test_the_loan_limit(ils, client):
    c = client()
    c.connect()
    assert c.checkout(NEAR_LIMIT, "MH20200002", no_block=False).ok          # 14 elsewhere + 1 = 15
    over = c.checkout(NEAR_LIMIT, "MH20200003", no_block=False)
    assert not over.ok and "loan limit (15)" in over.screen_message
    assert c.checkout(NEAR_LIMIT, "MH20200003", no_block=True).ok
    info = c.patron_information(NEAR_LIMIT)
    assert info.charged_items_count == 16 and info.flag(5)


def test_a_drop_after_apply_is_lost_and_the_loan_is_there_once(ils, client):
    c = client()
    c.connect()
    ils.server.faults.drop_next = 1
    with pytest.raises(Sip2Lost, match="closed the connection before answering"):
        c.checkout(ADULT, BOOK, transaction_ts=NOW)
    assert not c.connected
    assert [t["kind"] for t in ils.library.transactions()] == ["checkout"]
    c.connect()                                     # what the gateway does next: ask, do not repeat
    info = c.item_information(BOOK)
    assert info.circulation_status == "04" and info.patron_id == ADULT


def test_a_bad_checksum_is_asked_for_again_and_recovers(ils, client):
    c = client()
    c.connect()
    ils.server.faults.badsum_next = 1
    out = c.checkout(ADULT, BOOK)
    assert out.ok and ils.server.stats["resends"] == 1
    assert len(ils.library.transactions()) == 1
    ils.server.faults.garbage_next = 2
    assert c.item_information(BOOK).patron_id == ADULT and ils.server.stats["resends"] == 3


def test_bad_checksums_beyond_the_resends_are_lost(ils, client):
    c = client(resends=2)
    c.connect()
    ils.server.faults.badsum_next = 5
    with pytest.raises(Sip2Lost, match="no readable answer .* after 2 resend"):
        c.checkout(ADULT, BOOK)
    assert ils.server.stats["resends"] == 2 and not c.connected
    assert len(ils.library.transactions()) == 1


def test_the_acs_retries_allowed_caps_the_resends(ils, client):
    ils.server.retries_allowed = 1
    c = client(resends=5)
    c.connect()
    assert c.acs.retries_allowed == 1
    ils.server.faults.badsum_next = 5
    with pytest.raises(Sip2Lost, match="after 1 resend"):
        c.item_information(BOOK)
    assert ils.server.stats["resends"] == 1


def test_a_slow_answer_times_out_as_lost(ils, client):
    c = client(timeout_s=0.3)
    c.connect()
    ils.server.faults.slow_ms = 2000
    with pytest.raises(Sip2Lost, match="no answer from the ILS at .* within 0.3 s"):
        c.checkout(ADULT, BOOK)
    assert not c.connected
    assert len(ils.library.transactions()) == 1        # the ILS applied it: the outcome was unknown to us


def test_the_acs_timeout_period_is_honoured(ils, client):
    ils.server.timeout_period = 30                  # the ILS may take 3 s
    c = client(timeout_s=0.2)
    c.connect()
    ils.server.faults.slow_ms = 600
    assert c.checkout(ADULT, BOOK).ok


def test_a_huge_answer_is_lost_and_the_next_connection_works(ils, client):
    c = client()
    c.connect()
    ils.server.faults.huge_next = 1
    with pytest.raises(Sip2Lost, match="no end of message .CR. within 65536 bytes: not SIP2"):
        c.checkout(ADULT, BOOK)
    assert not c.connected
    c.connect()
    assert c.item_information(BOOK).patron_id == ADULT


def test_a_connection_the_ils_closed_while_idle_is_unavailable_not_lost(ils, client):
    c = client()
    c.connect()
    ils.server.go_down()
    ils.server.come_up()
    assert not c.alive()
    with pytest.raises(Sip2Unavailable, match="closed the connection while it was idle"):
        c.checkout(ADULT, BOOK)
    assert ils.requests("11") == 0 and ils.library.transactions() == []


def test_gb18030_titles_over_the_wire(ils, client):
    ils.server.charset = "gb18030"
    ils.library.add_item("MH20209001", "東京物語")
    c = client(charset="gb18030")
    c.connect()
    out = c.checkout(ADULT, "MH20209001")
    assert out.ok and out.title == "東京物語"
    assert c.item_information(BOOK).title == ils.library.item(BOOK).title


def test_without_error_detection(ils, client):
    c = client(error_detection=False)
    c.connect()
    assert c.checkout(ADULT, BOOK).ok and c.item_information(BOOK).patron_id == ADULT


# ------------------------------------------------------------------ what the simulated ILS never does

def _reply(msg, **kw):
    return lambda line: encode(msg, seq=decode_seq(line), **kw)


def decode_seq(line: bytes) -> int:
    return int(line[line.rindex(b"AY") + 2:line.rindex(b"AY") + 3])


LOGIN_OK = _reply(LoginResponse(ok=True))
ACS = _reply(ScStatusResponse(timeout_period=999, retries_allowed=999, date_time_sync=" " * 18))


def test_a_96_makes_the_client_send_its_request_again(scripted, client):
    answer = _reply(CheckoutResponse(ok=True, item_id=BOOK, patron_id=ADULT, due_date="x"))
    s = scripted([LOGIN_OK, ACS, encode(RequestScResend()), answer])
    c = client(port=s.port)
    c.connect()
    assert c.checkout(ADULT, BOOK).ok
    assert s.received[2] == s.received[3] and s.received[2].startswith(b"11")


def test_an_answer_in_pieces_with_crlf(scripted, client):
    crlf = lambda reply: (lambda line: reply(line) + b"\n")    # noqa: E731
    s = scripted([crlf(LOGIN_OK), crlf(ACS),
                  crlf(_reply(ItemInformationResponse(circulation_status="04", item_id=BOOK, title="繁花",
                                                      patron_id=ADULT)))], chunk=1)
    c = client(port=s.port)
    c.connect()
    info = c.item_information(BOOK)
    assert info.title == "繁花" and info.patron_id == ADULT


def test_an_answer_with_the_wrong_sequence_number_or_type_is_asked_for_again(scripted, client):
    s = scripted([encode(LoginResponse(ok=True), seq=5), encode(LoginResponse(ok=True), seq=0),
                  encode(ScStatusResponse(timeout_period=999, retries_allowed=999), seq=1),
                  encode(LoginResponse(ok=True), seq=2),
                  encode(ItemInformationResponse(circulation_status="03", item_id=BOOK, title="t"), seq=2)])
    c = client(port=s.port)
    c.connect()
    assert s.received[1] == b"97AZFEF5"
    assert c.item_information(BOOK).circulation_status == "03"
    assert s.received[3].startswith(b"17") and s.received[4] == b"97AZFEF5"


def test_errors_are_sip2_errors():
    for cls in (Sip2Unavailable, Sip2Lost, Sip2LoginRefused):
        assert issubclass(cls, Sip2Error)
    assert decode(encode(LoginResponse(ok=True), seq=1)).ok
    assert PASSWORD and isinstance(NOW, datetime)
