"""The attract screen: the promotional region, "tap your card", and Return books / Find a book / Help."""

from __future__ import annotations

import logging

import pygame

from kiosk.core.events import ReturnStart
from kiosk.ui import theme
from kiosk.ui.painter import Painter
from kiosk.ui.screens.base import Screen, View, earliest
from kiosk.ui.screens.promo import FactCards, Promo

LOGGER = logging.getLogger(__name__)

PROMPT_PX = 120          # "tap your card": the biggest words on the idle screen


class Attract(Screen):
    """Idle: what the library wants to show, and what to do to borrow or return."""

    name = "attract"

    def __init__(self, promo: Promo | None = None) -> None:
        self.promo: Promo = promo or FactCards()

    def draw(self, p: Painter, v: View) -> float | None:
        body = self.frame(p, v)
        L = p.L
        # Any touch that is not a button: someone is at the screen; tell them how to start.
        p.backdrop("background", lambda: v.act.say("tap_card"))
        if L.landscape:
            main, buttons = theme.split_v(body, 1, L.target, gap=L.gap)
            promo, side = theme.split_h(main, 0.55, 0.45, gap=L.gap * 2)
            prompt, note = theme.split_v(side, 1, L.target, gap=L.gap)
            cells = theme.grid(buttons, 4, 4, L.target, L.gap)
        else:
            promo, prompt, note, buttons = theme.split_v(body, 0.55, 0.45, L.target, 2 * L.target + L.gap,
                                                        gap=L.gap)
            cells = theme.grid(buttons, 4, 2, L.target, L.gap)
        delay = self.promo.draw(p, promo, v)
        title, sub = theme.split_v(prompt, 0.55, 0.45, gap=L.gap // 2)
        p.text(title, v.cat.t("attract.prompt"), L.px(PROMPT_PX), theme.INK, bold=True, align="center",
               valign="bottom")
        p.text(sub, v.cat.t("attract.prompt_sub"), "body", theme.MUTED, align="center", valign="top")
        self._note(p, note, v)
        p.button(cells[0], v.cat.t("attract.return"), "return", lambda: v.act.post(ReturnStart()), style="primary")
        p.button(cells[1], v.cat.t("attract.find"), "find", lambda: v.act.open_page("find"), style="secondary")
        p.button(cells[2], v.cat.t("attract.help"), "help", lambda: v.act.open_page("help"), style="secondary")
        p.button(cells[3], v.cat.t("common.lang_switch"), "lang2", v.act.toggle_lang, style="secondary")
        return earliest(delay)

    def update(self, p: Painter, v: View) -> tuple[list[pygame.Rect], float | None] | None:
        """Between full draws only the promotional region moves (see Promo); None: draw the whole screen."""
        update = getattr(self.promo, "update", None)
        return update(p, v) if update is not None else None

    def pause(self) -> None:
        """The screen is off or another screen is up: the promotional region stops (a video stops decoding)."""
        pause = getattr(self.promo, "pause", None)
        if pause is not None:
            pause()

    def close(self) -> None:
        close = getattr(self.promo, "close", None)
        if close is not None:
            close()

    @staticmethod
    def _note(p: Painter, rect: pygame.Rect, v: View) -> None:
        """A chosen door waiting for a card, or the doors that are out of service."""
        if v.chosen is not None:
            text, fill, ink = v.cat.t("attract.chosen", door=v.chosen), theme.WARN, theme.INK
        elif v.snap.doors_out_of_service:
            text, fill, ink = (v.cat.t("attract.doors_out", doors=v.cat.doors(v.snap.doors_out_of_service)),
                               theme.PANEL, theme.INK)
        else:
            return
        p.box(rect, fill)
        pad = p.L.px(20)
        p.text(rect.inflate(-2 * pad, -pad), text, "body", ink, bold=True, align="center", valign="middle")
