"""What every screen gets (the View), the Screen base class, and the header they share."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Protocol

import pygame

from kiosk.core.events import Event
from kiosk.core.snapshot import Snapshot
from kiosk.ui import theme
from kiosk.ui.i18n import Catalogue
from kiosk.ui.painter import Painter

LOGGER = logging.getLogger(__name__)


class Actions(Protocol):
    """What a touch may do: post an intent to the core, or change what the screen shows."""

    def post(self, event: Event) -> None: ...
    def toggle_lang(self) -> None: ...
    def open_page(self, page: str | None) -> None: ...
    def find(self, title: str) -> None: ...
    def choose_found(self, door: int) -> None: ...
    def find_key(self, key: str) -> None: ...
    def find_back(self) -> None: ...
    def find_browse(self, shelf: str) -> None: ...
    def find_open(self, index: int) -> None: ...
    def find_page(self, delta: int, per_page: int) -> None: ...
    def pin_key(self, key: str) -> None: ...
    def say(self, prompt: str) -> None: ...


@dataclass(frozen=True)
class Found:
    """The answer of a title search: rows of (item_id, title, author, door), or an error."""
    query: str
    rows: tuple[dict, ...] = ()
    error: bool = False


@dataclass(frozen=True)
class View:
    """Everything a screen draws from: the core's snapshot plus what the screen itself remembers."""
    snap: Snapshot
    cat: Catalogue
    act: Actions
    now: float
    bookcase_name: str = ""
    page: str | None = None
    found: Found | None = None
    pin: str = ""
    chosen: int | None = None
    recommended: tuple[str, ...] = field(default_factory=tuple)
    finding: object | None = None        # the Find page's state (kiosk.ui.screens.find_state.FindView)

    @property
    def lang(self) -> str:
        return self.cat.lang

    def seconds_left(self) -> int | None:
        if self.snap.until is None:
            return None
        return max(0, math.ceil(self.snap.until - self.now))

    def next_second(self) -> float | None:
        """Seconds until a countdown on screen changes."""
        if self.snap.until is None:
            return None
        left = self.snap.until - self.now
        return max(0.02, left - math.floor(left)) if left > 0 else None


class Screen:
    """A screen draws one moment of the session; ``draw`` returns when it next needs a redraw (or None)."""

    name = "screen"
    header = True          # the header with the bookcase's name and the language button

    def draw(self, p: Painter, v: View) -> float | None:
        raise NotImplementedError

    def frame(self, p: Painter, v: View, *, lang_button: bool = True) -> pygame.Rect:
        """Background and header; returns the body rect."""
        p.fill(theme.BG)
        L = p.L
        head = pygame.Rect(0, 0, L.w, L.header_h)
        p.box(head, theme.HEADER, radius=0)
        pad = L.px(18)
        right = head.right - L.margin
        if lang_button:
            w = max(L.target, L.px(260))
            b = pygame.Rect(right - w, head.top + (head.height - L.target) // 2, w, L.target)
            p.button(b, v.cat.t("common.lang_switch"), "lang", v.act.toggle_lang, style="header", size="button")
            right = b.left - L.gap
        text = pygame.Rect(L.margin, head.top + pad, right - L.margin, head.height - 2 * pad)
        top, bottom = theme.split_v(text, 0.55, 0.45)
        brand = f"{v.cat.t('common.brand')} · {v.cat.t('common.library')}"
        if p.fonts.width(brand, L.size("head"), True) > top.width:
            brand = v.cat.t("common.brand")           # the bookcase's name below names the library anyway
        p.text(top, brand, "head", theme.WHITE, bold=True, valign="bottom", max_lines=1)
        p.text(bottom, v.bookcase_name, "small", theme.WHITE, valign="top", max_lines=1)
        body = L.body()
        if v.snap.offline:                 # a strip under the header: the bookcase works offline
            strip = pygame.Rect(0, head.bottom, L.w, int(p.fonts.line_height(L.size("small")) * 1.3))
            p.box(strip, theme.WARN, radius=0)
            p.text(strip.inflate(-2 * L.margin, 0), v.cat.t("common.offline"), "small", theme.INK, bold=True,
                   align="center", valign="middle", max_lines=1)
            body.top, body.height = strip.bottom + L.gap, body.bottom - strip.bottom - L.gap
        return body


def footer(p: Painter, body: pygame.Rect, buttons: list[tuple[str, str, object, str]]) -> pygame.Rect:
    """A row of buttons (key, label, action, style) along the bottom of ``body``; returns what is left above."""
    L = p.L
    row = pygame.Rect(body.left, body.bottom - L.target, body.width, L.target)
    for rect, (key, label, action, style) in zip(theme.split_h(row, *[1] * len(buttons), gap=L.gap), buttons):
        p.button(rect, label, key, action, style=style)
    return pygame.Rect(body.left, body.top, body.width, row.top - L.gap - body.top)


def earliest(*delays: float | None) -> float | None:
    """The soonest of several redraw delays (None: no need)."""
    known = [d for d in delays if d is not None]
    return min(known) if known else None
