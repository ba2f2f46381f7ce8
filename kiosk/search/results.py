"""What a search answers, as plain frozen data the screen draws from (no database here: kiosk.ui imports it)."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

LOGGER = logging.getLogger(__name__)

SHELVES = ("new", "children", "popular", "classes")      # browse without typing; "class:I" for one class


@dataclass(frozen=True)
class Place:
    """Another bookcase that holds a title: its name, address, distance from here (None: not known), doors."""
    bookcase: str
    name: str
    address: str = ""
    distance_m: float | None = None
    doors: tuple[int, ...] = ()
    copies: int = 1


@dataclass(frozen=True)
class Book:
    """One title: where it is here (door, copies) and the nearest other bookcases that hold it."""
    title: str
    author: str = ""
    isbn: str = ""
    clc: str = ""
    here: tuple[tuple[int, int], ...] = ()        # (door, copies), by door
    places: tuple[Place, ...] = ()                 # the nearest first, a few at most
    elsewhere: int = 0                             # how many other bookcases hold it

    @property
    def held(self) -> bool:
        return bool(self.here or self.places or self.elsewhere)

    @property
    def colour(self) -> tuple[int, int, int]:
        """The cover colour band: one of a few dark shades, the same for a title everywhere (white type reads
        on each: contrast 7:1 or more)."""
        digest = hashlib.blake2s(self.title.encode("utf-8"), digest_size=2).digest()
        return COVER_COLOURS[int.from_bytes(digest, "big") % len(COVER_COLOURS)]


COVER_COLOURS = ((120, 30, 40), (20, 80, 60), (30, 60, 120), (90, 50, 110), (110, 70, 20), (40, 70, 80),
                 (70, 70, 70), (130, 40, 80))


@dataclass(frozen=True)
class Answer:
    """The answer to what was typed, scanned or browsed: books in order (here first, then the nearest).

    ``kind``: "search" (typed), "scan" (a barcode or ISBN), "title" (one title asked for by name), "shelf"
    (browsing ``shelf``). ``error``: the search failed (the screen says so)."""
    query: str
    books: tuple[Book, ...] = ()
    kind: str = "search"
    shelf: str | None = None
    error: bool = False
    more: bool = False                             # there were more than the books listed

    @property
    def rows(self) -> tuple[dict, ...]:
        """The answer's own words (titles, authors, places): data, not the screen's words (layout checks)."""
        return tuple({"title": b.title, "author": b.author, "isbn": b.isbn, "clc": b.clc,
                      "places": " ".join(f"{p.name} {p.address}" for p in b.places)} for b in self.books)
