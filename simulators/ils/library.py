"""The simulated ILS's library: patrons, items, loans, holds and blocks in memory, and every transaction applied.

It behaves as the SIP2 servers of Koha, Evergreen and FOLIO edge-sip2 do where it matters to the gateway: a
checkout's loan date is *now* and the due date is the ILS's (by the patron's class), whatever transaction date
the request carries; a checkin honours the return date it is given; a blocked, expired, lost-card or over-limit
patron, or an item on hold for someone else, is refused unless the request says no-block (the book is already
gone: the ILS records it, as real ILSs do with no-block); an item on loan to another patron is refused, and
one already on loan to the same patron too (we never ask for renewals). Thread-safe: one lock.

Seeded from kiosk/demodata.py: the demo's patrons (card barcode = the ILS's patron id, their class and status,
the loans they have elsewhere in the library as a count), every demo item id a bookcase can hold (MH20200001 …
MH20209999, with the titles the bookcases give them) and the catalogue's other titles (MH2019…).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable

from kiosk.demodata import MAX_DEMO_ITEMS, PATRON_CLASS_LIMITS, demo_books, demo_patrons, library_books

# The library's loan period by patron class: 30 days (the bookcases' own default, kiosk.config); per class so
# an ILS that treats children's cards differently can be simulated (Library.loan_days).
LOAN_DAYS = {"adult": 30, "branch": 30, "child": 30}
DEFAULT_LOAN_DAYS = 30
HOME = "MH-BOOKCASES"           # the bookcases' collection: the demo items' permanent location
CENTRAL = "MH-CENTRAL"          # the central library's: the catalogue's other titles
STATUSES = ("active", "blocked", "expired", "lost", "overdue")
NOT_ALLOWED = {"blocked": "Patron blocked: see a librarian", "expired": "Patron card expired",
               "lost": "Patron card reported lost", "overdue": "Patron has overdue items"}


@dataclass
class Patron:
    id: str                                   # the card barcode: the ILS's patron id
    patron_class: str = "adult"
    status: str = "active"                    # active, blocked, expired, lost, overdue
    loans_elsewhere: int = 0                  # loans the library's desks made (not in ``items``)
    name: str = ""                            # the ILS has names; the gateway must never pass them on

    @property
    def limit(self) -> int:
        return PATRON_CLASS_LIMITS.get(self.patron_class, 15)


@dataclass
class Item:
    id: str
    title: str
    home: str = HOME                          # permanent location
    location: str = HOME                      # where it is now
    borrower: str | None = None
    loaned: datetime | None = None
    due: datetime | None = None
    hold_for: str | None = None               # a patron the item is on hold for
    lost: bool = False


@dataclass(frozen=True)
class Transaction:
    """One transaction the ILS applied (the fleet simulator's and the tests' ground truth)."""
    n: int
    kind: str                                 # "checkout" | "checkin"
    item: str
    patron: str | None
    at: datetime                              # when the ILS applied it (its clock)
    date: datetime | None                     # the request's transaction date (checkout) or return date (checkin)
    no_block: bool
    due: datetime | None = None
    overridden: tuple[str, ...] = ()          # what the ILS would have refused without no-block
    via: str = "sip2"                         # "sip2", or "desk" (kiosk-sim ctl)

    def to_dict(self) -> dict:
        return {"n": self.n, "kind": self.kind, "item": self.item, "patron": self.patron, "at": self.at.isoformat(),
                "date": self.date.isoformat() if self.date else None, "no_block": self.no_block,
                "due": self.due.isoformat() if self.due else None, "overridden": list(self.overridden),
                "via": self.via}


@dataclass(frozen=True)
class Outcome:
    ok: bool
    message: str = ""
    item: Item | None = None
    patron: Patron | None = None
    borrower: str | None = None               # checkin: who had it
    alert_type: str | None = None             # checkin: 01 hold here, 04 send elsewhere


@dataclass
class Library:
    clock: Callable[[], datetime] = lambda: datetime.now().astimezone()
    patrons: dict[str, Patron] = field(default_factory=dict)
    items: dict[str, Item] = field(default_factory=dict)
    applied: list[Transaction] = field(default_factory=list)
    refuse_items: set[str] = field(default_factory=set)        # the ILS refuses every transaction of these
    refuse_next: int = 0                                       # ... and the next N transactions, whatever they are
    refuse_message: str = ""
    refused: int = 0
    loan_days: dict[str, int] = field(default_factory=lambda: dict(LOAN_DAYS))
    lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def demo(cls, items: int = MAX_DEMO_ITEMS, clock: Callable[[], datetime] | None = None) -> Library:
        """The demo's patrons, ``items`` demo items (every id a bookcase of the demo or the fleet simulator
        can hold, with its title) and the catalogue's other titles."""
        lib = cls(clock=clock) if clock else cls()
        for p in demo_patrons():
            lib.patrons[p.card_number] = Patron(p.card_number, p.patron_class, p.status, p.loans_elsewhere,
                                                name=f"读者{p.card_number[-4:]}")
        for book in demo_books([1], per_door=items):
            lib.items[book.item_id] = Item(book.item_id, book.title)
        for book in library_books():
            lib.items[book.item_id] = Item(book.item_id, book.title, home=CENTRAL, location=CENTRAL)
        return lib

    # --- transactions ---------------------------------------------------------------------------------------

    def _refused(self, item_id: str) -> str | None:
        if item_id in self.refuse_items or self.refuse_next:
            if item_id not in self.refuse_items:
                self.refuse_next -= 1
            self.refused += 1
            return self.refuse_message or "This item cannot be circulated: see a librarian"
        return None

    def _record(self, **kw) -> Transaction:
        t = Transaction(n=len(self.applied) + 1, **kw)
        self.applied.append(t)
        return t

    def checkout(self, patron_id: str, item_id: str, *, no_block: bool, date: datetime | None,
                 via: str = "sip2") -> Outcome:
        with self.lock:
            patron, item = self.patrons.get(patron_id), self.items.get(item_id)
            if patron is None:
                return Outcome(False, "Unknown patron", item, None)
            if item is None:
                return Outcome(False, "Item not in the catalogue", None, patron)
            refused = self._refused(item_id)
            if refused:
                return Outcome(False, refused, item, patron)
            if item.borrower == patron_id:
                return Outcome(False, "Item already checked out to this patron", item, patron)
            if item.borrower is not None:
                return Outcome(False, "Item checked out to another patron", item, patron)
            problems = []
            if patron.status != "active":
                problems.append(NOT_ALLOWED.get(patron.status, f"Patron {patron.status}"))
            if self._charged(patron_id) + patron.loans_elsewhere >= patron.limit:
                problems.append(f"Patron has reached the loan limit ({patron.limit})")
            if item.hold_for not in (None, patron_id):
                problems.append("Item on hold for another patron")
            if problems and not no_block:
                return Outcome(False, "; ".join(problems), item, patron)
            now = self.clock()
            days = self.loan_days.get(patron.patron_class, DEFAULT_LOAN_DAYS)
            item.borrower, item.loaned = patron_id, now
            item.due = (now + timedelta(days=days)).replace(hour=23, minute=59, second=59, microsecond=0)
            if item.hold_for == patron_id:
                item.hold_for = None
            self._record(kind="checkout", item=item_id, patron=patron_id, at=now, date=date, no_block=no_block,
                         due=item.due, overridden=tuple(problems), via=via)
            return Outcome(True, "Checked out despite: " + "; ".join(problems) if problems else "", item, patron)

    def checkin(self, item_id: str, *, return_date: datetime | None, no_block: bool, location: str = "",
                via: str = "sip2") -> Outcome:
        with self.lock:
            item = self.items.get(item_id)
            if item is None:
                return Outcome(False, "Item not in the catalogue")
            refused = self._refused(item_id)
            if refused:
                return Outcome(False, refused, item)
            if item.borrower is None:
                return Outcome(False, "Item not checked out", item)
            borrower = item.borrower
            self._record(kind="checkin", item=item_id, patron=borrower, at=self.clock(),
                         date=return_date, no_block=no_block, via=via)
            item.borrower, item.loaned, item.due, item.lost = None, None, None, False
            item.location = location or item.location
            alert, message = None, ""
            if item.hold_for is not None:
                alert, message = "01", "On hold for another patron: put it on the hold shelf"
            elif location and location != item.home:
                alert, message = "04", f"Belongs to {item.home}: send it there"
            return Outcome(True, message, item, self.patrons.get(borrower), borrower=borrower, alert_type=alert)

    def _charged(self, patron_id: str) -> int:
        return sum(1 for i in self.items.values() if i.borrower == patron_id)

    # --- holds, blocks, catalogue ---------------------------------------------------------------------------

    def hold(self, patron_id: str, item_id: str, *, cancel: bool = False) -> Item:
        with self.lock:
            if patron_id not in self.patrons:
                raise KeyError(f"no patron {patron_id}")
            item = self.items.get(item_id)
            if item is None:
                raise KeyError(f"no item {item_id}")
            item.hold_for = None if cancel else patron_id
            return item

    def set_status(self, patron_id: str, status: str) -> Patron:
        if status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}, got {status!r}")
        with self.lock:
            patron = self.patrons.get(patron_id)
            if patron is None:
                raise KeyError(f"no patron {patron_id}")
            patron.status = status
            return patron

    def add_patron(self, patron_id: str, patron_class: str = "adult", status: str = "active",
                   loans_elsewhere: int = 0) -> Patron:
        if not patron_id or "|" in patron_id:
            raise ValueError(f"a patron id must be non-empty and without '|', got {patron_id!r}")
        if status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}, got {status!r}")
        with self.lock:
            patron = Patron(patron_id, patron_class, status, loans_elsewhere, name=f"读者{patron_id[-4:]}")
            self.patrons[patron_id] = patron
            return patron

    def add_item(self, item_id: str, title: str, home: str = HOME) -> Item:
        if not item_id or "|" in item_id or "|" in title:
            raise ValueError(f"an item id and title must be non-empty and without '|', got {item_id!r}")
        with self.lock:
            item = Item(item_id, title, home=home, location=home)
            self.items[item_id] = item
            return item

    # --- looking up -----------------------------------------------------------------------------------------

    def item(self, item_id: str) -> Item | None:
        with self.lock:
            return self.items.get(item_id)

    def patron(self, patron_id: str) -> tuple[Patron | None, list[Item]]:
        """The patron and the items charged to them here (their loans elsewhere are ``loans_elsewhere``)."""
        with self.lock:
            return self.patrons.get(patron_id), [i for i in self.items.values() if i.borrower == patron_id]

    def holds_of(self, patron_id: str) -> list[Item]:
        with self.lock:
            return [i for i in self.items.values() if i.hold_for == patron_id]

    def status(self) -> dict:
        """For `kiosk-sim ctl DIR status`: loans, patrons with their counts, the transaction count."""
        with self.lock:
            now = self.clock()
            loans = [{"item": i.id, "title": i.title, "patron": i.borrower,
                      "loaned": i.loaned.isoformat() if i.loaned else None,
                      "due": i.due.isoformat() if i.due else None, "overdue": bool(i.due and i.due < now)}
                     for i in self.items.values() if i.borrower]
            holds = [{"item": i.id, "patron": i.hold_for} for i in self.items.values() if i.hold_for]
            patrons = [{"id": p.id, "class": p.patron_class, "status": p.status, "loans": self._charged(p.id),
                        "loans_elsewhere": p.loans_elsewhere, "limit": p.limit,
                        "holds": sum(1 for i in self.items.values() if i.hold_for == p.id)}
                       for p in self.patrons.values()]
            return {"items": len(self.items), "loans": loans, "holds": holds, "patrons": patrons,
                    "transactions": len(self.applied), "refused": self.refused,
                    "refuse_items": sorted(self.refuse_items), "refuse_next": self.refuse_next}

    def transactions(self, since: int = 0) -> list[dict]:
        """Every transaction applied after the ``since``-th (1-based numbering), as JSON-ready dicts."""
        with self.lock:
            return [t.to_dict() for t in self.applied[since:]]
