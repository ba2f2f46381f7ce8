"""Pages the patron opens from the attract screen: Find a book (recommended titles) and Help."""

from __future__ import annotations

import logging
from collections import Counter

import pygame

from kiosk.ui import theme
from kiosk.ui.painter import Painter
from kiosk.ui.screens.base import Screen, View, footer

LOGGER = logging.getLogger(__name__)

MAX_TITLES = 8
MAX_DOORS = 3


class Find(Screen):
    """A few recommended titles as buttons; tapping one shows which doors hold it (no keyboard)."""

    name = "find"

    def draw(self, p: Painter, v: View) -> float | None:
        body = self.frame(p, v)
        L = p.L
        rest = footer(p, body, [("back", v.cat.t("common.back"), lambda: v.act.open_page(None), "secondary")])
        head, rest = theme.split_v(rest, L.size("title") * 1.4 + L.size("body") * 1.5, 1, gap=L.gap)
        title, hint = theme.split_v(head, 0.55, 0.45)
        p.text(title, v.cat.t("find.title"), "title", theme.INK, bold=True, max_lines=1)
        p.text(hint, v.cat.t("find.hint"), "body", theme.MUTED, max_lines=1)
        titles = v.recommended[:MAX_TITLES if L.landscape else MAX_TITLES - 2]
        columns = 4 if L.landscape else 2
        rows = -(-len(titles) // columns)
        if L.landscape:
            buttons, results = theme.split_h(rest, 0.62, 0.38, gap=L.gap * 2)
            columns = 2
        else:                            # whole rows of titles, leaving the answer room for a few lines
            answer_h = int(L.size("head") * 1.5) + p.fonts.line_height(L.size("body")) * 2 + 3 * L.gap
            room = rest.height - answer_h - 2 * L.gap
            rows = min(rows, max(1, (room + L.gap) // (L.target + L.gap)))
            buttons, results = theme.split_v(rest, rows * L.target + (rows - 1) * L.gap, 1, gap=L.gap * 2)
        titles = titles[:columns * max(1, (buttons.height + L.gap) // (L.target + L.gap))]
        for cell, t in zip(theme.grid(buttons, len(titles), columns, L.target, L.gap), titles):
            chosen = v.found is not None and v.found.query == t
            p.button(cell, f"《{t}》", f"title:{t}", lambda t=t: v.act.find(t),
                     style="primary" if chosen else "secondary", size="body")
        if v.found is not None:
            self._results(p, results, v)
        return None

    @staticmethod
    def _results(p: Painter, rect: pygame.Rect, v: View) -> None:
        L = p.L
        found = v.found
        p.box(rect, theme.PANEL)
        inner = rect.inflate(-2 * L.gap, -2 * L.gap)
        head, rest = theme.split_v(inner, L.size("head") * 1.5, 1, gap=L.gap)
        p.text(head, f"《{found.query}》", "head", theme.INK, bold=True, max_lines=1)
        if found.error or not found.rows:
            p.text(rest, v.cat.t("find.error" if found.error else "find.none"), "body", theme.INK)
            return
        if found.rows[0].get("bookcase"):
            Find._elsewhere(p, rest, v)
            return
        copies = Counter(row["door"] for row in found.rows)
        author = next((row["author"] for row in found.rows if row.get("author")), "")
        if author:
            line, rest = theme.split_v(rest, L.size("body") * 1.5, 1, gap=L.gap // 2)
            p.text(line, author, "body", theme.MUTED, max_lines=1)
        fit = max(0, min(MAX_DOORS, (rest.height + L.gap) // (L.target + L.gap)))
        for cell, (door, count) in zip(theme.grid(rest, fit, 1, L.target, L.gap), sorted(copies.items())):
            label, button = theme.split_h(cell, 0.5, 0.5, gap=L.gap)
            p.text(label, f"{v.cat.t('find.here', door=door)} · {v.cat.t('find.copies', count=count)}", "body",
                   theme.INK, bold=True, valign="middle")
            p.button(button, v.cat.t("find.borrow", door=door), f"borrow:{door}",
                     lambda d=door: v.act.choose_found(d), style="primary", size="body")


    @staticmethod
    def _elsewhere(p: Painter, rect: pygame.Rect, v: View) -> None:
        """Not here, but at other bookcases of the fleet: which ones, and behind which door."""
        L = p.L
        line_h = p.fonts.line_height(L.size("body"))
        intro, rest = theme.split_v(rect, min(line_h * 2 + L.gap, rect.height // 2), 1, gap=L.gap)
        p.text(intro, v.cat.t("find.elsewhere"), "body", theme.INK, max_lines=2)
        places: dict[str, tuple[str, list[int]]] = {}
        for row in v.found.rows:
            name, doors = places.setdefault(row["bookcase"], (_site(row.get("name") or row["bookcase"]), []))
            if row["door"] not in doors:
                doors.append(row["door"])
        row_h = int(line_h * 1.25)
        fit = max(0, min(MAX_DOORS, len(places), (rest.height + L.gap) // (row_h + L.gap)))
        if not fit and places and rest.height >= p.fonts.line_height(L.min_text):
            fit, row_h = 1, rest.height          # a short panel (landscape): the nearest one, in smaller type
        for i, (name, doors) in enumerate(list(places.values())[:fit]):
            listed = ("、" if v.lang == "zh" else ", ").join(map(str, sorted(doors)))
            cell = pygame.Rect(rest.left, rest.top + i * (row_h + L.gap), rest.width, row_h)
            key = "find.at_doors" if len(doors) > 1 else "find.at"
            p.text(cell, v.cat.t(key, name=name, doors=listed), "body", theme.INK, bold=True, max_lines=1)


def _site(name: str) -> str:
    """"闵行区图书馆城市书柜 · 七宝镇万科城市花园" -> "七宝镇万科城市花园": the part a patron walks to."""
    return name.rsplit("·", 1)[-1].strip() or name


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
