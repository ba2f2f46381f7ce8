"""The playlist's still cards: a book recommendation, a QR code, a picture; their pictures made once and cached."""

from __future__ import annotations

import collections
import logging
from collections.abc import Callable
from pathlib import Path

import pygame
import segno

from kiosk.content.manifest import Item
from kiosk.ui import theme
from kiosk.ui.painter import Painter
from kiosk.ui.screens.base import View
from kiosk.ui.text import tokens, wrap

LOGGER = logging.getLogger(__name__)

ACCENT_PX = 16              # the coloured bar down the left of a card, as on the built-in fact cards
QR_BORDER = 4               # quiet zone, in modules (ISO/IEC 18004 asks for four)
QR_SHARE = 0.45             # of the card's inner width, at most
COVER_ASPECT = 2 / 3        # a book cover's width to height
COVER_SHARE = 0.34          # of the card's inner width, at most
CACHE_SURFACES = 8          # a picture the size of the region is about 2.3 MB
DARK, LIGHT = (0, 0, 0), (255, 255, 255)


class Pictures:
    """Scaled surfaces by key (what, size): made once, the least recently used forgotten beyond ``limit``."""

    def __init__(self, limit: int = CACHE_SURFACES) -> None:
        self.limit = limit
        self._found: collections.OrderedDict[tuple, pygame.Surface] = collections.OrderedDict()

    def get(self, key: tuple, make: Callable[[], pygame.Surface]) -> pygame.Surface:
        if key in self._found:
            self._found.move_to_end(key)
            return self._found[key]
        surface = self._found[key] = make()
        while len(self._found) > self.limit:
            self._found.popitem(last=False)
        return surface

    def clear(self) -> None:
        self._found.clear()


# --- pictures ------------------------------------------------------------------------------------

def fitted(size: tuple[int, int], box: pygame.Rect) -> pygame.Rect:
    """The largest rect of ``size``'s aspect ratio centred in ``box``."""
    w, h = size
    scale = min(box.width / max(1, w), box.height / max(1, h))
    r = pygame.Rect(0, 0, max(1, int(w * scale)), max(1, int(h * scale)))
    r.center = box.center
    return r


def load_picture(path: Path, name: str, box: tuple[int, int]) -> pygame.Surface:
    """The PNG or JPEG at ``path`` (``name`` says its type: the file is named by its hash), scaled to fit
    ``box``. Raises pygame.error or OSError for a file that is not a picture."""
    with open(path, "rb") as f:
        image = pygame.image.load(f, name)
    if pygame.display.get_surface() is not None:
        image = image.convert_alpha() if image.get_flags() & pygame.SRCALPHA else image.convert()
    size = fitted(image.get_size(), pygame.Rect((0, 0), box)).size
    try:
        return pygame.transform.smoothscale(image, size)
    except ValueError:                         # an 8-bit palette picture: smoothscale wants 24 or 32 bits
        return pygame.transform.scale(image, size)


def qr_picture(url: str, side: int) -> pygame.Surface:
    """``url`` as a QR code (error correction M), dark on white with its quiet zone, at most ``side`` pixels
    square, every module the same whole number of pixels. Raises ValueError if ``url`` is too long."""
    code = segno.make(url, error="m", micro=False)
    n = len(code.matrix) + 2 * QR_BORDER
    module = max(1, side // n)
    surface = pygame.Surface((n * module, n * module))
    surface.fill(LIGHT)
    for y, row in enumerate(code.matrix):
        for x, dark in enumerate(row):
            if dark:
                surface.fill(DARK, pygame.Rect((x + QR_BORDER) * module, (y + QR_BORDER) * module, module, module))
    return surface


# --- cards ---------------------------------------------------------------------------------------

def inner(L: theme.Layout, rect: pygame.Rect) -> pygame.Rect:
    """A card's rect inside its padding (clear of the accent bar)."""
    pad = L.gap + L.px(ACCENT_PX)
    return pygame.Rect(rect.left + pad, rect.top + L.gap, rect.width - pad - L.gap, rect.height - 2 * L.gap)


def panel(p: Painter, rect: pygame.Rect) -> pygame.Rect:
    """The card's background (as the built-in fact cards); returns the rect inside its padding."""
    L = p.L
    p.box(rect, theme.PANEL)
    pygame.draw.rect(p.surface, theme.PRIMARY, pygame.Rect(rect.left, rect.top, L.px(ACCENT_PX), rect.height),
                     border_top_left_radius=L.px(20), border_bottom_left_radius=L.px(20))
    return inner(L, rect)


def book_boxes(L: theme.Layout, rect: pygame.Rect) -> tuple[pygame.Rect, pygame.Rect]:
    """(cover, text column) of a book card in ``rect``."""
    box = inner(L, rect)
    w = int(min(box.height * COVER_ASPECT, box.width * COVER_SHARE))
    cover, column = theme.split_h(box, w, 1, gap=L.gap)
    return cover, column


def qr_side(L: theme.Layout, rect: pygame.Rect) -> int:
    """The side of a QR card's code (its quiet zone included)."""
    box = inner(L, rect)
    return max(1, int(min(box.height, box.width * QR_SHARE)))


def word_size(p: Painter, text: str, width: int, size: int | str, bold: bool = False) -> int:
    """``size``, or smaller until the widest word of ``text`` fits ``width`` (a word is never broken in two)."""
    px = p.L.size(size) if isinstance(size, str) else size
    units = [u for u in tokens(text) if u != " "]
    while px > p.L.min_text and units and max(p.fonts.width(u, px, bold) for u in units) > width:
        px -= 1
    return px


def words(p: Painter, box: pygame.Rect, text: str, size: int | str, color: tuple[int, int, int], *,
          bold: bool = False, **kw) -> None:
    """``p.text`` at a size where no word has to be broken."""
    p.text(box, text, word_size(p, text, box.width, size, bold), color, bold=bold, **kw)


def stack(p: Painter, column: pygame.Rect, parts: list[tuple[str, int | str, tuple[int, int, int], bool]], *,
          foot: bool = False) -> None:
    """Texts one under another in ``column``, each given the height its lines need (an English sentence needs
    more than its Chinese), all shrunk together, down to the type floor, until they fit; never a word broken.
    With ``foot`` the last text sits at the bottom of the column."""
    parts = [part for part in parts if part[0]]
    if not parts:
        return
    L, fonts, gap = p.L, p.fonts, p.L.gap // 2
    sizes = [word_size(p, text, column.width, size, bold) for text, size, _, bold in parts]

    def heights() -> list[int]:
        return [len(wrap(text, column.width, lambda t, z=z, b=bold: fonts.width(t, z, b))) * fonts.line_height(z, bold)
                for (text, _, _, bold), z in zip(parts, sizes)]

    need = heights()
    while sum(need) + gap * (len(parts) - 1) > column.height and any(z > L.min_text for z in sizes):
        sizes = [max(L.min_text, min(z - 1, int(z * 0.94))) for z in sizes]
        need = heights()
    spare = max(0, column.height - sum(need) - gap * (len(parts) - 1))
    y = column.top
    for n, ((text, _, ink, bold), z, h) in enumerate(zip(parts, sizes, need)):
        if foot and n == len(parts) - 1:
            y += spare
        box = pygame.Rect(column.left, y, column.width, min(h, column.bottom - y))
        p.text(box, text, z, ink, bold=bold, valign="top", min_size=L.min_text)
        y += h + gap


def draw_book(p: Painter, rect: pygame.Rect, item: Item, v: View, cover: pygame.Surface | None) -> None:
    """A recommendation: cover (or a coloured placeholder with the title), title, author, why, where."""
    panel(p, rect)
    L = p.L
    cover_box, column = book_boxes(L, rect)
    title = item.text("title", v.lang)
    if cover is not None:
        p.surface.blit(cover, cover.get_rect(center=cover_box.center))
    else:
        p.box(cover_box, theme.PRIMARY)
        pad = L.px(16)
        words(p, cover_box.inflate(-2 * pad, -2 * pad), title, "head", theme.WHITE, bold=True, align="center",
              valign="middle")
    where = item.text("where", v.lang)
    stack(p, column, [(title, "head", theme.HEADER, True), (item.text("author", v.lang), "small", theme.MUTED, False),
                      (item.text("why", v.lang), "small", theme.INK, False),
                      (v.cat.t("promo.book_where", where=where) if where else "", "body", theme.PRIMARY, True)])


def draw_qr(p: Painter, rect: pygame.Rect, item: Item, v: View, code: pygame.Surface) -> None:
    """A QR card: the code (big enough to scan from a metre away), title, body, and what to do with it."""
    box = panel(p, rect)
    L = p.L
    side = qr_side(L, rect)
    code_box, column = theme.split_h(box, side, 1, gap=L.gap)
    p.surface.blit(code, code.get_rect(center=code_box.center))
    caption = item.text("caption", v.lang) or v.cat.t("promo.qr_scan")
    stack(p, column, [(item.text("title", v.lang), "head", theme.HEADER, True),
                      (item.text("body", v.lang), "body", theme.INK, False), (caption, "small", theme.MUTED, True)],
          foot=True)


def draw_picture(p: Painter, rect: pygame.Rect, picture: pygame.Surface) -> None:
    """A picture item: scaled to fit, centred on the card's background."""
    p.box(rect, theme.PANEL)
    p.surface.blit(picture, picture.get_rect(center=rect.center))
