"""The simulated ILS's SIP2 server over real TCP, spoken to with the codec only (no client): logins, resends,
connections side by side, and every fault."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from datetime import datetime

import pytest

from gateway.sip2.codec import decode, decode_frame, encode, next_line
from gateway.sip2.messages import (CheckinRequest, CheckoutRequest, CheckoutResponse, ItemInformationRequest,
                                   LoginRequest, RequestAcsResend, RequestScResend, ScStatusRequest)
from simulators.ils import IlsServer, Library

NOW = datetime(2026, 12, 1, 10, 0).astimezone()
USER, PASSWORD = "citybook", "pw"
ADULT = "3101120000018"


@pytest.fixture
def server() -> Iterator[IlsServer]:
    srv = IlsServer(Library.demo(items=200, clock=lambda: NOW), user=USER, password=PASSWORD).start()
    try:
        yield srv
    finally:
        srv.stop()


class Line:
    """A raw SIP2 connection: send a message, read one line."""

    def __init__(self, port: int, charset: str = "utf-8") -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.buf = bytearray()
        self.charset = charset
        self.seq = 0

    def send(self, msg, *, detect: bool = True) -> None:
        self.sock.sendall(encode(msg, seq=self.seq, charset=self.charset, error_detection=detect))
        self.seq = (self.seq + 1) % 10

    def read(self) -> bytes | None:
        while True:
            consumed, line = next_line(self.buf)
            del self.buf[:consumed]
            if line is not None:
                return line
            data = self.sock.recv(65536)
            if not data:
                return None
            self.buf += data

    def ask(self, msg, **kw):
        self.send(msg, **kw)
        line = self.read()
        return None if line is None else decode(line, self.charset)

    def login(self) -> None:
        assert self.ask(LoginRequest(user=USER, password=PASSWORD)).ok

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def connect(server) -> Iterator:
    lines: list[Line] = []

    def make(**kw) -> Line:
        line = Line(server.port, **kw)
        lines.append(line)
        return line

    yield make
    for line in lines:
        line.close()


def checkout(item: str, patron: str = ADULT) -> CheckoutRequest:
    return CheckoutRequest(no_block=True, patron_id=patron, item_id=item, institution="CN-310112")


def test_every_connection_logs_in(server, connect):
    a, b = connect(), connect()
    a.login()
    assert a.ask(checkout("MH20200001")).ok
    assert b.ask(ScStatusRequest()).online                          # 99 is answered before a login
    assert b.ask(checkout("MH20200002")) is None                    # anything else closes the connection
    assert [t["item"] for t in server.library.transactions()] == ["MH20200001"]


def test_a_wrong_login_gets_ok_0_then_the_connection_closes(server, connect):
    c = connect()
    answer = c.ask(LoginRequest(user=USER, password="nope"))
    assert answer.command == "94" and answer.ok is False
    assert c.read() is None
    assert server.stats["logins_refused"] == 1


def test_answers_echo_the_sequence_number_and_checksum_only_if_asked(server, connect):
    c = connect()
    c.login()
    c.seq = 6
    c.send(checkout("MH20200001"))
    frame = decode_frame(c.read())
    assert frame.seq == 6 and frame.checksummed and isinstance(frame.message, CheckoutResponse)
    c.send(ItemInformationRequest(item_id="MH20200001"), detect=False)
    frame = decode_frame(c.read())
    assert frame.seq is None and not frame.checksummed and frame.message.patron_id == ADULT


def test_a_garbled_request_gets_96_and_a_97_gets_the_last_answer_again(server, connect):
    c = connect()
    c.login()
    good = encode(checkout("MH20200001"), seq=1)
    c.sock.sendall(good[:-3] + b"00\r")                             # checksum broken
    assert isinstance(decode(c.read()), RequestScResend)
    c.sock.sendall(b"XX garbage\r")
    assert isinstance(decode(c.read()), RequestScResend)
    assert server.library.transactions() == []
    c.sock.sendall(good)
    first = c.read()
    assert decode(first).ok
    assert c.ask(RequestAcsResend()) == decode(first)
    assert len(server.library.transactions()) == 1 and server.stats["garbled"] == 2


def test_connections_side_by_side(server):
    errors, done = [], []

    def borrow(n: int) -> None:
        c = Line(server.port)
        try:
            c.login()
            for k in range(10):
                item = f"MH2020{n * 10 + k + 1:04d}"
                if not c.ask(checkout(item, patron=f"P{n}")).ok:
                    errors.append(item)
            done.append(n)
        finally:
            c.close()

    for n in range(4):
        server.library.add_patron(f"P{n}", status="active")
    threads = [threading.Thread(target=borrow, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(done) == [0, 1, 2, 3] and errors == []
    assert len(server.library.transactions()) == 40 and server.stats["logins"] == 4


def test_drop_applies_then_closes_unanswered(server, connect):
    c = connect()
    c.login()
    server.faults.drop_next = 1
    assert c.ask(checkout("MH20200001")) is None
    assert server.library.item("MH20200001").borrower == ADULT and server.stats["dropped"] == 1
    server.faults.drop_kind = "11"                                  # every checkout, until heal
    d = connect()
    d.login()
    assert d.ask(ItemInformationRequest(item_id="MH20200001")).patron_id == ADULT
    assert d.ask(checkout("MH20200002")) is None
    e = connect()
    e.login()
    assert e.ask(checkout("MH20200003")) is None
    server.faults.heal()
    f = connect()
    f.login()
    assert f.ask(checkin_of("MH20200003")).ok
    assert [t["item"] for t in server.library.transactions()] == ["MH20200001", "MH20200002", "MH20200003",
                                                                   "MH20200003"]


def checkin_of(item: str) -> CheckinRequest:
    return CheckinRequest(no_block=True, item_id=item, location="MH-BOOKCASES", return_date="20261130    090000")


def test_badsum_garbage_and_huge(server, connect):
    c = connect()
    c.login()
    server.faults.badsum_next = 1
    c.send(checkout("MH20200001"))
    with pytest.raises(ValueError, match="checksum"):
        decode(c.read())
    assert c.ask(RequestAcsResend()).ok                             # the clean answer again
    server.faults.garbage_next = 1
    c.send(ItemInformationRequest(item_id="MH20200001"))
    with pytest.raises(ValueError, match="NUL"):
        decode(c.read())
    server.faults.huge_next = 1
    c.send(ItemInformationRequest(item_id="MH20200001"))
    with pytest.raises(ValueError, match="no end of message"):
        c.read()
    assert server.faults.to_dict()["fired"] == {"badsum_next": 1, "garbage_next": 1, "huge_next": 1}


def test_refuse(server, connect):
    c = connect()
    c.login()
    server.library.refuse_items.add("MH20200001")
    server.library.refuse_message = "Item withdrawn"
    refused = c.ask(checkout("MH20200001"))
    assert not refused.ok and refused.screen_message == "Item withdrawn"
    assert c.ask(checkout("MH20200002")).ok


def test_down_refuses_connections_and_up_takes_them_again(server, connect):
    c = connect()
    c.login()
    server.go_down()
    assert c.read() is None                                         # the open one is dropped
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", server.port), timeout=2).close()
    server.come_up()
    d = connect()
    d.login()
    assert d.ask(checkout("MH20200001")).ok


def test_gb18030(server, connect):
    server.charset = "gb18030"
    server.library.add_item("MH20209001", "東京物語")
    c = connect(charset="gb18030")
    c.login()
    answer = c.ask(checkout("MH20209001"))
    assert answer.ok and answer.title == "東京物語"
    c.sock.sendall(b"17" + NOW.strftime("%Y%m%d    %H%M%S").encode() + b"AOCN-310112|ABMH\xff\xff|\r")
    assert isinstance(decode(c.read(), "gb18030"), RequestScResend)  # an item id that is not GB18030: resend
