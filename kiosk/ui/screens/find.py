"""The Find page: type pinyin on the on-screen keyboard, browse shelves, or scan a book; see where each book is.

Portrait: the letters typed and Back on top, the answer in the middle, the keyboard below. Landscape: the
keyboard on the right. With nothing typed the middle shows the shelves (new here, children's, most borrowed
this month, subjects) and the library's recommendations. A book opened from the answer gets the whole page:
the doors that hold it here (with a button to borrow from that door), else the nearest bookcases that hold it
with their address and distance, else a QR code to reserve it in the library's WeChat account.
"""

from __future__ import annotations

import logging
from urllib.parse import urlencode

import pygame

from kiosk.search.classes import class_name
from kiosk.search.results import SHELVES, Answer, Book
from kiosk.ui import keyboard, theme
from kiosk.ui.painter import Painter
from kiosk.ui.screens.base import Screen, View
from kiosk.ui.screens.cards import qr_picture
from kiosk.ui.screens.find_state import FindView

LOGGER = logging.getLogger(__name__)

BAND_PX = 22                 # the cover colour band down the left of a book
MAX_HERE = 2                 # doors of this bookcase listed for a book (with a borrow button each)
QR_PX = 300                  # the reserve QR code, on a 1080-pixel-wide screen


def row_height(L: theme.Layout) -> int:
    """A book in the list, a recommendation: the smallest touch target (room for one more of them)."""
    return max(theme.MIN_TARGET_PX, L.px(124))


def site(name: str) -> str:
    """"闵行区图书馆城市书柜 · 七宝镇万科城市花园" -> "七宝镇万科城市花园": the part a patron walks to."""
    return name.rsplit("·", 1)[-1].strip() or name


def distance(v: View, metres: float | None) -> str:
    if metres is None:
        return ""
    if metres < 1000:
        return v.cat.t("find.metres", m=max(10, int(round(metres, -1))))
    return v.cat.t("find.km", km=f"{metres / 1000:.1f}")


def where(v: View, book: Book) -> str:
    """One short line: here and behind which doors, or the nearest other bookcase, or nowhere."""
    if book.here:
        return v.cat.t("find.here_short", doors=v.cat.doors([d for d, _ in book.here]))
    if book.places:
        near = book.places[0]
        far = distance(v, near.distance_m)
        return f"{site(near.name)}\n{far}" if far else site(near.name)
    return v.cat.t("find.nowhere_short")


def reserve_link(base: str, book: Book | None, query: str) -> str:
    """The library's reservation page for this book (its ISBN, else its title)."""
    if book is not None:
        args = {"isbn": book.isbn} if book.isbn else {"title": book.title}
    else:
        args = {"q": query}
    return base + ("&" if "?" in base else "?") + urlencode(args)


class Find(Screen):
    """Search by pinyin, browse, and where each book is."""

    name = "find"

    def draw(self, p: Painter, v: View) -> float | None:
        body = self.frame(p, v)
        L = p.L
        f = v.finding or FindView()
        book = f.opened
        if book is not None:                  # a book's own page: the keyboard makes room for it
            top, rest = theme.split_v(body, L.target, 1, gap=L.gap)
            self._top(p, top, v, f)
            self._book(p, rest, v, f, book)
            return None
        if L.landscape:
            kb_w = keyboard.width(body.height, L)
            left, kb = theme.split_h(body, 1, kb_w, gap=L.gap * 2)
            top, rest = theme.split_v(left, L.target, 1, gap=L.gap)
        else:
            kb_h = keyboard.height(body.width, L)
            top, rest, kb = theme.split_v(body, L.target, 1, kb_h, gap=L.gap)
        self._top(p, top, v, f)
        keyboard.draw(p, kb, {"back": v.cat.t("find.key_back"), "clear": v.cat.t("find.key_clear")}, v.act.find_key)
        if f.answer is not None:
            self._list(p, rest, v, f)
        elif f.classes is not None:
            self._classes(p, rest, v, f)
        else:
            self._shelves(p, rest, v)
        return None

    # --- the top: what was typed, and Back -----------------------------------------------------------

    @staticmethod
    def _top(p: Painter, rect: pygame.Rect, v: View, f: FindView) -> None:
        L = p.L
        field, back = theme.split_h(rect, 1, max(L.target, L.px(240)), gap=L.gap)
        p.button(back, v.cat.t("common.back"), "back", v.act.find_back, style="secondary")
        p.box(field, theme.WHITE, border=theme.PRIMARY)
        inner = field.inflate(-2 * L.px(24), -2 * L.px(12))
        if f.query:
            p.text(inner, f.query, "title", theme.INK, bold=True, valign="middle", max_lines=1)
        elif f.answer is not None and f.answer.kind == "shelf":
            p.text(inner, v.cat.t(f"find.shelf_{f.answer.shelf}") if f.answer.shelf in SHELVES else
                   class_name(f.answer.shelf.split(":", 1)[-1], v.lang), "head", theme.INK, bold=True,
                   valign="middle", max_lines=1)
        elif f.answer is not None and f.answer.kind == "scan":
            p.text(inner, v.cat.t("find.scanned", code=f.answer.query), "body", theme.INK, bold=True,
                   valign="middle", max_lines=1)
        else:
            p.text(inner, v.cat.t("find.placeholder"), "body", theme.MUTED, valign="middle", max_lines=2)

    # --- nothing typed: shelves and the library's recommendations --------------------------------------

    @staticmethod
    def _shelves(p: Painter, rect: pygame.Rect, v: View) -> None:
        L = p.L
        g = L.gap // 2
        columns = len(SHELVES) if (rect.width - g * (len(SHELVES) - 1)) // len(SHELVES) >= L.target else 2
        rows = -(-len(SHELVES) // columns)
        chips, rest = theme.split_v(rect, rows * row_height(L) + (rows - 1) * g, 1, gap=g)
        for cell, shelf in zip(theme.grid(chips, len(SHELVES), columns, row_height(L), g), SHELVES):
            p.button(cell, v.cat.t(f"find.shelf_{shelf}"), f"shelf:{shelf}", lambda s=shelf: v.act.find_browse(s),
                     style="secondary", size="body")
        line = p.fonts.line_height(L.size("small"))
        if not v.recommended or rest.height < line + L.gap + row_height(L):
            return
        head, rest = theme.split_v(rest, line, 1, gap=L.gap // 2)
        p.text(head, v.cat.t("find.recommended"), "small", theme.MUTED, bold=True, max_lines=1)
        columns = 2 if rest.width >= L.px(900) else 1
        row_h = row_height(L)
        rows = max(0, (rest.height + L.gap // 2) // (row_h + L.gap // 2))
        titles = v.recommended[:rows * columns]
        for cell, t in zip(theme.grid(rest, len(titles), columns, row_h, L.gap // 2), titles):
            p.button(cell, f"《{t}》", f"title:{t}", lambda t=t: v.act.find(t), style="secondary", size="body")

    @staticmethod
    def _classes(p: Painter, rect: pygame.Rect, v: View, f: FindView) -> None:
        L = p.L
        if not f.classes:
            p.text(rect, v.cat.t("find.shelf_empty"), "body", theme.INK)
            return
        g = L.gap // 2
        columns = max(1, min(4 if rect.width >= L.px(900) else 3, (rect.width + g) // (L.target + g)))
        rows = max(1, (rect.height + L.gap // 2) // (L.target + L.gap // 2))
        shown = f.classes[:rows * columns]
        for cell, (code, here, total) in zip(theme.grid(rect, len(shown), columns, L.target, L.gap // 2), shown):
            p.button(cell, class_name(code, v.lang), f"class:{code}", lambda c=code: v.act.find_browse(f"class:{c}"),
                     style="secondary", size="body", sub=v.cat.t("find.class_count", here=here))

    # --- an answer: a list of books ------------------------------------------------------------------

    @staticmethod
    def _list(p: Painter, rect: pygame.Rect, v: View, f: FindView) -> None:
        L = p.L
        answer: Answer = f.answer
        if answer.error or not answer.books:
            text = v.cat.t("find.error") if answer.error else (
                v.cat.t("find.shelf_empty") if answer.kind == "shelf" else v.cat.t("find.nothing", query=answer.query))
            Find._nowhere(p, rect, v, f, None, text)
            return
        line = p.fonts.line_height(L.size("small"))
        head, rest = theme.split_v(rect, line, 1, gap=L.gap // 2)
        count = v.cat.t("find.found_more" if answer.more else "find.found", count=len(answer.books))
        p.text(head, count, "small", theme.MUTED, bold=True, max_lines=1)
        row_h = L.target
        fit = max(1, (rest.height + L.gap // 2) // (row_h + L.gap // 2))
        books = answer.books
        paged = len(books) > fit
        per_page = fit - 1 if paged and fit > 1 else fit
        shown = list(enumerate(books))[f.offset:f.offset + per_page]
        cells = theme.grid(rest, fit, 1, row_h, L.gap // 2)
        for cell, (i, book) in zip(cells, shown):
            Find._row(p, cell, v, i, book)
        if paged and fit > 1:
            prev, nxt = theme.split_h(cells[-1], 1, 1, gap=L.gap)
            p.button(prev, v.cat.t("find.prev"), "page:prev", lambda: v.act.find_page(-1, per_page),
                     style="secondary", size="body", enabled=f.offset > 0)
            p.button(nxt, v.cat.t("find.next"), "page:next", lambda: v.act.find_page(1, per_page),
                     style="secondary", size="body", enabled=f.offset + per_page < len(books))

    @staticmethod
    def _row(p: Painter, cell: pygame.Rect, v: View, index: int, book: Book) -> None:
        L = p.L
        p.box(cell, theme.PANEL)
        band = pygame.Rect(cell.left, cell.top, L.px(BAND_PX), cell.height)
        p.box(band, book.colour, radius=L.px(8))
        inner = pygame.Rect(band.right + L.px(20), cell.top + L.px(10), cell.right - band.right - L.px(40),
                            cell.height - L.px(20))
        left, right = theme.split_h(inner, 0.58, 0.42, gap=L.gap)
        title, author = theme.split_v(left, p.fonts.line_height(L.size("body"), True), 1)
        p.text(title, book.title, "body", theme.INK, bold=True, valign="bottom", max_lines=1)
        if book.author:
            p.text(author, book.author, "small", theme.MUTED, valign="top", max_lines=1)
        colour = theme.GOOD if book.here else theme.INK if book.held else theme.MUTED
        p.text(right, where(v, book), "small", colour, bold=bool(book.here), valign="middle", max_lines=2)
        p.target(cell, f"book:{index}", lambda: v.act.find_open(index))

    # --- one book ------------------------------------------------------------------------------------

    @staticmethod
    def _book(p: Painter, rect: pygame.Rect, v: View, f: FindView, book: Book) -> None:
        L = p.L
        band = pygame.Rect(rect.left, rect.top, L.px(BAND_PX), rect.height)
        p.box(band, book.colour, radius=L.px(8))
        rect = pygame.Rect(band.right + L.gap, rect.top, rect.right - band.right - L.gap, rect.height)
        head_h = p.fonts.line_height(L.size("head"), True)
        lines = 1 if L.landscape or p.fonts.width(f"《{book.title}》", L.size("head"), True) <= rect.width else 2
        title, rest = theme.split_v(rect, head_h * lines, 1, gap=L.gap // 2)
        p.text(title, f"《{book.title}》", "head", theme.INK, bold=True, max_lines=lines)
        meta = [book.author] if book.author else []
        facts = [v.cat.t("find.isbn", isbn=book.isbn)] if book.isbn else []
        if book.clc:
            code = book.clc[:2] if book.clc[:2] == "TP" else book.clc[:1]
            facts.append(f"{class_name(code, v.lang)} {book.clc}")
        small = p.fonts.line_height(L.size("small"))
        for text, size, lh in ((" · ".join(meta), "body", p.fonts.line_height(L.size("body"))),
                               (" · ".join(facts), "small", small)):
            if text:
                line, rest = theme.split_v(rest, lh, 1, gap=L.gap // 4)
                p.text(line, text, size, theme.MUTED, max_lines=1)
        rest = pygame.Rect(rest.left, rest.top + L.gap // 2, rest.width, rest.height - L.gap // 2)
        if book.here:
            rest = Find._here(p, rest, v, book)
        if book.places:
            Find._places(p, rest, v, book)
        elif not book.here:
            Find._nowhere(p, rest, v, f, book, v.cat.t("find.nowhere"))

    @staticmethod
    def _here(p: Painter, rect: pygame.Rect, v: View, book: Book) -> pygame.Rect:
        """A row per door that holds it: where, and a button to borrow from that door. Returns what is left."""
        L = p.L
        for door, copies in book.here[:MAX_HERE]:
            if rect.height < L.target:
                break
            cell, rect = theme.split_v(rect, L.target, 1, gap=L.gap // 2)
            label, button = theme.split_h(cell, 0.5, 0.5, gap=L.gap)
            p.text(label, f"{v.cat.t('find.here', door=door)} · {v.cat.t('find.copies', count=copies)}", "body",
                   theme.GOOD, bold=True, valign="middle", max_lines=2)
            p.button(button, v.cat.t("find.borrow", door=door), f"borrow:{door}", lambda d=door: v.act.choose_found(d),
                     style="primary", size="body")
        return pygame.Rect(rect.left, rect.top + L.gap // 2, rect.width, max(0, rect.height - L.gap // 2))

    @staticmethod
    def _places(p: Painter, rect: pygame.Rect, v: View, book: Book) -> None:
        """The nearest other bookcases that hold it: name and doors, then address and distance."""
        L = p.L
        body_h, small_h = p.fonts.line_height(L.size("body"), True), p.fonts.line_height(L.size("small"))
        intro_key = "find.also" if book.here else "find.elsewhere"
        intro_h = body_h * (1 if p.fonts.width(v.cat.t(intro_key), L.size("body")) <= rect.width else 2)
        if rect.height < intro_h + body_h:
            return
        intro, rest = theme.split_v(rect, intro_h, 1, gap=L.gap // 2)
        p.text(intro, v.cat.t(intro_key), "body", theme.INK, max_lines=2)
        sep = "、" if v.lang == "zh" else ", "
        for place in book.places:
            block = body_h + small_h + L.gap // 2
            if rest.height < body_h:
                break
            cell, rest = theme.split_v(rest, min(block, rest.height), 1, gap=L.gap // 2)
            name_line, addr_line = theme.split_v(cell, body_h, 1)
            key = "find.at_doors" if len(place.doors) > 1 else "find.at"
            doors = sep.join(map(str, place.doors)) or "?"
            p.text(name_line, v.cat.t(key, name=site(place.name), doors=doors), "body", theme.INK, bold=True,
                   max_lines=1)
            detail = " · ".join(x for x in (place.address, distance(v, place.distance_m)) if x)
            if detail and addr_line.height >= small_h:
                p.text(addr_line, detail, "small", theme.MUTED, max_lines=1)

    @staticmethod
    def _nowhere(p: Painter, rect: pygame.Rect, v: View, f: FindView, book: Book | None, text: str) -> None:
        """No bookcase holds it: say so, and how to reserve it (the library's WeChat page as a QR code)."""
        L = p.L
        url = f.reserve_url
        side = min(L.px(QR_PX), rect.height, rect.width // 2)
        if url and side >= L.px(160):
            words, code = theme.split_h(rect, 1, side, gap=L.gap)
            try:
                qr = qr_picture(reserve_link(url, book, f.answer.query if f.answer else ""), side)
                spot = qr.get_rect(topright=code.topright)
                p.surface.blit(qr, spot)
            except ValueError:
                LOGGER.warning("the reserve address %r is too long for a QR code", url)
                words = rect
            reserve = v.cat.t("find.reserve")
        else:
            words, reserve = rect, v.cat.t("find.reserve_desk")
        p.text(words, f"{text}\n{reserve}", "body", theme.INK)
