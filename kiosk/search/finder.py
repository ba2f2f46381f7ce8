"""The screen's finder: searches and browses the find-a-book index over a read-only connection of its own.

The screen's thread calls it (docs/design.md §3: a search never waits for the core loop, nor writes). Answers
come in this order: titles on this bookcase's shelves first, then titles other bookcases hold, nearest first,
then titles no bookcase holds (the catalogue knows them: the screen offers to reserve them). Within each, a
title (or author) whose whole key is what was typed comes first ("hlm": 《红楼梦》 before 《红楼梦魇》), then a
match from the start of the title or of an author's name, then a match inside the title.

This bookcase's own titles (a few hundred) are matched in memory against their keys, worked out once per
title: asking the FTS index for "these 500 rowids that match" made SQLite run the prefix query once per rowid
(a second for "xian"). The titles elsewhere are asked of the index, each kind of match in one query.

Calling the finder with a text (``finder(text)``) answers as the Find page did before the index: rows of this
bookcase's items, else of the fleet's (kiosk.store.ledger.Store.find and where_else), for older callers.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import threading
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from kiosk.search import isbn as isbns
from kiosk.search.classes import CLASSES
from kiosk.search.index import title_key, tokens
from kiosk.search.pinyin import query_form
from kiosk.search.results import Answer, Book, Place
from kiosk.store.ledger import Store

LOGGER = logging.getLogger(__name__)

LIMIT = 24                 # books in one answer
PLACES = 3                 # other bookcases named for a title
NEAR_PEERS = 32            # the nearest bookcases whose holdings are read first for a title's places
NEW_DAYS = 30              # "new here": on these shelves for at most this long
CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
CHILDREN_SQL = "(t.clc GLOB 'I287*' OR t.clc GLOB 'Z228*' OR t.clc GLOB 'I[1-7][0-9][0-9].8*')"
AWAY_ORDER = "t.holders = 0, t.nearest_m IS NULL, t.nearest_m, length(t.title), t.title"


@dataclass(frozen=True)
class Keyed:
    """A title on these shelves and its keys, each text " k1 k2 " (a key starts after a space and ends before
    one); ``source``: the (title, author, ISBN) they were worked out from."""
    source: tuple[str, str, str]
    head: str
    rest: str


def class_sql(code: str) -> tuple[str, tuple]:
    """The WHERE clause for a browse class: "T" leaves out computing (TP), which has a class of its own."""
    if code not in CLASSES:
        raise ValueError(f"no browse class {code!r}")
    if len(code) == 1:
        longer = [c for c in CLASSES if len(c) > 1 and c.startswith(code)]
        return (" AND ".join(["upper(t.clc) GLOB ?"] + ["upper(t.clc) NOT GLOB ?"] * len(longer)),
                (f"{code}*", *(f"{c}*" for c in longer)))
    return "upper(t.clc) GLOB ?", (f"{code}*",)


class Finder:
    """Read-only searches for the screen. ``scans``: where the scanner's lines go (kiosk.intents.ScanRouter), so
    the Find page can take a barcode while it is open."""

    def __init__(self, db_path: Path | str, bookcase_id: str, scans: object | None = None) -> None:
        self.db_path = db_path
        self.bookcase_id = bookcase_id
        self.scans = scans
        self._store: Store | None = None
        self._lock = threading.Lock()
        self._version: int | None = None
        self._here: dict[int, dict[int, int]] = {}
        self._keys: dict[int, Keyed] = {}               # this bookcase's titles and their keys
        self._peers: dict[str, tuple[str, str, float | None]] = {}
        self._order: list[str] = []                     # the other bookcases, nearest first
        self._rank: dict[str, int] = {}

    # --- the connection --------------------------------------------------------------------------------

    def _db(self) -> sqlite3.Connection:
        if self._store is None:
            self._store = Store(self.db_path, self.bookcase_id)
            self._store.db.execute("PRAGMA query_only = ON")
        conn = self._store.db.conn
        version = conn.execute("PRAGMA data_version").fetchone()[0]
        if version != self._version:          # another connection (the core loop) committed: read again
            self._here = self._load_here(conn)
            self._keys = self._load_keys(conn, self._here, self._keys)
            self._peers = {b: (name or b, address or "", d) for b, name, address, d in conn.execute(
                "SELECT bookcase, name, address, distance_m FROM peers")}
            self._order = sorted(self._peers, key=lambda b: (self._peers[b][2] is None, self._peers[b][2] or 0.0,
                                                             self._peers[b][0]))
            self._rank = {b: n for n, b in enumerate(self._order)}
            self._version = version
        return conn

    def warm(self) -> None:
        """Read what the finder keeps in memory (this bookcase's titles and their keys; the other bookcases)
        now: the Find page calls it when it opens, so the patron's first key does not wait for it."""
        with self._lock:
            self._db()

    def close(self) -> None:
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None

    @staticmethod
    def _load_here(conn: sqlite3.Connection) -> dict[int, dict[int, int]]:
        """title id -> {door: copies} of what is on this bookcase's shelves now."""
        rows = conn.execute("SELECT c.title, h.door FROM holdings h JOIN catalogue c ON c.item_id = h.item_id "
                            "WHERE h.status = 'present'").fetchall()
        keys = {title_key(t) for t, _ in rows}
        ids = _ids_by_title(conn, keys)
        here: dict[int, dict[int, int]] = defaultdict(dict)
        for title, door in rows:
            title_id = ids.get(title_key(title))
            if title_id is not None:
                here[title_id][door] = here[title_id].get(door, 0) + 1
        return dict(here)

    @staticmethod
    def _load_keys(conn: sqlite3.Connection, here: dict[int, dict[int, int]], known: dict[int, Keyed]
                   ) -> dict[int, Keyed]:
        """The keys of this bookcase's titles, as the index has them (kiosk.search.index.tokens); a title
        already worked out keeps its keys unless its author or ISBN changed."""
        out: dict[int, Keyed] = {}
        ids = list(here)
        for i in range(0, len(ids), 400):
            chunk = ids[i:i + 400]
            for title_id, title, author, isbn in conn.execute(
                    f"SELECT id, title, author, isbn FROM search_titles WHERE id IN ({','.join('?' * len(chunk))})",
                    chunk):
                old = known.get(title_id)
                if old is not None and old.source == (title, author, isbn):
                    out[title_id] = old
                    continue
                head, rest = tokens(title, author, isbn)
                out[title_id] = Keyed((title, author, isbn), f" {head} ", f" {rest} ")
        return out

    # --- what the screen asks ----------------------------------------------------------------------------

    def __call__(self, text: str) -> list[dict]:
        """Rows as the Find page read them before the index: items here, else items elsewhere."""
        with self._lock:
            self._db()
            return self._store.find(text) or self._store.where_else(text)

    def search(self, text: str, limit: int = LIMIT) -> Answer:
        """What the patron typed: pinyin initials or syllables, digits, Latin letters; or Chinese text."""
        with self._lock:
            conn = self._db()
            if CJK.search(text):
                return self._answer(conn, text, self._by_text(conn, text.strip(), limit + 1), limit)
            q = query_form(text)
            if not q:
                return Answer(text)
            mine = self._mine(q)
            return self._answer(conn, text, mine + self._away(conn, q, limit + 1, set(mine)), limit)

    def _mine(self, q: str) -> list[int]:
        """This bookcase's titles matching ``q``: whole key, then from the start, then inside; most copies first."""
        tiers: tuple[list[int], list[int], list[int]] = ([], [], [])
        whole, start = f" {q} ", f" {q}"
        for title_id, k in self._keys.items():
            if whole in k.head:
                tiers[0].append(title_id)
            elif start in k.head:
                tiers[1].append(title_id)
            elif start in k.rest:
                tiers[2].append(title_id)
        here, keys = self._here, self._keys
        return [i for tier in tiers for i in sorted(tier, key=lambda i: (-sum(here[i].values()),
                                                                         len(keys[i].source[0]), keys[i].source[0]))]

    @staticmethod
    def _away(conn: sqlite3.Connection, q: str, limit: int, taken: set[int]) -> list[int]:
        """Titles matching ``q`` other than those ``taken`` (found here), each kind of match nearest first."""
        ids: list[int] = []
        for table, match in (("search_head", f'"{q}"'), ("search_head", f'"{q}"*'), ("search_rest", f'"{q}"*')):
            rows = conn.execute(
                f"SELECT t.id FROM {table} f JOIN search_titles t ON t.id = f.rowid WHERE {table} MATCH ? "
                f"ORDER BY {AWAY_ORDER} LIMIT ?", (match, limit + len(taken))).fetchall()
            for (i,) in rows:
                if i not in taken and len(ids) < limit:
                    ids.append(i)
                    taken.add(i)
            if len(ids) >= limit:
                break
        return ids

    def title(self, title: str) -> Answer:
        """One title by name (a recommendation tapped): its answer, or none."""
        with self._lock:
            conn = self._db()
            ids = list(_ids_by_title(conn, {title_key(title)}).values())
            return self._answer(conn, title, ids, LIMIT, kind="title")

    def lookup(self, code: str) -> Answer | None:
        """A scanned barcode: an ISBN (EAN-13 on the cover, or ISBN-10) or one of the library's item barcodes.
        None if it is neither a valid ISBN nor an item known here or in the fleet (it may be a reader card)."""
        code = code.strip()
        isbn = isbns.isbn13(code)
        with self._lock:
            conn = self._db()
            if isbn is not None:
                forms = [f for f in (isbn, isbns.isbn10(isbn)) if f]
                ids = [i for (i,) in conn.execute(f"SELECT id FROM search_titles WHERE isbn IN "
                                                  f"({','.join('?' * len(forms))})", forms)]
                return self._answer(conn, isbn, ids[:1], LIMIT, kind="scan")
            row = conn.execute("SELECT title FROM catalogue WHERE item_id = ?", (code,)).fetchone()
            if row is not None:
                ids = list(_ids_by_title(conn, {title_key(row[0])}).values())
            else:
                ids = [i for (i,) in conn.execute("SELECT title_id FROM remote_holdings WHERE item_id = ? "
                                                  "AND title_id IS NOT NULL LIMIT 1", (code,))]
                if not ids:
                    return None
            return self._answer(conn, code, ids, LIMIT, kind="scan")

    def browse(self, shelf: str, limit: int = LIMIT) -> Answer:
        """A shelf without typing: "new" (new here), "children", "popular" (most borrowed here this month), or
        "class:<code>" (a CLC class, kiosk.search.classes)."""
        with self._lock:
            conn = self._db()
            if shelf == "new":
                ids = self._new_here(conn, limit + 1)
            elif shelf == "popular":
                ids = self._popular(conn, limit + 1)
            elif shelf == "children":
                ids = self._shelf(conn, CHILDREN_SQL, (), limit)
            elif shelf.startswith("class:"):
                ids = self._shelf(conn, *class_sql(shelf[6:]), limit)
            else:
                raise ValueError(f"no shelf {shelf!r}")
            return self._answer(conn, shelf, ids, limit, kind="shelf", shelf=shelf)

    def classes(self) -> list[tuple[str, int, int]]:
        """Browse classes with books: (code, titles here, titles in the fleet), most held here first."""
        with self._lock:
            conn = self._db()
            out = []
            here = self._here
            for code in CLASSES:
                where, args = class_sql(code)
                ids = [i for (i,) in conn.execute(f"SELECT t.id FROM search_titles t WHERE {where} AND "
                                                  f"t.holders > 0", args)]
                mine = [i for (i,) in conn.execute(
                    f"SELECT t.id FROM search_titles t WHERE {where} AND t.id IN ({','.join(map(str, here)) or 'NULL'})",
                    args)]
                if ids or mine:
                    out.append((code, len(mine), len(set(ids) | set(mine))))
            out.sort(key=lambda c: (-c[1], -c[2], c[0]))
            return out

    # --- shelves -----------------------------------------------------------------------------------------

    def _new_here(self, conn: sqlite3.Connection, limit: int) -> list[int]:
        since = datetime.now().astimezone().timestamp() - NEW_DAYS * 86400
        rows = conn.execute("SELECT c.title, MAX(COALESCE(t.first_seen, h.updated)) AS seen FROM holdings h "
                            "JOIN catalogue c ON c.item_id = h.item_id LEFT JOIN tags t ON t.uid = h.uid "
                            "WHERE h.status = 'present' GROUP BY c.title ORDER BY seen DESC, c.title").fetchall()
        recent = [t for t, seen in rows if seen and _timestamp(seen) >= since]
        ids = _ids_by_title(conn, {title_key(t) for t in recent})
        return [ids[title_key(t)] for t in recent if title_key(t) in ids][:limit]

    def _popular(self, conn: sqlite3.Connection, limit: int) -> list[int]:
        month = datetime.now().astimezone().replace(day=1, hour=0, minute=0, second=0, microsecond=0).isoformat()
        rows = conn.execute("SELECT c.title, COUNT(*) AS n FROM loans l JOIN catalogue c ON c.item_id = l.item_id "
                            "WHERE l.loaned_at >= ? GROUP BY c.title ORDER BY n DESC, c.title LIMIT ?",
                            (month, limit)).fetchall()
        ids = _ids_by_title(conn, {title_key(t) for t, _ in rows})
        return [ids[title_key(t)] for t, _ in rows if title_key(t) in ids]

    def _shelf(self, conn: sqlite3.Connection, where: str, args: tuple, limit: int) -> list[int]:
        here = self._here
        mine = [i for (i,) in conn.execute(
            f"SELECT t.id FROM search_titles t WHERE {where} AND t.id IN ({','.join(map(str, here)) or 'NULL'}) "
            f"ORDER BY t.title", args)]
        mine.sort(key=lambda i: -sum(here[i].values()))
        rows = conn.execute(f"SELECT t.id FROM search_titles t WHERE {where} ORDER BY {AWAY_ORDER} LIMIT ?",
                            (*args, limit + 1 + len(mine))).fetchall()
        return (mine + [i for (i,) in rows if i not in set(mine)])[:limit + 1]

    def _by_text(self, conn: sqlite3.Connection, text: str, limit: int) -> list[int]:
        """Titles or authors containing Chinese ``text``: here first, then the nearest."""
        pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        return self._shelf(conn, "(t.title LIKE ? ESCAPE '\\' OR t.author LIKE ? ESCAPE '\\')", (pattern, pattern),
                           limit)

    # --- answers -----------------------------------------------------------------------------------------

    def _answer(self, conn: sqlite3.Connection, query: str, ids: list[int], limit: int, *, kind: str = "search",
                shelf: str | None = None) -> Answer:
        more = len(ids) > limit
        ids = list(dict.fromkeys(ids))[:limit]
        if not ids:
            return Answer(query, kind=kind, shelf=shelf)
        marks = ",".join("?" * len(ids))
        rows = {r[0]: r for r in conn.execute(f"SELECT id, title, author, isbn, clc, holders FROM search_titles "
                                              f"WHERE id IN ({marks})", ids)}
        held = self._places(conn, ids, {i: r[5] for i, r in rows.items()})
        books = []
        for title_id in ids:
            if title_id not in rows:
                continue
            _, title, author, isbn, clc, holders = rows[title_id]
            here = tuple(sorted(self._here.get(title_id, {}).items()))
            books.append(Book(title, author, isbn, clc, here, held.get(title_id, ()), holders))
        return Answer(query, tuple(books), kind=kind, shelf=shelf, more=more)

    def _places(self, conn: sqlite3.Connection, ids: list[int], holders: dict[int, int]
                ) -> dict[int, tuple[Place, ...]]:
        """The nearest few bookcases that hold each title, with their doors and copies.

        A popular title has thousands of copies in the fleet, each a row to read by the title's index: 30 ms for
        a page of answers. The nearest NEAR_PEERS bookcases' rows lie together (by bookcase), so they are read
        first; only a title that fewer of them hold than PLACES is read from all its copies (a rare title, with
        few of them)."""
        rank = self._rank
        found: dict[int, dict[str, tuple[int, str]]] = defaultdict(dict)
        near = self._order[:NEAR_PEERS]
        if near:
            for title_id, bookcase, copies, doors in conn.execute(
                    f"SELECT title_id, bookcase, COUNT(*), group_concat(DISTINCT door) FROM remote_holdings "
                    f"WHERE bookcase IN ({','.join('?' * len(near))}) AND +title_id IN ({','.join('?' * len(ids))}) "
                    f"GROUP BY title_id, bookcase", (*near, *ids)):
                found[title_id][bookcase] = (copies, doors)
        lacking = [i for i in ids if len(found[i]) < min(PLACES, holders.get(i, 0))]
        if lacking:
            for title_id, bookcase, copies, doors in conn.execute(
                    f"SELECT title_id, bookcase, COUNT(*), group_concat(DISTINCT door) FROM remote_holdings "
                    f"WHERE title_id IN ({','.join('?' * len(lacking))}) GROUP BY title_id, bookcase", lacking):
                found[title_id][bookcase] = (copies, doors)
        out: dict[int, tuple[Place, ...]] = {}
        for title_id, where in found.items():
            places = []
            for bookcase in sorted(where, key=lambda b: rank.get(b, len(rank)))[:PLACES]:
                copies, doors = where[bookcase]
                name, address, distance = self._peers.get(bookcase, (bookcase, "", None))
                places.append(Place(bookcase, name, address, distance,
                                    tuple(sorted({int(d) for d in str(doors or "").split(",") if d and int(d)})),
                                    copies))
            out[title_id] = tuple(places)
        return out


def _matching(conn: sqlite3.Connection, table: str, match: str, among: list[int]) -> list[int]:
    """Rowids of ``table`` matching ``match`` among ``among`` (this bookcase's few hundred titles)."""
    if not among:
        return []
    return [i for (i,) in conn.execute(f"SELECT rowid FROM {table} WHERE {table} MATCH ? AND rowid IN "
                                       f"({','.join(map(str, among))})", (match,))]


def _ids_by_title(conn: sqlite3.Connection, keys: set[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    keys = [k for k in keys if k]
    for i in range(0, len(keys), 400):
        chunk = keys[i:i + 400]
        out.update((t, i2) for i2, t in conn.execute(
            f"SELECT id, title FROM search_titles WHERE title IN ({','.join('?' * len(chunk))})", chunk))
    return out


def _timestamp(iso: str) -> float:
    try:
        dt = datetime.fromisoformat(iso)
    except ValueError:
        return 0.0
    if dt.tzinfo is None:
        dt = dt.astimezone()
    return dt.timestamp()
