"""Drawing on one frame: text fitted into boxes, buttons that become touch targets, and a record of both."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import pygame

from kiosk.ui import theme
from kiosk.ui.fonts import Fonts
from kiosk.ui.text import ellipsize, wrap

LOGGER = logging.getLogger(__name__)

SHRINK = 0.9        # each try at fitting text is this much smaller


@dataclass(frozen=True)
class DrawnText:
    """One text as drawn: its lines, the ink's rect, the box it had to stay in, and whether it was cut."""
    text: str
    lines: tuple[str, ...]
    rect: pygame.Rect
    box: pygame.Rect
    size: int
    bold: bool
    truncated: bool


@dataclass(frozen=True)
class Target:
    """A touch target: what it is (``key``, e.g. "door:2") and what a tap does."""
    rect: pygame.Rect
    key: str
    action: Callable[[], None]


class Painter:
    """Draws one frame on ``surface``; ``texts`` and ``targets`` list what the frame holds."""

    def __init__(self, surface: pygame.Surface, fonts: Fonts) -> None:
        self.fonts = fonts
        self.begin(surface)

    def begin(self, surface: pygame.Surface) -> None:
        self.surface = surface
        self.L = theme.Layout(*surface.get_size())
        self.texts: list[DrawnText] = []
        self.targets: list[Target] = []

    # --- shapes ---------------------------------------------------------------------------------

    def fill(self, color: tuple[int, int, int]) -> None:
        self.surface.fill(color)

    def box(self, rect: pygame.Rect, color: tuple[int, int, int], *, radius: int | None = None,
            border: tuple[int, int, int] | None = None, width: int = 0) -> None:
        r = self.L.px(20) if radius is None else radius
        pygame.draw.rect(self.surface, color, rect, width, border_radius=r)
        if border is not None:
            pygame.draw.rect(self.surface, border, rect, max(2, self.L.px(4)), border_radius=r)

    # --- text -----------------------------------------------------------------------------------

    def text(self, box: pygame.Rect, text: str, size: int | str, color: tuple[int, int, int] = theme.INK, *,
             bold: bool = False, align: str = "left", valign: str = "top", min_size: int | None = None,
             max_lines: int | None = None) -> pygame.Rect:
        """Draw ``text`` inside ``box``: wrapped, shrunk down to ``min_size`` if needed, cut with "…" last.

        Returns the rect of the ink drawn (empty at the box's corner for empty text).
        """
        size = self.L.size(size) if isinstance(size, str) else size
        floor = min(size, min_size or self.L.min_text)
        fonts = self.fonts
        while True:
            lh = fonts.line_height(size, bold)
            lines = wrap(text, box.width, lambda s, z=size: fonts.width(s, z, bold)) if text else [""]
            fits = len(lines) * lh <= box.height and (max_lines is None or len(lines) <= max_lines)
            if fits or size <= floor:
                break
            size = max(floor, int(size * SHRINK))
        truncated = not fits
        if truncated:
            keep = max(1, min(max_lines or len(lines), box.height // lh, len(lines)))
            if keep < len(lines):
                lines = lines[:keep - 1] + [ellipsize(lines[keep - 1], box.width,
                                                      lambda s: fonts.width(s, size, bold))]
            LOGGER.debug("text cut to fit %s: %r", box, text)
        ascender = fonts.ascender(size, bold)
        total = len(lines) * lh
        y = box.top + {"top": 0, "middle": (box.height - total) // 2, "bottom": box.height - total}[valign]
        drawn = pygame.Rect(box.left, y, 0, 0)
        first = True
        for line in lines:
            if line:
                w = fonts.width(line, size, bold)
                x = box.left + {"left": 0, "center": (box.width - w) // 2, "right": box.width - w}[align]
                surf, r = fonts.render(line, size, color, bold)
                dest = pygame.Rect(x + max(0, r.x), y + ascender - r.y, r.width, r.height)
                self.surface.blit(surf, dest)
                drawn = dest.copy() if first else drawn.union(dest)
                first = False
            y += lh
        self.texts.append(DrawnText(text, tuple(lines), drawn, pygame.Rect(box), size, bold, truncated))
        return drawn

    # --- buttons --------------------------------------------------------------------------------

    def button(self, rect: pygame.Rect, label: str, key: str, action: Callable[[], None] | None, *,
               style: str = "primary", sub: str | None = None, size: int | str = "button",
               enabled: bool = True) -> None:
        """A rounded button; a touch target unless disabled (or without an action)."""
        fill, ink, border = theme.STYLES[style if enabled else "disabled"]
        self.box(rect, fill, border=border)
        pad = max(self.L.px(16), 8)
        inner = rect.inflate(-2 * pad, -2 * pad)
        if sub:
            sub_h = min(inner.height // 2, self.fonts.line_height(self.L.size("small")))
            top, bottom = theme.split_v(inner, 1, sub_h)
            self.text(top, label, size, ink, bold=True, align="center", valign="bottom")
            self.text(bottom, sub, "small", ink, align="center", valign="top")
        else:
            self.text(inner, label, size, ink, bold=True, align="center", valign="middle")
        if enabled and action is not None:
            self.target(rect, key, action)

    def target(self, rect: pygame.Rect, key: str, action: Callable[[], None]) -> None:
        self.targets.append(Target(pygame.Rect(rect), key, action))

    def backdrop(self, key: str, action: Callable[[], None]) -> None:
        """A target under everything else: a touch that hits no button."""
        self.targets.insert(0, Target(pygame.Rect(0, 0, self.L.w, self.L.h), key, action))

    def hit(self, pos: tuple[int, int]) -> Target | None:
        """The topmost target under ``pos`` (the last one drawn wins)."""
        for target in reversed(self.targets):
            if target.rect.collidepoint(pos):
                return target
        return None
