"""A small in-memory ILS behind the contract's Sip2Client/Sip2Pool interface: the unit tests' edge fake.

It keeps what a SIP2 server would (items lent to whom, due dates, patrons' blocks) and every transaction it
applied, and can fail the way the real thing does: down (Sip2Unavailable: nothing sent), or lose the answer
after applying (Sip2Lost), or lose the request before it arrives (Sip2Lost too: the gateway cannot tell).
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from gateway.sip2 import Sip2Lost, Sip2Unavailable

LOAN_DAYS = 28


@dataclass
class Resp:
    ok: bool
    screen_message: str = ""
    due_date: str = ""
    circulation_status: str = "03"
    patron_id: str | None = None
    alert: bool = False
    alert_type: str = ""
    patron_status: str = " " * 14
    valid_patron: bool | None = True
    charged_items_count: int = 0
    item_id: str = ""


@dataclass
class FakeIls:
    now: datetime = field(default_factory=lambda: datetime(2026, 12, 1, 12, 0))
    items: dict[str, str | None] = field(default_factory=dict)       # item -> borrower (None: on the shelf)
    blocked: set[str] = field(default_factory=set)
    refuse: set[str] = field(default_factory=set)                  # items whose checkout/checkin is refused
    down: bool = False
    lose_next: int = 0                                             # answers lost after applying
    drop_next: int = 0                                             # requests lost before they arrive
    applied: list[tuple] = field(default_factory=list)             # (command, item, patron, ts)
    requests: list[tuple] = field(default_factory=list)            # (command, item)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def due(self) -> str:
        return (self.now + timedelta(days=LOAN_DAYS)).strftime("%Y%m%d    235900")

    def _answer(self, resp: Resp) -> Resp:
        if self.lose_next:
            self.lose_next -= 1
            raise Sip2Lost("the connection dropped before the answer")
        return resp


class FakeClient:
    def __init__(self, ils: FakeIls) -> None:
        self.ils = ils

    def _enter(self, command: str, item: str) -> None:
        if self.ils.down:
            raise Sip2Unavailable("connection refused")
        if self.ils.drop_next:
            self.ils.drop_next -= 1
            raise Sip2Lost("the connection dropped with the request on its way")
        self.ils.requests.append((command, item))

    def checkout(self, patron_id, item_id, *, no_block=True, transaction_ts=None, nb_due_date=None,
                 patron_password=""):
        with self.ils.lock:
            self._enter("checkout", item_id)
            if item_id not in self.ils.items or item_id in self.ils.refuse:
                return self.ils._answer(Resp(False, "Item cannot be checked out"))
            if patron_id in self.ils.blocked and not no_block:
                return self.ils._answer(Resp(False, "Patron blocked"))
            holder = self.ils.items[item_id]
            if holder is not None and holder != patron_id:
                return self.ils._answer(Resp(False, "Item checked out to another patron"))
            self.ils.items[item_id] = patron_id
            self.ils.applied.append(("checkout", item_id, patron_id, transaction_ts))
            return self.ils._answer(Resp(True, "", due_date=self.ils.due(), patron_id=patron_id, item_id=item_id))

    def checkin(self, item_id, *, return_ts=None, location="", no_block=True):
        with self.ils.lock:
            self._enter("checkin", item_id)
            if item_id not in self.ils.items or item_id in self.ils.refuse:
                return self.ils._answer(Resp(False, "Item not found"))
            if self.ils.items[item_id] is None:
                return self.ils._answer(Resp(False, "Item not checked out"))
            self.ils.items[item_id] = None
            self.ils.applied.append(("checkin", item_id, None, return_ts))
            return self.ils._answer(Resp(True, ""))

    def item_information(self, item_id):
        with self.ils.lock:
            self._enter("item_information", item_id)
            holder = self.ils.items.get(item_id)
            return self.ils._answer(Resp(True, circulation_status="04" if holder else "03", patron_id=holder,
                                         due_date=self.ils.due() if holder else "", item_id=item_id))

    def patron_information(self, patron_id):
        with self.ils.lock:
            self._enter("patron_information", patron_id)
            flags = ("Y" if patron_id in self.ils.blocked else " ") + " " * 13
            n = sum(1 for h in self.ils.items.values() if h == patron_id)
            return Resp(True, patron_status=flags, charged_items_count=n, patron_id=patron_id)


class FakePool:
    def __init__(self, ils: FakeIls) -> None:
        self.ils = ils
        self.closed = False

    @contextlib.contextmanager
    def connection(self):
        if self.ils.down:
            raise Sip2Unavailable("cannot connect to the ILS: connection refused")
        yield FakeClient(self.ils)

    def close(self) -> None:
        self.closed = True
