"""Pages the patron opens from the attract screen: Help (Find a book is kiosk.ui.screens.find)."""

from __future__ import annotations

import logging


from kiosk.ui import theme
from kiosk.ui.painter import Painter
from kiosk.ui.screens.base import Screen, View, footer

LOGGER = logging.getLogger(__name__)


class Help(Screen):
    """How borrowing works, in four steps, and where to ask."""

    name = "help"

    def draw(self, p: Painter, v: View) -> float | None:
        body = self.frame(p, v)
        L = p.L
        rest = footer(p, body, [("back", v.cat.t("common.back"), lambda: v.act.open_page(None), "secondary")])
        steps, notes = ("step1", "step2", "step3", "step4"), ("return_hint", "desk")
        title, rest = theme.split_v(rest, L.size("title") * 1.5, 1, gap=L.gap)
        p.text(title, v.cat.t("help.title"), "title", theme.INK, bold=True, max_lines=1)
        if L.landscape:                  # the steps on the left, where to ask on the right
            left, right = theme.split_h(rest, 0.6, 0.4, gap=L.gap * 2)
            rows = theme.split_v(left, *[1] * len(steps), gap=L.gap) + theme.split_v(right, 1, 1, gap=L.gap)
        else:
            rows = theme.split_v(rest, *[1] * (len(steps) + len(notes)), gap=L.gap)
        for rect, key in zip(rows, steps + notes):
            if key.startswith("step"):
                p.box(rect, theme.PANEL)
                rect = rect.inflate(-2 * L.gap, -L.gap)
            p.text(rect, v.cat.t(f"help.{key}"), "head" if key.startswith("step") else "body", theme.INK,
                   bold=key.startswith("step"), valign="middle")
        return None
