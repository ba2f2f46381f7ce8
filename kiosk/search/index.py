"""The find-a-book index, written on the core loop only (docs/design.md §3): titles, their pinyin keys, who holds them.

Tables (kiosk.store.migrations V4): ``search_titles`` has one row per title known here — from this bookcase's
catalogue and from the other bookcases' holdings messages — with author, ISBN, CLC class, how many other
bookcases hold it (``holders``) and how far the nearest of them is (``nearest_m``). Its pinyin keys are in two
contentless FTS5 tables with prefix indexes: ``search_head`` (from the start of the title or of an author's
name, and the ISBN) and ``search_rest`` (from inside the title). ``remote_holdings.title_id`` ties each item of
the fleet to its title; ``peers`` keeps each bookcase's place and distance from here.

A catalogue change queues its title in ``search_pending`` (a trigger: the catalogue's writers need not know
of this index); ``refresh`` gives queued titles their keys. Holdings messages go through ``holdings_changed``
inside the transaction that applies them. Titles are never removed: a title no bookcase holds is still found,
and the screen offers to reserve it.
"""

from __future__ import annotations

import logging
import math
import sqlite3
from collections.abc import Iterable

from kiosk.search import isbn as isbns
from kiosk.search import pinyin

LOGGER = logging.getLogger(__name__)

HOME_KEY = "search:home"          # meta: this bookcase's "latitude,longitude", for the distances
CHUNK = 400                       # ids per IN (...) list
EARTH_RADIUS_M = 6_371_008.8      # the mean radius (IUGG)


def title_key(title: str | None) -> str:
    """The form a title is indexed under: trimmed, without the 《》 around it."""
    t = (title or "").strip()
    if t.startswith("《") and t.endswith("》"):
        t = t[1:-1].strip()
    return t


def _clc(mark: str) -> str:
    return mark.strip().upper()


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres between two points given in degrees."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


# --- keys --------------------------------------------------------------------------------------------------

def tokens(title: str, author: str = "", isbn: str = "") -> tuple[str, str]:
    """The (head, rest) key texts of a title: space-separated tokens of lower-case letters and digits."""
    k = pinyin.keys(title)
    head = list(k.head())
    for name in pinyin.author_names(author):
        head += pinyin.keys(name, person=True).head()
    digits = "".join(ch for ch in isbn if ch.isdigit() or ch in "Xx").lower()
    if digits:
        head.append(digits)
    head = [t for t in dict.fromkeys(head) if t]
    rest = [t for t in dict.fromkeys(k.suffixes()) if t and t not in head]
    return " ".join(head), " ".join(rest)


def _fts(conn: sqlite3.Connection, title_id: int, title: str, author: str, isbn: str, op: str = "") -> None:
    """Add the title's keys to the FTS tables, or take them out (``op="delete"``: contentless tables need the
    very tokens that went in)."""
    head, rest = tokens(title, author, isbn)
    for table, text in (("search_head", head), ("search_rest", rest)):
        if not text:
            continue
        if op:
            conn.execute(f"INSERT INTO {table} ({table}, rowid, k) VALUES (?, ?, ?)", (op, title_id, text))
        else:
            conn.execute(f"INSERT INTO {table} (rowid, k) VALUES (?, ?)", (title_id, text))


def ensure_titles(conn: sqlite3.Connection, books: Iterable[dict], added: set[int] | None = None,
                  holder: tuple[float | None] | None = None) -> dict[str, int]:
    """Title key -> id for ``books`` (dicts with title and optionally author, isbn, clc), adding titles not
    known yet and filling in an author, ISBN or class a known title lacks. The ids of titles added go into
    ``added``; ``holder``: (distance,) of the one other bookcase that holds the titles added (None: none)."""
    wanted: dict[str, dict] = {}
    for b in books:
        key = title_key(b.get("title"))
        if not key:
            continue
        have = wanted.setdefault(key, {"author": "", "isbn": "", "clc": ""})
        for field, clean in (("author", str.strip), ("isbn", isbns.digits), ("clc", _clc)):
            if not have[field] and b.get(field):
                have[field] = clean(str(b[field]))
    ids: dict[str, int] = {}
    keys = list(wanted)
    for i in range(0, len(keys), CHUNK):
        chunk = keys[i:i + CHUNK]
        rows = conn.execute(f"SELECT id, title, author, isbn, clc FROM search_titles WHERE title IN "
                            f"({','.join('?' * len(chunk))})", chunk).fetchall()
        for title_id, title, author, isbn, clc in rows:
            ids[title] = title_id
            new = wanted[title]
            author2, isbn2, clc2 = author or new["author"], isbn or new["isbn"], clc or new["clc"]
            if (author2, isbn2, clc2) == (author, isbn, clc):
                continue
            if (author2, isbn2) != (author, isbn):
                _fts(conn, title_id, title, author, isbn, op="delete")
                _fts(conn, title_id, title, author2, isbn2)
            conn.execute("UPDATE search_titles SET author = ?, isbn = ?, clc = ? WHERE id = ?",
                         (author2, isbn2, clc2, title_id))
    fresh = [key for key in keys if key not in ids]
    if not fresh:
        return ids
    holders, nearest = (1, holder[0]) if holder is not None else (0, None)
    conn.executemany("INSERT INTO search_titles (title, author, isbn, clc, holders, nearest_m) "
                     "VALUES (?, ?, ?, ?, ?, ?)",
                     [(key, wanted[key]["author"], wanted[key]["isbn"], wanted[key]["clc"], holders, nearest)
                      for key in fresh])
    new_ids = _ids_of(conn, fresh)
    head, rest = [], []
    for key in fresh:
        h, r = tokens(key, wanted[key]["author"], wanted[key]["isbn"])
        head += [(new_ids[key], h)] if h else []
        rest += [(new_ids[key], r)] if r else []
    conn.executemany("INSERT INTO search_head (rowid, k) VALUES (?, ?)", head)
    conn.executemany("INSERT INTO search_rest (rowid, k) VALUES (?, ?)", rest)
    ids.update(new_ids)
    if added is not None:
        added.update(new_ids.values())
    return ids


def _ids_of(conn: sqlite3.Connection, titles: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for i in range(0, len(titles), CHUNK):
        chunk = titles[i:i + CHUNK]
        out.update((t, n) for n, t in conn.execute(f"SELECT id, title FROM search_titles WHERE title IN "
                                                    f"({','.join('?' * len(chunk))})", chunk))
    return out


# --- the catalogue -----------------------------------------------------------------------------------------

def refresh(conn: sqlite3.Connection, limit: int = 5000) -> int:
    """Give queued catalogue titles (``search_pending``) their keys; returns how many were done. Also ties
    items of the fleet whose title arrived before its keys to their title. Call inside a transaction."""
    pending = [t for (t,) in conn.execute("SELECT title FROM search_pending LIMIT ?", (limit,))]
    if not pending:
        return 0
    books = []
    for i in range(0, len(pending), CHUNK):
        chunk = pending[i:i + CHUNK]
        marks = ",".join("?" * len(chunk))
        books += [{"title": t, "author": a, "isbn": s, "clc": c} for t, a, s, c in conn.execute(
            f"SELECT title, MAX(author), MAX(isbn), MAX(clc) FROM catalogue WHERE title IN ({marks}) GROUP BY title",
            chunk)]
        books += [{"title": t} for (t,) in conn.execute(
            f"SELECT DISTINCT title FROM remote_holdings WHERE title IN ({marks}) AND title_id IS NULL", chunk)]
    ids = ensure_titles(conn, books)
    fixed: set[int] = set()
    for title in pending:
        title_id = ids.get(title_key(title))
        if title_id is not None and conn.execute("UPDATE remote_holdings SET title_id = ? WHERE title = ? "
                                                 "AND title_id IS NULL", (title_id, title)).rowcount:
            fixed.add(title_id)
    update_holders(conn, fixed)
    conn.executemany("DELETE FROM search_pending WHERE title = ?", [(t,) for t in pending])
    return len(pending)


def pending(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT COUNT(*) FROM search_pending").fetchone()[0]


# --- the fleet's holdings ----------------------------------------------------------------------------------

def titles_of(conn: sqlite3.Connection, bookcase: str) -> set[int]:
    """The titles a bookcase holds now (before its new holdings replace them)."""
    return {t for (t,) in conn.execute("SELECT DISTINCT title_id FROM remote_holdings WHERE bookcase = ? "
                                       "AND title_id IS NOT NULL", (bookcase,))}


def holdings_changed(conn: sqlite3.Connection, msg: dict, before: set[int]) -> int:
    """After another bookcase's holdings message replaced its rows: tie its items to titles (adding new
    titles with their keys), note its place and distance, and count who holds each title it gained or lost.
    Returns how many titles were counted again.

    The counts change by one bookcase at a time (``before`` and after are sets of titles, so copies count
    once): a gained title is held by one bookcase more and may have a nearer holder, a lost one by one fewer.
    Only a title whose nearest holder was this bookcase, and that lost it or saw it move away, is looked up
    again in the fleet's items: recounting every title of the message read every copy of its popular titles
    across the fleet (a third of a second for 500 books among 250,000)."""
    bookcase = msg["bookcase"]
    items = msg["items"]
    untitled = [i["item"] for i in items if not title_key(i.get("title"))]
    known: dict[str, str] = {}
    for i in range(0, len(untitled), CHUNK):
        chunk = untitled[i:i + CHUNK]
        known.update(conn.execute(f"SELECT item_id, title FROM catalogue WHERE item_id IN "
                                  f"({','.join('?' * len(chunk))})", chunk).fetchall())
    books = [{**i, "title": i.get("title") or known.get(i["item"])} for i in items]
    old, new, moved = _place_peer(conn, bookcase, msg)
    added: set[int] = set()                   # titles never seen before: held by this bookcase alone
    ids = ensure_titles(conn, books, added, holder=(new,))
    conn.executemany("UPDATE remote_holdings SET title_id = ? WHERE bookcase = ? AND item_id = ?",
                     [(ids[title_key(b["title"])], bookcase, b["item"]) for b in books if title_key(b["title"])])
    after = set(ids.values())
    gained, lost = after - before - added, before - after
    kept = before & after if moved else set()
    _update(conn, "holders = holders + 1", gained)
    _update(conn, "holders = holders - 1", lost)
    if old is not None:            # this bookcase was the nearest holder: which is now?
        _nearest(conn, _ids_where(conn, lost | kept, "nearest_m = ?", old))
    if new is not None:
        _update(conn, "nearest_m = MIN(COALESCE(nearest_m, ?1), ?1)", gained | kept, new)
    return len(gained | lost | kept | added)


def _place_peer(conn: sqlite3.Connection, bookcase: str, msg: dict) -> tuple[float | None, float | None, bool]:
    """Record the bookcase's place from its message: (distance from here before, after, whether it changed)."""
    lat, lon = msg.get("latitude"), msg.get("longitude")
    if lat is None or lon is None:
        lat = lon = None
    home = _home(conn)
    distance = haversine_m(home[0], home[1], lat, lon) if home and lat is not None else None
    row = conn.execute("SELECT distance_m FROM peers WHERE bookcase = ?", (bookcase,)).fetchone()
    conn.execute("UPDATE peers SET latitude = ?, longitude = ?, address = ?, distance_m = ? WHERE bookcase = ?",
                 (lat, lon, msg.get("address") or None, distance, bookcase))
    old = row[0] if row else None
    return old, distance, old != distance


def _chunks(ids: Iterable[int]) -> Iterable[tuple[list[int], str]]:
    ids = sorted(set(ids))
    for i in range(0, len(ids), CHUNK):
        chunk = ids[i:i + CHUNK]
        yield chunk, ",".join("?" * len(chunk))


def _update(conn: sqlite3.Connection, assign: str, title_ids: Iterable[int], value: object = None) -> None:
    """``UPDATE search_titles SET <assign>`` for these titles; ``?1`` in ``assign`` is ``value``."""
    for chunk, _marks in _chunks(title_ids):
        marks = ",".join(f"?{n}" for n in range(2, len(chunk) + 2))
        conn.execute(f"UPDATE search_titles SET {assign} WHERE id IN ({marks})", (value, *chunk))


def _ids_where(conn: sqlite3.Connection, title_ids: Iterable[int], where: str, value: object) -> list[int]:
    out: list[int] = []
    for chunk, marks in _chunks(title_ids):
        out += [i for (i,) in conn.execute(f"SELECT id FROM search_titles WHERE {where} AND id IN ({marks})",
                                           (value, *chunk))]
    return out


def _nearest(conn: sqlite3.Connection, title_ids: Iterable[int]) -> None:
    """Look up again how far the nearest bookcase holding each title is (from every copy in the fleet)."""
    for chunk, marks in _chunks(title_ids):
        found = dict(conn.execute(f"SELECT h.title_id, MIN(p.distance_m) FROM remote_holdings h JOIN peers p "
                                  f"ON p.bookcase = h.bookcase WHERE h.title_id IN ({marks}) GROUP BY h.title_id",
                                  chunk).fetchall())
        conn.executemany("UPDATE search_titles SET nearest_m = ? WHERE id = ?", [(found.get(i), i) for i in chunk])


def update_holders(conn: sqlite3.Connection, title_ids: Iterable[int]) -> None:
    """Count from the fleet's items how many other bookcases hold each title and how far the nearest is."""
    for chunk, marks in _chunks(title_ids):
        found = {t: (n, d) for t, n, d in conn.execute(
            f"SELECT h.title_id, COUNT(DISTINCT h.bookcase), MIN(p.distance_m) FROM remote_holdings h "
            f"LEFT JOIN peers p ON p.bookcase = h.bookcase WHERE h.title_id IN ({marks}) GROUP BY h.title_id", chunk)}
        conn.executemany("UPDATE search_titles SET holders = ?, nearest_m = ? WHERE id = ?",
                         [(*found.get(i, (0, None)), i) for i in chunk])


# --- where this bookcase stands ----------------------------------------------------------------------------

def _home(conn: sqlite3.Connection) -> tuple[float, float] | None:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (HOME_KEY,)).fetchone()
    if not row or not row[0]:
        return None
    lat, lon = (float(x) for x in row[0].split(","))
    return lat, lon


def set_home(conn: sqlite3.Connection, latitude: float | None, longitude: float | None) -> bool:
    """This bookcase's coordinates (from its config); when they change, every distance is worked out again.
    True if they changed. Call inside a transaction."""
    value = f"{latitude!r},{longitude!r}" if latitude is not None and longitude is not None else ""
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (HOME_KEY,)).fetchone()
    if (row[0] if row else "") == value:
        return False
    conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (HOME_KEY, value))
    for bookcase, lat, lon in conn.execute("SELECT bookcase, latitude, longitude FROM peers").fetchall():
        distance = haversine_m(latitude, longitude, lat, lon) if value and lat is not None and lon is not None \
            else None
        conn.execute("UPDATE peers SET distance_m = ? WHERE bookcase = ?", (distance, bookcase))
    _nearest(conn, [i for (i,) in conn.execute("SELECT id FROM search_titles WHERE holders > 0")])
    LOGGER.info("find a book: this bookcase stands at %s; distances to the other bookcases worked out again",
                value or "an unknown place")
    return True
