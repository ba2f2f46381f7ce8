"""The attract screen's promotional region: what fills it (``Promo``) and the built-in cards of library facts.

The region is a rect on the attract screen; whatever fills it implements ``Promo``. The library's signed
playlist (kiosk.ui.screens.playlist) plays there, and falls back to these cards when it has nothing to play.
"""

from __future__ import annotations

import logging
from typing import Protocol

import pygame

from kiosk.ui import theme
from kiosk.ui.painter import Painter
from kiosk.ui.screens.base import View

LOGGER = logging.getLogger(__name__)

CARD_S = 8.0

# From the library's short-video book recommendations (docs/design.md §11); content sync will replace them.
RECOMMENDED_TITLES = ("高考1978", "我心归处是敦煌", "杂草记", "思君令人老，努力加餐饭", "端午", "百年沪闵路",
                      "上海闵行红色地图", "去北极，在冰川消失前", "数学的故事", "开罗埃及博物馆", "咕咚来了",
                      "DK蘑菇大百科")

CARDS = ("recommend", "anywhere", "digital", "wechat", "programmes", "legal")


class Promo(Protocol):
    """Fills the region. It may also have, and the attract screen then uses:

    - ``update(p, v) -> (list[pygame.Rect], float | None) | None``: move on between full draws by changing
      only pixels inside the rect of the last ``draw`` (a video's next frame); returns the rects changed and
      the seconds until the next update, or None when the region needs a full ``draw``;
    - ``pause()``: the region is off screen (the screen blanked, or another screen up) until the next draw;
    - ``close()``: release what it holds (decoder threads); a later draw may start again.
    """

    def draw(self, p: Painter, rect: pygame.Rect, v: View) -> float | None:
        """Fill ``rect``; return seconds until the next frame is needed (None: only on change)."""


class FactCards:
    """One card at a time, each for ``CARD_S`` seconds, with dots showing where in the round it is."""

    def __init__(self, cards: tuple[str, ...] = CARDS, card_s: float = CARD_S) -> None:
        self.cards = cards
        self.card_s = card_s

    def index(self, now: float) -> int:
        return int(now // self.card_s) % len(self.cards)

    def draw(self, p: Painter, rect: pygame.Rect, v: View) -> float | None:
        L = p.L
        card = self.cards[self.index(v.now)]
        p.box(rect, theme.PANEL)
        pygame.draw.rect(p.surface, theme.PRIMARY, pygame.Rect(rect.left, rect.top, L.px(16), rect.height),
                         border_top_left_radius=L.px(20), border_bottom_left_radius=L.px(20))
        inner = rect.inflate(-2 * L.margin, -2 * L.margin)
        dots_h = L.px(30)
        title, body, _, dots = theme.split_v(inner, L.size("title") * 1.5, 1, L.gap, dots_h)
        p.text(title, v.cat.t(f"promo.{card}_title"), "title", theme.HEADER, bold=True, valign="top", max_lines=1)
        p.text(body, v.cat.t(f"promo.{card}_body"), "head", theme.INK)
        r = dots_h // 2
        for i in range(len(self.cards)):
            centre = (dots.left + r + i * 3 * r, dots.centery)
            pygame.draw.circle(p.surface, theme.PRIMARY if i == self.index(v.now) else theme.DISABLED, centre, r)
        return self.card_s - (v.now % self.card_s)
