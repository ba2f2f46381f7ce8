"""Screens when the bookcase cannot serve: starting up, out of service, and the plain fallback."""

from __future__ import annotations

import logging

import pygame

from kiosk.ui import theme
from kiosk.ui.painter import Painter
from kiosk.ui.screens.base import Screen, View
from kiosk.ui.screens.session import waiting

LOGGER = logging.getLogger(__name__)


class Starting(Screen):
    name = "starting"

    def draw(self, p: Painter, v: View) -> float | None:
        return waiting(p, self.frame(p, v), v, "starting")


class OutOfService(Screen):
    """No door can work: say so, point to the next bookcase, list any door that still works."""

    name = "out_of_service"

    def draw(self, p: Painter, v: View) -> float | None:
        s = v.snap
        body = self.frame(p, v)
        L = p.L
        band, text, doors, staff = theme.split_v(body, L.size("title") * 2.2, 0.45, 0.3, 0.25, gap=L.gap * 2)
        p.box(band, theme.WARN)
        p.text(band.inflate(-2 * L.gap, -L.gap), v.cat.t("out_of_service.title"), "title", theme.INK, bold=True,
               align="center", valign="middle")
        p.text(text, v.cat.t("out_of_service.body"), "title", theme.INK, align="center", valign="middle")
        working = (v.cat.t("out_of_service.working", doors=v.cat.doors(s.doors_in_service)) if s.doors_in_service
                   else v.cat.t("out_of_service.none_working"))
        p.text(doors, working, "head", theme.INK, bold=True, align="center", valign="middle")
        p.text(staff, v.cat.t("out_of_service.staff"), "body", theme.MUTED, align="center", valign="top")
        return None


class Fallback(Screen):
    """Shown when drawing a screen failed: as little as possible that can go wrong."""

    name = "fallback"
    header = False

    def draw(self, p: Painter, v: View) -> float | None:
        p.fill(theme.BG)
        L = p.L
        title, body = theme.split_v(pygame.Rect(0, 0, L.w, L.h).inflate(-2 * L.margin, -2 * L.margin), 0.5, 0.5,
                                    gap=L.gap)
        p.text(title, v.cat.t("fallback.title"), "title", theme.INK, bold=True, align="center", valign="bottom")
        p.text(body, v.cat.t("fallback.body"), "head", theme.MUTED, align="center", valign="top")
        return 1.0
