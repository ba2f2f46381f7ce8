"""The simulated ILS's library: patrons, items, loans, holds and blocks in memory, and every transaction applied.

It behaves as the SIP2 servers of Koha, Evergreen and FOLIO edge-sip2 do where it matters to the gateway: a
checkout's loan date is *now* and the due date is the ILS's (by the patron's class), whatever transaction date
the request carries; a checkin honours the return date it is given; a blocked, expired or over-limit patron, or
an item on hold for someone else, is refused unless the request says no-block (the book is already gone), and
an item on loan to another patron is refused. Thread-safe: one lock.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable

from kiosk.demodata import PATRON_CLASS_LIMITS, demo_books, demo_patrons

LOAN_DAYS = {"adult": 30, "branch": 30, "child": 21}
DEFAULT_LOAN_DAYS = 30


@dataclass
class Patron:
    id: str                                   # the card barcode: the ILS's patron id
    patron_class: str = "adult"
    status: str = "active"                    # active, blocked, expired, lost, overdue
    loans_elsewhere: int = 0                  # loans the library's desks made (not in ``items``)
    name: str = ""                            # the ILS has names; the gateway never asks for them

    @property
    def limit(self) -> int:
        return PATRON_CLASS_LIMITS.get(self.patron_class, 15)


@dataclass
class Item:
    id: str
    title: str
    borrower: str | None = None
    due: datetime | None = None
    hold_for: str | None = None               # a patron the item is on hold for
    lost: bool = False


@dataclass(frozen=True)
class Transaction:
    """One transaction the ILS applied (the fleet simulator's and the tests' ground truth)."""
    kind: str                                 # "checkout" | "checkin"
    item: str
    patron: str | None
    at: datetime                              # when the ILS applied it (its clock)
    date: datetime | None                     # the request's transaction date (checkout) or return date (checkin)
    no_block: bool
    due: datetime | None = None


@dataclass(frozen=True)
class Outcome:
    ok: bool
    message: str = ""
    item: Item | None = None
    patron: Patron | None = None


@dataclass
class Library:
    clock: Callable[[], datetime] = lambda: datetime.now().astimezone()
    patrons: dict[str, Patron] = field(default_factory=dict)
    items: dict[str, Item] = field(default_factory=dict)
    applied: list[Transaction] = field(default_factory=list)
    refuse_items: set[str] = field(default_factory=set)        # the ILS refuses every transaction of these
    refuse_next: int = 0                                       # ... and the next N transactions, whatever they are
    lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def demo(cls, bookcases: int = 2, clock: Callable[[], datetime] | None = None) -> Library:
        """The demo's patrons and the demo bookcases' books (MH-0001's, and the fleet's items from 601 on)."""
        lib = cls(clock=clock) if clock else cls()
        for p in demo_patrons():
            lib.patrons[p.card_number] = Patron(p.card_number, p.patron_class, p.status, p.loans_elsewhere)
        for book in demo_books(list(range(1, 7))):
            lib.items[book.item_id] = Item(book.item_id, book.title)
        for n in range(601, 601 + 360 * max(0, bookcases - 1)):
            lib.items[f"MH2020{n:04d}"] = Item(f"MH2020{n:04d}", f"书 {n}")
        return lib

    # --- transactions ---------------------------------------------------------------------------------------

    def _refused(self, item_id: str) -> str | None:
        if item_id in self.refuse_items:
            return "This item cannot be circulated: see a librarian"
        if self.refuse_next:
            self.refuse_next -= 1
            return "Transaction refused by the library system"
        return None

    def checkout(self, patron_id: str, item_id: str, *, no_block: bool, date: datetime | None) -> Outcome:
        with self.lock:
            patron, item = self.patrons.get(patron_id), self.items.get(item_id)
            if patron is None:
                return Outcome(False, "Unknown patron", item, None)
            if item is None:
                return Outcome(False, "Item not in the catalogue", None, patron)
            refused = self._refused(item_id)
            if refused:
                return Outcome(False, refused, item, patron)
            if item.borrower is not None and item.borrower != patron_id:
                return Outcome(False, "Item checked out to another patron", item, patron)
            if not no_block:
                if patron.status != "active":
                    return Outcome(False, f"Patron {patron.status}: borrowing not allowed", item, patron)
                if self._charged(patron_id) + patron.loans_elsewhere >= patron.limit:
                    return Outcome(False, "Patron has reached the loan limit", item, patron)
                if item.hold_for not in (None, patron_id):
                    return Outcome(False, "Item on hold for another patron", item, patron)
            now = self.clock()
            item.borrower = patron_id
            item.due = (now + timedelta(days=LOAN_DAYS.get(patron.patron_class, DEFAULT_LOAN_DAYS))).replace(
                hour=23, minute=59, second=0, microsecond=0)
            if item.hold_for == patron_id:
                item.hold_for = None
            self.applied.append(Transaction("checkout", item_id, patron_id, now, date, no_block, item.due))
            return Outcome(True, "", item, patron)

    def checkin(self, item_id: str, *, return_date: datetime | None, no_block: bool) -> Outcome:
        with self.lock:
            item = self.items.get(item_id)
            if item is None:
                return Outcome(False, "Item not in the catalogue")
            refused = self._refused(item_id)
            if refused:
                return Outcome(False, refused, item)
            if item.borrower is None:
                return Outcome(False, "Item not checked out", item)
            patron = self.patrons.get(item.borrower)
            self.applied.append(Transaction("checkin", item_id, item.borrower, self.clock(), return_date, no_block))
            item.borrower, item.due, item.lost = None, None, False
            return Outcome(True, "", item, patron)

    def _charged(self, patron_id: str) -> int:
        return sum(1 for i in self.items.values() if i.borrower == patron_id)

    # --- looking up -----------------------------------------------------------------------------------------

    def item(self, item_id: str) -> Item | None:
        with self.lock:
            return self.items.get(item_id)

    def patron(self, patron_id: str) -> tuple[Patron | None, int]:
        """The patron and the number of items charged to them."""
        with self.lock:
            return self.patrons.get(patron_id), self._charged(patron_id)

    def set_status(self, patron_id: str, status: str) -> Patron:
        with self.lock:
            patron = self.patrons.get(patron_id)
            if patron is None:
                raise KeyError(patron_id)
            patron.status = status
            return patron

    def status(self) -> dict:
        """For `kiosk-sim ctl DIR status`: loans, patrons with their counts, the transaction count."""
        with self.lock:
            loans = [{"item": i.id, "title": i.title, "patron": i.borrower,
                      "due": i.due.date().isoformat() if i.due else None}
                     for i in self.items.values() if i.borrower]
            patrons = [{"id": p.id, "class": p.patron_class, "status": p.status, "loans": self._charged(p.id),
                        "loans_elsewhere": p.loans_elsewhere} for p in self.patrons.values()]
            return {"items": len(self.items), "loans": loans, "patrons": patrons,
                    "transactions": len(self.applied), "refuse_items": sorted(self.refuse_items),
                    "refuse_next": self.refuse_next}

    def transactions(self) -> list[dict]:
        with self.lock:
            return [{"kind": t.kind, "item": t.item, "patron": t.patron, "at": t.at.isoformat(),
                     "date": t.date.isoformat() if t.date else None, "no_block": t.no_block,
                     "due": t.due.isoformat() if t.due else None} for t in self.applied]
