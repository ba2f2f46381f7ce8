"""Colours, type sizes and the layout grid: large type and high contrast, readable in the street."""

from __future__ import annotations

import logging

import pygame

LOGGER = logging.getLogger(__name__)

# Dark ink on white reads best in sunlight; every colour pair below has a contrast ratio of 7:1 or more.
WHITE = (255, 255, 255)
BG = (255, 255, 255)
INK = (17, 17, 17)
MUTED = (55, 55, 55)
HEADER = (10, 58, 130)
PRIMARY = (11, 79, 156)
SECONDARY = (226, 233, 244)
PANEL = (241, 244, 248)
WARN = (255, 200, 0)
DANGER = (170, 30, 25)
GOOD = (18, 100, 52)
DISABLED = (205, 205, 205)
DISABLED_INK = (40, 40, 40)

# Button styles: (fill, text, border).
STYLES = {
    "primary": (PRIMARY, WHITE, None),
    "secondary": (SECONDARY, INK, PRIMARY),
    "danger": (DANGER, WHITE, None),
    "warn": (WARN, INK, None),
    "good": (GOOD, WHITE, None),
    "header": (WHITE, HEADER, None),
    "disabled": (DISABLED, DISABLED_INK, None),
}

# Type sizes in pixels on a 1080-pixel-wide portrait screen (about 0.37 mm a pixel on a 32" panel):
# the smallest, 34 px, is a 9 mm line, readable at arm's length with reading glasses.
SIZES = {"huge": 200, "title": 92, "head": 68, "body": 52, "button": 60, "small": 40, "min": 34}
MIN_TARGET_PX = 120          # every touch target, both ways
FLOOR_PX = 14                # type never shrinks below this, even in a small demo window


class Layout:
    """Sizes for one surface: everything scales with the short side (1080 px = 1.0)."""

    def __init__(self, width: int, height: int) -> None:
        self.w, self.h = width, height
        self.s = min(width, height) / 1080
        self.landscape = width > height
        self.margin = self.px(56)
        self.gap = self.px(28)
        self.target = max(MIN_TARGET_PX, self.px(150))
        self.header_h = max(self.target + 2 * self.px(18), self.px(190))

    def px(self, value: float) -> int:
        return round(value * self.s)

    def size(self, name: str) -> int:
        return max(FLOOR_PX, self.px(SIZES[name]))

    @property
    def min_text(self) -> int:
        return self.size("min")

    def body(self) -> pygame.Rect:
        """Below the header, inside the margins."""
        return pygame.Rect(self.margin, self.header_h + self.gap, self.w - 2 * self.margin,
                           self.h - self.header_h - self.gap - self.margin)


def _cut(length: int, sizes: tuple[float, ...], gap: int) -> list[tuple[int, int]]:
    """(offset, length) of each part of ``length``; a size <= 1 is a share of what the fixed sizes leave."""
    fixed = sum(n for n in sizes if n > 1) + gap * (len(sizes) - 1)
    rest = max(0, length - fixed)
    shares = sum(n for n in sizes if n <= 1) or 1
    out, at = [], 0
    for n in sizes:
        nn = int(n if n > 1 else rest * n / shares)
        out.append((at, nn))
        at += nn + gap
    return out


def split_v(rect: pygame.Rect, *heights: float, gap: int = 0) -> list[pygame.Rect]:
    """Cut ``rect`` top to bottom; a height <= 1 is a share of what the fixed heights leave."""
    return [pygame.Rect(rect.left, rect.top + y, rect.width, h) for y, h in _cut(rect.height, heights, gap)]


def split_h(rect: pygame.Rect, *widths: float, gap: int = 0) -> list[pygame.Rect]:
    """Cut ``rect`` left to right; a width <= 1 is a share of what the fixed widths leave."""
    return [pygame.Rect(rect.left + x, rect.top, w, rect.height) for x, w in _cut(rect.width, widths, gap)]


def grid(rect: pygame.Rect, count: int, columns: int, row_h: int, gap: int) -> list[pygame.Rect]:
    """``count`` cells, ``columns`` a row, each ``row_h`` high, from the top of ``rect``."""
    columns = max(1, columns)
    cell_w = (rect.width - gap * (columns - 1)) // columns
    return [pygame.Rect(rect.left + (i % columns) * (cell_w + gap), rect.top + (i // columns) * (row_h + gap),
                        cell_w, row_h) for i in range(count)]


def fit_grid(rect: pygame.Rect, count: int, columns: int, min_h: int, max_h: int, gap: int) -> list[pygame.Rect]:
    """``count`` cells in ``rect``: at least ``columns`` a row, more if the rows would not fit otherwise;
    each row between ``min_h`` and ``max_h`` high."""
    columns = max(1, min(columns, count or 1))
    while columns < count and -(-count // columns) * (min_h + gap) - gap > rect.height:
        columns += 1
    rows = max(1, -(-count // columns))
    row_h = max(min_h, min(max_h, (rect.height - gap * (rows - 1)) // rows))
    return grid(rect, count, columns, row_h, gap)
