"""Staff screens: the PIN keypad, restocking (doors open, counting, what each count found), diagnostics."""

from __future__ import annotations

import logging

import pygame

from kiosk.core.events import Cancel
from kiosk.ui import theme
from kiosk.ui.painter import Painter
from kiosk.ui.screens.base import Screen, View, footer

LOGGER = logging.getLogger(__name__)

KEYS = ("1", "2", "3", "4", "5", "6", "7", "8", "9", "clear", "0", "enter")


class StaffPin(Screen):
    """A keypad; the digits stay on this screen until Enter posts them as one PinEntered."""

    name = "staff_pin"

    def draw(self, p: Painter, v: View) -> float | None:
        s = v.snap
        body = self.frame(p, v, lang_button=False)
        L = p.L
        cancel = [("cancel", v.cat.t("common.cancel"), lambda: v.act.post(Cancel()), "secondary")]
        digits = max(len(v.pin), s.staff.pin_digits if s.staff else 0)
        error = bool(s.staff and s.staff.pin_error and not v.pin)
        if L.landscape:
            info, pad = theme.split_h(body, 0.45, 0.55, gap=L.gap * 2)
            info = footer(p, info, cancel)
        else:
            rest = footer(p, body, cancel)
            info_h = L.size("title") * 1.4 + L.size("head") * 1.5 + L.px(150) + L.size("body") * 1.5
            info, pad = theme.split_v(rest, info_h, 1, gap=L.gap * 2)
        title, prompt, dots, err = theme.split_v(info, L.size("title") * 1.4, L.size("head") * 1.5, L.px(150),
                                                 L.size("body") * 1.5, gap=0)
        p.text(title, v.cat.t("staff.pin_title"), "title", theme.INK, bold=True, max_lines=1)
        p.text(prompt, v.cat.t("staff.pin_prompt"), "head", theme.MUTED, max_lines=1)
        r = min(dots.height // 3, L.px(30))
        for i in range(max(4, digits)):
            pygame.draw.circle(p.surface, theme.INK, (dots.left + r + i * 3 * r, dots.centery), r, 0 if i < digits else 3)
        if error:
            p.text(err, v.cat.t("staff.pin_error"), "body", theme.DANGER, bold=True, max_lines=1)
        # Three keys a row, like a phone; four when four rows would not fit (a small demo window).
        for cell, key in zip(theme.fit_grid(pad, len(KEYS), 3, L.target, L.px(200), L.gap), KEYS):
            label = v.cat.t(f"staff.{key}") if not key.isdigit() else key
            style = "primary" if key == "enter" else "secondary"
            p.button(cell, label, f"pin:{key}", lambda k=key: v.act.pin_key(k), style=style,
                     size="button" if not key.isdigit() else "title")
        return None


class Restock(Screen):
    """One tile per door: open, counting, or what the count found."""

    name = "staff_restock"

    def draw(self, p: Painter, v: View) -> float | None:
        s = v.snap
        staff = s.staff
        body = self.frame(p, v, lang_button=False)
        L = p.L
        rest = footer(p, body, [
            ("diagnostics", v.cat.t("staff.diagnostics"), lambda: v.act.open_page("diagnostics"), "secondary"),
            ("finish", v.cat.t("staff.finish"), lambda: v.act.post(Cancel()), "primary")])
        hint_h = L.size("body") * (1.4 if L.landscape else 2.6)
        title, hint, tiles = theme.split_v(rest, L.size("title") * 1.4, hint_h, 1, gap=L.gap)
        p.text(title, v.cat.t("staff.restock_title"), "title", theme.INK, bold=True, max_lines=1)
        p.text(hint, v.cat.t("staff.restock_hint"), "body", theme.MUTED)
        summary = {door: (added, removed) for door, added, removed in (staff.summary if staff else ())}
        doors = sorted(set(s.doors_in_service) | set(s.doors_out_of_service) | set(summary)
                       | set(staff.doors_open if staff else ()) | set(staff.counting if staff else ())
                       | set(staff.checking if staff else ()))
        cells = theme.fit_grid(tiles, len(doors), 3 if L.landscape else 2, L.target, L.px(260), L.gap)
        for cell, door in zip(cells, doors):
            if staff and door in staff.counting:
                state, fill, ink = v.cat.t("staff.counting"), theme.WARN, theme.INK
            elif staff and door in staff.checking:       # its board is silent: Finish leaves it counting
                state, fill, ink = v.cat.t("staff.checking"), theme.WARN, theme.INK
            elif staff and door in staff.doors_open:
                state, fill, ink = v.cat.t("staff.door_open"), theme.PRIMARY, theme.WHITE
            elif door in summary:
                state, fill, ink = v.cat.t("staff.counted", added=summary[door][0], removed=summary[door][1]), \
                    theme.GOOD, theme.WHITE
            else:
                state, fill, ink = v.cat.t("staff.closed"), theme.PANEL, theme.INK
            p.box(cell, fill)
            top, bottom = theme.split_v(cell.inflate(-2 * L.gap, -L.gap), 0.5, 0.5)
            p.text(top, v.cat.t("common.door", door=door), "head", ink, bold=True, valign="bottom", max_lines=1)
            p.text(bottom, state, "body", ink, valign="top", max_lines=1)
        return None


class DiagnosticsScreen(Screen):
    """Devices, the outbox, the last sync, the software version: for staff, from Snapshot.diagnostics."""

    name = "diagnostics"

    def draw(self, p: Painter, v: View) -> float | None:
        d = v.snap.diagnostics
        body = self.frame(p, v, lang_button=False)
        L = p.L
        back = [("back", v.cat.t("common.back"), lambda: v.act.open_page(None), "secondary")]
        if L.landscape and d is not None:       # facts and Back on the left, the devices on the right
            left, devices = theme.split_h(body, 0.5, 0.5, gap=L.gap * 2)
            rest = footer(p, left, back)
        else:
            rest, devices = footer(p, body, back), None
        title, rest = theme.split_v(rest, L.size("title") * 1.4, 1, gap=L.gap)
        p.text(title, v.cat.t("diagnostics.title"), "title", theme.INK, bold=True, max_lines=1)
        if d is None:
            p.text(rest, v.cat.t("diagnostics.none"), "head", theme.INK)
            return None
        t = v.cat.t
        lines = [t("diagnostics.bookcase", id=d.bookcase_id), d.bookcase_name,
                 t("diagnostics.version", version=d.version),
                 t("diagnostics.online" if d.online else "diagnostics.offline") + " · "
                 + (t("diagnostics.last_sync", time=d.last_sync) if d.last_sync else t("diagnostics.never")),
                 t("diagnostics.outbox", count=d.outbox_depth)]
        if d.disk_free_mb is not None:
            lines.append(t("diagnostics.disk", mb=d.disk_free_mb))
        if d.content_version is not None:
            result = f"diagnostics.content_{d.content_result}"
            lines.append(t("diagnostics.content", version=d.content_version or "—")
                         + (" · " + t(result) if v.cat.has(result) else ""))
        row_h = int(p.fonts.line_height(L.size("body")) * 1.2)
        if devices is None:
            info, devices = theme.split_v(rest, row_h * len(lines), 1, gap=L.gap * 2)
        else:
            info = rest
        row_h = min(row_h, info.height // max(1, len(lines)))
        for rect, line in zip(theme.split_v(info, *[row_h] * len(lines)), lines):
            p.text(rect, line, "body", theme.INK, valign="middle", max_lines=1)
        self._devices(p, devices, v)
        return None

    @staticmethod
    def _devices(p: Painter, rect: pygame.Rect, v: View) -> None:
        """One panel per device: its name and state on top, the driver's last word below (cut if long)."""
        L = p.L
        devices = v.snap.diagnostics.devices
        if not devices:
            return
        pad, gap = L.px(8), L.px(12)
        name_h = p.fonts.line_height(L.size("body"))
        small_h = p.fonts.line_height(L.size("small"))
        one, two = name_h + small_h + 2 * pad, name_h + 2 * small_h + 2 * pad
        cells = theme.fit_grid(rect, len(devices), 1, one, two, gap)
        for cell, (name, up, message) in zip(cells, devices):
            p.box(cell, theme.PANEL)
            inner = cell.inflate(-2 * L.gap, -2 * pad)
            top, bottom = theme.split_v(inner, name_h, 1)
            left, right = theme.split_h(top, 0.7, 0.3, gap=L.gap)
            label = v.cat.t(f"diagnostics.{name}") if v.cat.has(f"diagnostics.{name}") else name
            p.text(left, label, "body", theme.INK, bold=True, valign="middle", max_lines=1)
            p.text(right, v.cat.t("diagnostics.up" if up else "diagnostics.down"), "body",
                   theme.GOOD if up else theme.DANGER, bold=True, align="right", valign="middle", max_lines=1)
            p.text(bottom, message, "small", theme.MUTED, valign="top",
                   max_lines=max(1, bottom.height // p.fonts.line_height(L.min_text)))
