"""The Find page's on-screen keyboard: pinyin letters a–z, digits, backspace and clear, in big square keys.

Letters come in alphabetical rows (no QWERTY: most patrons here are not typists, and many are elderly), the
digits below them, so nothing is hidden behind a mode key. Seven keys a row: a 1080-pixel-wide screen gets
keys of 126 px, a 1920x1080 one 122 px (six rows in its 806-pixel body). A key is the largest square that fits,
and at most ``theme.Layout.target``; on a screen too small for 120-pixel keys in seven columns (the half-size
540x960 demo window: 63 px, which is 126 px on the real panel it stands for) the keys shrink with the screen
rather than leave letters out.
"""

from __future__ import annotations

import logging
import string
from collections.abc import Callable

import pygame

from kiosk.ui import theme
from kiosk.ui.painter import Painter

LOGGER = logging.getLogger(__name__)

COLUMNS = 7
LETTERS = tuple(string.ascii_lowercase)
DIGITS = tuple("1234567890")
BACK, CLEAR = "back", "clear"
KEPT = 4                   # keyboards whose look is kept (sizes, languages)
_KEPT: dict[tuple, tuple] = {}


def rows(columns: int = COLUMNS) -> list[list[tuple[str, int]]]:
    """The keys row by row, each (key, width in cells): letters then backspace, digits then clear."""
    out: list[list[tuple[str, int]]] = []
    for keys, last in ((LETTERS, BACK), (DIGITS, CLEAR)):
        row: list[tuple[str, int]] = []
        for key in keys:
            if len(row) == columns:
                out.append(row)
                row = []
            row.append((key, 1))
        room = columns - len(row)
        if room < 2:                   # backspace and clear are two cells wide at least
            out.append(row)
            row, room = [], columns
        row.append((last, room))
        out.append(row)
    return out


def key_size(rect: pygame.Rect, L: theme.Layout, columns: int = COLUMNS) -> tuple[int, int]:
    """(key side, gap) for the keyboard in ``rect``: as large as fits, up to the layout's touch target."""
    gap = max(4, L.gap // 2)
    n = len(rows(columns))
    side = min(L.target, (rect.width - gap * (columns - 1)) // columns, (rect.height - gap * (n - 1)) // n)
    return max(1, side), gap


def height(width: int, L: theme.Layout, columns: int = COLUMNS) -> int:
    """How tall the keyboard is when it has ``width`` (and all the height it wants)."""
    side, gap = key_size(pygame.Rect(0, 0, width, 10 ** 6), L, columns)
    n = len(rows(columns))
    return n * side + (n - 1) * gap


def width(available_h: int, L: theme.Layout, columns: int = COLUMNS) -> int:
    """How wide the keyboard is when it has ``available_h`` pixels of height (and all the width it wants)."""
    side, gap = key_size(pygame.Rect(0, 0, 10 ** 6, available_h), L, columns)
    return columns * side + (columns - 1) * gap


def draw(p: Painter, rect: pygame.Rect, labels: dict[str, str], press: Callable[[str], None],
         columns: int = COLUMNS) -> list[pygame.Rect]:
    """Draw the keys at the top of ``rect`` (targets "key:a", "key:1", "key:back", "key:clear"); returns them.

    The keys look the same on every key press; what they look like is kept (``KEPT`` of them) and put back
    in one blit with their texts and targets: a third of the Find page's drawing time per key."""
    kept_as = (p.fonts, p.surface.get_size(), tuple(rect), tuple(sorted(labels.items())), columns)
    kept = _KEPT.get(kept_as)
    if kept is None:
        texts_before = len(p.texts)
        keys = _draw_keys(p, rect, labels, press, columns)
        area = rect.clip(p.surface.get_rect())
        kept = (p.surface.subsurface(area).copy(), area, p.texts[texts_before:], keys)
        _KEPT[kept_as] = kept
        while len(_KEPT) > KEPT:
            del _KEPT[next(iter(_KEPT))]
        return [r for r, _ in keys]
    picture, area, texts, keys = kept
    p.surface.blit(picture, area)
    p.texts.extend(texts)
    for r, key in keys:
        p.target(r, f"key:{key}", lambda k=key: press(k))
    return [r for r, _ in keys]


def _draw_keys(p: Painter, rect: pygame.Rect, labels: dict[str, str], press: Callable[[str], None],
               columns: int) -> list[tuple[pygame.Rect, str]]:
    side, gap = key_size(rect, p.L, columns)
    drawn = []
    y = rect.top
    for row in rows(columns):
        x = rect.left
        for key, cells in row:
            r = pygame.Rect(x, y, cells * side + (cells - 1) * gap, side)
            style = "secondary" if key in (BACK, CLEAR) else "primary"
            size = "head" if len(key) == 1 else "button"
            p.button(r, labels.get(key, key), f"key:{key}", lambda k=key: press(k), style=style, size=size)
            drawn.append((r, key))
            x = r.right + gap
        y += side + gap
    return drawn
