"""The patron's session: identifying, choosing a door, refused, door open, counting, and the receipt."""

from __future__ import annotations

import logging
import math

import pygame

from kiosk.core.events import Cancel, DoorChosen
from kiosk.ui import theme
from kiosk.ui.painter import Painter
from kiosk.ui.screens.base import Screen, View, footer

LOGGER = logging.getLogger(__name__)

ANIMATION_S = 1 / 15          # animations redraw at 15 frames a second
MAX_DOOR_ROW_PX = 260


def spinner(p: Painter, centre: tuple[int, int], radius: int, now: float) -> None:
    """Twelve dots going round, one bright: "working on it"."""
    lead = int(now * 12) % 12
    for i in range(12):
        angle = 2 * math.pi * i / 12
        x, y = centre[0] + radius * math.sin(angle), centre[1] - radius * math.cos(angle)
        shade = theme.PRIMARY if (lead - i) % 12 < 3 else theme.DISABLED
        pygame.draw.circle(p.surface, shade, (int(x), int(y)), max(4, radius // 7))


def books_progress(p: Painter, rect: pygame.Rect, now: float) -> None:
    """A shelf of book spines lighting up one after another: the reader is counting."""
    n = 9
    gap = max(4, p.L.px(14))
    w = (rect.width - gap * (n - 1)) // n
    lit = int(now * 6) % (n + 3)
    for i in range(n):
        h = rect.height * (0.7 + 0.3 * ((i * 7) % 5) / 4)
        spine = pygame.Rect(rect.left + i * (w + gap), rect.bottom - int(h), w, int(h))
        # Unlit spines keep a dark outline: the shelf stays visible in sunlight before any lights up.
        p.box(spine, theme.PRIMARY if i < lit else theme.SECONDARY, radius=p.L.px(8),
              border=None if i < lit else theme.PRIMARY)


class Identifying(Screen):
    name = "identifying"

    def draw(self, p: Painter, v: View) -> float | None:
        return waiting(p, self.frame(p, v), v, "identifying")


def waiting(p: Painter, body: pygame.Rect, v: View, key: str) -> float:
    """A title, a spinner and a line below it (catalogue ``key.title`` and ``key.body``): for short waits."""
    title, spin, sub = theme.split_v(body, 0.35, 0.3, 0.35, gap=p.L.gap)
    p.text(title, v.cat.t(f"{key}.title"), "title", theme.INK, bold=True, align="center", valign="bottom")
    spinner(p, spin.center, min(spin.height, spin.width) // 3, v.now)
    p.text(sub, v.cat.t(f"{key}.body"), "head", theme.MUTED, align="center")
    return ANIMATION_S


class Choosing(Screen):
    """Welcome, how many more books, and a button for each door."""

    name = "choosing"

    def draw(self, p: Painter, v: View) -> float | None:
        s = v.snap
        body = self.frame(p, v)
        L = p.L
        cancel = [("cancel", v.cat.t("common.cancel"), lambda: v.act.post(Cancel()), "secondary")]
        if L.landscape:                # words and Cancel on the left, the doors on the right
            head, grid_rect = theme.split_h(body, 0.4, 0.6, gap=L.gap * 2)
            head = footer(p, head, cancel)
        else:
            rest = footer(p, body, cancel)
            head, grid_rect = theme.split_v(rest, L.size("title") * 1.4 + L.size("head") * 3.2
                                            + L.size("small") * 1.5, 1, gap=L.gap * 2)
        title, message, countdown = theme.split_v(head, L.size("title") * 1.4, L.size("head") * 3.2,
                                                  L.size("small") * 1.5)
        p.text(title, v.cat.t("choosing.title"), "title", theme.INK, bold=True, max_lines=1)
        p.text(message, v.cat.reason(s.reason, may_borrow=s.may_borrow, limit=s.limit), "head", theme.INK)
        left = v.seconds_left()
        if left is not None:
            p.text(countdown, v.cat.t("choosing.countdown", seconds=left), "small", theme.MUTED, max_lines=1)
        doors = sorted(set(s.doors_in_service) | set(s.doors_out_of_service))
        columns = 3 if len(doors) > 4 else 2
        cells = theme.fit_grid(grid_rect, len(doors), columns, L.target, L.px(MAX_DOOR_ROW_PX), L.gap)
        for cell, door in zip(cells, doors):
            working = door in s.doors_in_service
            p.button(cell, v.cat.t("common.door", door=door), f"door:{door}",
                     (lambda d=door: v.act.post(DoorChosen(d))) if working else None,
                     sub=None if working else v.cat.t("choosing.out"), size="title", enabled=working)
        return v.next_second()


class Refused(Screen):
    """Why not, in the patron's words (kiosk.core.policy.MESSAGES), and what to do next."""

    name = "refused"

    def draw(self, p: Painter, v: View) -> float | None:
        s = v.snap
        body = self.frame(p, v)
        L = p.L
        rest = footer(p, body, [("ok", v.cat.t("common.ok"), lambda: v.act.post(Cancel()), "primary")])
        band, message, countdown = theme.split_v(rest, L.size("title") * 2.2, 1, L.size("small") * 1.5, gap=L.gap * 2)
        p.box(band, theme.DANGER)
        p.text(band.inflate(-2 * L.gap, -L.gap), v.cat.t("refused.title"), "title", theme.WHITE, bold=True,
               align="center", valign="middle")
        p.text(message.inflate(-2 * L.gap, 0), v.cat.reason(s.reason, may_borrow=s.may_borrow, limit=s.limit),
               "title", theme.INK, align="center", valign="middle")
        left = v.seconds_left()
        if left is not None:
            p.text(countdown, v.cat.t("choosing.countdown", seconds=left), "small", theme.MUTED, align="center")
        return v.next_second()


class DoorOpen(Screen):
    """Which door, what to do, how many more books, and "please close the door" when it stays open."""

    name = "door_open"

    def draw(self, p: Painter, v: View) -> float | None:
        s = v.snap
        body = self.frame(p, v)
        L = p.L
        door = s.door if s.door is not None else "?"
        if L.landscape:
            badge_area, rest = theme.split_h(body, 0.32, 0.68, gap=L.gap * 2)
            side = min(badge_area.width, badge_area.height)
        else:
            badge_area, rest = theme.split_v(body, 0.34, 0.66, gap=L.gap * 2)
            side = min(badge_area.width, badge_area.height)
        badge = pygame.Rect(0, 0, side, side)
        badge.center = badge_area.center
        p.box(badge, theme.WARN if s.held_open else theme.PRIMARY, radius=L.px(40))
        p.text(badge.inflate(-L.gap, -L.gap), str(door), int(side * 0.6), theme.INK if s.held_open else theme.WHITE,
               bold=True, align="center", valign="middle", max_lines=1)
        returning = s.kind == "return"
        more_text = None
        if not returning and s.limit:
            more_text = (v.cat.t("door_open.may_borrow", may_borrow=s.may_borrow) if s.may_borrow
                         else v.cat.t("door_open.at_limit"))
        one_line = more_text is None or p.fonts.width(more_text, L.size("head"), True) <= rest.width
        title, alert, what, more, countdown, _ = theme.split_v(
            rest, L.size("title") * 1.4, L.size("title") * 1.4 + L.size("body") * 2.6 + 2 * L.gap if s.held_open else 0,
            0 if s.held_open else L.size("head") * 4.5, L.size("head") * (1.5 if one_line else 3),
            L.size("small") * 1.5, 1, gap=L.gap)
        p.text(title, v.cat.t("door_open.title", door=door), "title", theme.INK, bold=True, max_lines=1)
        if s.held_open:
            p.box(alert, theme.WARN)
            top, sub = theme.split_v(alert.inflate(-2 * L.gap, -2 * L.gap), L.size("title") * 1.4, 1)
            p.text(top, v.cat.t("door_open.close"), "title", theme.INK, bold=True, max_lines=1)
            p.text(sub, v.cat.t("door_open.close_sub"), "body", theme.INK)
        if not s.held_open:
            p.text(what, v.cat.t("door_open.return_take" if returning else "door_open.take"), "head", theme.INK)
        if more_text is not None:
            p.text(more, more_text, "head", theme.GOOD if s.may_borrow else theme.DANGER, bold=True,
                   max_lines=1 if one_line else 2)
        left = v.seconds_left()
        if left is not None:
            p.text(countdown, v.cat.t("door_open.countdown", seconds=left), "small", theme.MUTED, max_lines=1)
        return v.next_second()


class Scanning(Screen):
    name = "scanning"

    def draw(self, p: Painter, v: View) -> float | None:
        body = self.frame(p, v)
        L = p.L
        title, text, shelf, _ = theme.split_v(body, 0.25, 0.25, 0.2, 0.3, gap=L.gap * 2)
        p.text(title, v.cat.t("scanning.title"), "title", theme.INK, bold=True, align="center", valign="bottom")
        p.text(text, v.cat.t("scanning.body", door=v.snap.door if v.snap.door is not None else "?"), "head",
               theme.MUTED, align="center")
        books_progress(p, shelf.inflate(-shelf.width // 6, 0), v.now)
        return ANIMATION_S


class ReceiptScreen(Screen):
    """Each book borrowed with its due date, each book returned; the core goes back to idle by itself."""

    name = "receipt"

    def draw(self, p: Painter, v: View) -> float | None:
        s = v.snap
        r = s.receipt
        body = self.frame(p, v)
        L = p.L
        rest = footer(p, body, [("done", v.cat.t("common.done"), lambda: v.act.post(Cancel()), "primary")])
        if L.landscape:                # the list of books on the right, everything else on the left
            rest, rows_rect = theme.split_h(rest, 0.42, 0.58, gap=L.gap * 2)
        title, thanks, rest = theme.split_v(rest, L.size("title") * 1.4, L.size("head") * 1.5, 1, gap=L.gap)
        # The lock board cannot tell the patron's door's state: say so, not "all done".
        checking = s.reason == "door_checking" and s.door is not None
        p.text(title, v.cat.t("receipt.checking_title", door=s.door) if checking else v.cat.t("receipt.title"),
               "title", theme.INK, bold=True, max_lines=1)
        p.text(thanks, v.cat.t("receipt.thanks"), "head", theme.GOOD, bold=True, max_lines=1)
        notes: list[str] = []
        if checking:
            notes.append(v.cat.t("receipt.checking", door=s.door))
        elif r is None or r.pending:
            notes.append(v.cat.t("receipt.pending"))
        elif not r.borrowed and not r.returned:
            notes.append(v.cat.t("receipt.none"))
        if r is not None and r.uncertain:
            notes.append(v.cat.t("receipt.uncertain", count=r.uncertain))
        left = v.seconds_left()
        bottom_h = L.size("small") * 1.5 if left is not None else 0
        note_h = len(notes) * (L.size("body") * 3 + L.gap)
        if L.landscape:
            notes_rect, countdown = theme.split_v(rest, 1, bottom_h, gap=L.gap)
        else:
            rows_rect, notes_rect, countdown = theme.split_v(rest, 1, note_h, bottom_h, gap=L.gap)
        if r is not None:
            self._rows(p, rows_rect, v)
        for rect, note in zip(theme.split_v(notes_rect, *[1] * len(notes), gap=L.gap) if notes else [], notes):
            p.box(rect, theme.PANEL)
            p.text(rect.inflate(-2 * L.gap, -L.gap), note, "body", theme.INK, valign="middle")
        if left is not None:
            p.text(countdown, v.cat.t("choosing.countdown", seconds=left), "small", theme.MUTED, max_lines=1)
        return v.next_second()

    @staticmethod
    def _rows(p: Painter, rect: pygame.Rect, v: View) -> None:
        L = p.L
        r = v.snap.receipt
        row_h = int(p.fonts.line_height(L.size("body")) * 1.15)
        heading_h = int(p.fonts.line_height(L.size("head")) * 1.2)
        lines: list[tuple[str, str, bool]] = []        # (title or heading, due date, is a heading)
        untitled = v.cat.t("receipt.untitled")
        if r.borrowed:
            lines.append((v.cat.t("receipt.borrowed", count=len(r.borrowed)), "", True))
            lines += [(f"《{title}》" if title else untitled, v.cat.t("receipt.due", date=due), False)
                      for _, title, due in r.borrowed]
        if r.returned:
            lines.append((v.cat.t("receipt.returned", count=len(r.returned)), "", True))
            lines += [(f"《{title}》" if title else untitled, "", False) for _, title in r.returned]
        # The due dates get the width they need (up to half the row); the titles get the rest.
        dues = [due for _, due, heading in lines if due]
        due_w = min(rect.width // 2, max((p.fonts.width(d, L.size("body"), True) for d in dues), default=0))
        heights = [heading_h if heading else row_h for _, _, heading in lines]
        shown = len(lines)
        if sum(heights) > rect.height:          # keep room for a last "and N more" row
            shown = 0
            while shown < len(lines) and sum(heights[:shown + 1]) + row_h <= rect.height:
                shown += 1
        y = rect.top
        for (text, due, heading), h in zip(lines[:shown], heights):
            row = pygame.Rect(rect.left, y, rect.width, h)
            if heading:
                p.text(row, text, "head", theme.HEADER, bold=True, valign="bottom", max_lines=1)
            else:
                name, right = theme.split_h(row, 1, due_w, gap=L.gap) if due else (row, None)
                p.text(name.inflate(-L.gap, 0), text, "body", theme.INK, valign="middle", max_lines=1)
                if right is not None:
                    p.text(right, due, "body", theme.INK, bold=True, align="right", valign="middle", max_lines=1)
            y += h
        if shown < len(lines):
            more = sum(1 for _, _, heading in lines[shown:] if not heading)
            p.text(pygame.Rect(rect.left, y, rect.width, row_h), v.cat.t("receipt.more", count=more), "body",
                   theme.MUTED, valign="middle", max_lines=1)
