"""What the Find page remembers between frames: the letters typed, the answer, the book opened, the page of results.

It asks a finder (kiosk.search.finder.Finder, given by the daemon: the screen never opens the database) and
keeps the answer; the Find screen draws from ``view()``. A finder that is a plain function of a text returning
rows (the interface before the index: items here, else elsewhere) is wrapped by ``RowsFinder``.

Scans: while the page is open the scanner's lines come here (``offer``, from the scanner's thread, only queued);
the screen's thread looks each up (``take_scans``): a book's ISBN or barcode shows that book; anything else
(a reader card) goes back to the core as a card.
"""

from __future__ import annotations

import logging
import queue
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from kiosk.core.ecard import looks_like_token
from kiosk.search.results import Answer, Book, Place

LOGGER = logging.getLogger(__name__)

MAX_QUERY = 24            # letters and digits typed, at most


@dataclass(frozen=True)
class FindView:
    """The Find page's state for one frame."""
    query: str = ""
    answer: Answer | None = None
    book: int | None = None                     # the book opened from the answer (its index), or None
    offset: int = 0                             # the first book listed
    classes: tuple[tuple[str, int, int], ...] | None = None    # browsing by subject: (code, here, in all)
    reserve_url: str | None = None

    @property
    def opened(self) -> Book | None:
        if self.answer is None or self.book is None or self.book >= len(self.answer.books):
            return None
        return self.answer.books[self.book]


class RowsFinder:
    """A finder over ``find(text) -> rows`` (item_id, title, author, door; with bookcase and name when elsewhere)."""

    def __init__(self, find: Callable[[str], list[dict]]) -> None:
        self.find = find

    def search(self, text: str) -> Answer:
        return Answer(text, _books(self.find(text)))

    def title(self, title: str) -> Answer:
        return Answer(title, _books(self.find(title)), kind="title")

    def lookup(self, code: str) -> Answer | None:
        books = _books(self.find(code))
        return Answer(code, books, kind="scan") if books else None

    def browse(self, shelf: str) -> Answer:
        return Answer(shelf, kind="shelf", shelf=shelf)

    def classes(self) -> list[tuple[str, int, int]]:
        return []


def _books(rows: list[dict]) -> tuple[Book, ...]:
    here: dict[str, dict[int, int]] = defaultdict(dict)
    places: dict[str, dict[str, list[int]]] = defaultdict(dict)
    authors: dict[str, str] = {}
    for row in rows:
        title = row.get("title") or ""
        authors.setdefault(title, row.get("author") or "")
        if row.get("bookcase"):
            places[title].setdefault(row["bookcase"] + "\0" + (row.get("name") or row["bookcase"]), []).append(
                row.get("door"))
        else:
            here[title][row["door"]] = here[title].get(row["door"], 0) + 1
    out = []
    for title in dict.fromkeys(row.get("title") or "" for row in rows):
        found = [Place(key.split("\0")[0], key.split("\0")[1], doors=tuple(sorted({d for d in doors if d})),
                       copies=len(doors)) for key, doors in places[title].items()]
        out.append(Book(title, authors.get(title, ""), here=tuple(sorted(here[title].items())), places=tuple(found[:3]),
                        elsewhere=len(found)))
    return tuple(out)


class FindState:
    """The Find page's state and what its touches do. Screen thread only, except ``offer``."""

    def __init__(self, finder: object | None = None, reserve_url: str | None = None) -> None:
        self.reserve_url = reserve_url
        self.finder = None
        self.connect(finder)
        self._open = False
        self._scans: queue.SimpleQueue[str] = queue.SimpleQueue()
        self.reset()

    @property
    def open(self) -> bool:
        """The page is on the screen: scans come here."""
        return self._open

    @open.setter
    def open(self, value: bool) -> None:
        if value and not self._open:
            self._warm()
        self._open = value

    def _warm(self) -> None:
        """The page opens: let the finder read what it keeps in memory now, not on the patron's first key."""
        warm = getattr(self.finder, "warm", None)
        if warm is None:
            return
        try:
            warm()
        except Exception:
            LOGGER.exception("find a book: the finder could not get ready; the first search will try again")

    def connect(self, finder: object | None) -> None:
        if finder is not None and not hasattr(finder, "search"):
            finder = RowsFinder(finder)
        self.finder = finder
        scans = getattr(finder, "scans", None)
        if scans is not None:
            scans.claim(self.offer)

    def reset(self) -> None:
        self.query = ""
        self.answer: Answer | None = None
        self.book: int | None = None
        self.offset = 0
        self.classes: tuple | None = None

    def view(self) -> FindView:
        return FindView(self.query, self.answer, self.book, self.offset, self.classes, self.reserve_url)

    # --- asking the finder -----------------------------------------------------------------------------

    def _ask(self, what: str, call: Callable[[], Answer | None]) -> Answer | None:
        if self.finder is None:
            return Answer(what)
        try:
            return call()
        except Exception:
            LOGGER.exception("find a book: %r could not be looked up", what)
            return Answer(what, error=True)

    def _show(self, answer: Answer | None) -> None:
        self.answer, self.offset, self.classes = answer, 0, None
        # One title asked for by name or by its barcode: open it at once.
        self.book = 0 if answer is not None and answer.kind in ("title", "scan") and len(answer.books) == 1 else None

    def key(self, key: str) -> None:
        """A key of the on-screen keyboard: a letter or digit, "back" or "clear"; the answer follows each key."""
        if key == "back":
            self.query = self.query[:-1]
        elif key == "clear":
            self.query = ""
        elif len(key) == 1 and key.isascii() and key.isalnum() and len(self.query) < MAX_QUERY:
            self.query += key.lower()
        q = self.query
        self._show(self._ask(q, lambda: self.finder.search(q)) if q else None)

    def search(self, text: str) -> None:
        """A search for ``text`` as if typed (letters and digits), or Chinese text."""
        self.query = ""
        self._show(self._ask(text, lambda: self.finder.search(text)))

    def title(self, title: str) -> None:
        self.query = ""
        self._show(self._ask(title, lambda: self.finder.title(title)))

    def browse(self, shelf: str) -> None:
        self.query = ""
        if shelf == "classes":
            try:
                classes = tuple(self.finder.classes()) if self.finder is not None else ()
            except Exception:
                LOGGER.exception("find a book: the subjects could not be listed")
                classes = ()
            self._show(None)
            self.classes = classes
            return
        self._show(self._ask(shelf, lambda: self.finder.browse(shelf)))

    def open_book(self, index: int) -> None:
        self.book = index

    def page(self, delta: int, per_page: int) -> None:
        total = len(self.answer.books) if self.answer else 0
        self.offset = max(0, min(self.offset + delta * per_page, max(0, total - 1)))

    def back(self) -> bool:
        """One step back: the book to the list, the list to the shelves; False when there is nothing to go
        back to (the page closes)."""
        if self.book is not None and self.answer is not None and len(self.answer.books) > 1:
            self.book = None
        elif self.answer is not None or self.classes is not None or self.query:
            self.reset()
        else:
            return False
        return True

    # --- the scanner -----------------------------------------------------------------------------------

    def offer(self, text: str) -> bool:
        """A line from the scanner (the scanner's thread): taken while the page is open, except e-card codes."""
        if not self.open or looks_like_token(text.strip()):
            return False
        self._scans.put(text.strip())
        return True

    def take_scans(self) -> list[tuple[str, bool]]:
        """Look up what was scanned (the screen's thread): [(text, found as a book)]. A line that is neither an
        ISBN nor a known barcode is for the core (a reader card)."""
        out = []
        while True:
            try:
                text = self._scans.get_nowait()
            except queue.Empty:
                return out
            answer = self._ask(text, lambda t=text: self.finder.lookup(t))
            if answer is None:
                out.append((text, False))
                continue
            self.query = ""
            self._show(answer)
            out.append((text, True))
