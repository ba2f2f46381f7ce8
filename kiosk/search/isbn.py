"""ISBNs as the scanner reads them off a book (EAN-13, 978/979) or as catalogues write them (ISBN-10, hyphens)."""

from __future__ import annotations

import logging

LOGGER = logging.getLogger(__name__)


def digits(text: str) -> str:
    """"978-7-5339-5988-4" -> "9787533959884"; an ISBN-10's check "x" as "X"."""
    return "".join(ch for ch in (text or "") if ch.isdigit() or ch in "xX").upper()


def _valid13(d: str) -> bool:
    return len(d) == 13 and d.isdigit() and d[:3] in ("978", "979") and \
        sum(int(c) * (1 if i % 2 == 0 else 3) for i, c in enumerate(d)) % 10 == 0


def _valid10(d: str) -> bool:
    if len(d) != 10 or not d[:9].isdigit() or not (d[9].isdigit() or d[9] == "X"):
        return False
    return sum((10 - i) * (10 if c == "X" else int(c)) for i, c in enumerate(d)) % 11 == 0


def isbn13(text: str) -> str | None:
    """The ISBN-13 of ``text`` if it is a valid ISBN-13 or ISBN-10 (check digit and all), else None."""
    d = digits(text)
    if _valid13(d):
        return d
    if _valid10(d):
        core = "978" + d[:9]
        check = (10 - sum(int(c) * (1 if i % 2 == 0 else 3) for i, c in enumerate(core)) % 10) % 10
        return core + str(check)
    return None


def isbn10(isbn: str) -> str | None:
    """The ISBN-10 form of a 978 ISBN-13 (979 ones have none)."""
    d = digits(isbn)
    if not _valid13(d) or not d.startswith("978"):
        return None
    core = d[3:12]
    check = (11 - sum((10 - i) * int(c) for i, c in enumerate(core)) % 11) % 11
    return core + ("X" if check == 10 else str(check))
