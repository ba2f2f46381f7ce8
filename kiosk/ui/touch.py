"""Touches and clicks to taps: a finger and the mouse click made from it count once."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import pygame

LOGGER = logging.getLogger(__name__)

SDL_TOUCH_MOUSEID = 0xFFFFFFFF      # SDL's "which" on mouse events it synthesises from a touch
DEDUPE_S = 0.6                      # a click and a finger this close in time and place are one touch
DEDUPE_PX = 80


class TouchFilter:
    """``tap(event, window_size)`` -> the tap's position in window pixels, or None (not a tap, or a duplicate).

    SDL marks the mouse events it makes from a finger (``touch`` / ``which``), and those are dropped. Some
    touch drivers also report the screen as a plain mouse: then a finger comes with an unmarked click at the
    same place, before or after it, and whichever comes second is dropped. Two fingers, or two clicks, are
    always two taps (a PIN of "1", "1").
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._last: tuple[str, tuple[int, int], float] | None = None     # kind, position, when

    def tap(self, event: pygame.event.Event, window_size: tuple[int, int]) -> tuple[int, int] | None:
        if event.type == pygame.FINGERDOWN:
            w, h = window_size
            kind, pos = "finger", (min(w - 1, max(0, int(event.x * w))), min(h - 1, max(0, int(event.y * h))))
        elif event.type == pygame.MOUSEBUTTONDOWN and getattr(event, "button", 1) == 1:
            if getattr(event, "touch", False) or getattr(event, "which", None) == SDL_TOUCH_MOUSEID:
                return None             # SDL made this click from a finger, which counts on its own
            kind, pos = "mouse", (int(event.pos[0]), int(event.pos[1]))
        else:
            return None
        now = self.clock()
        if self._last is not None:
            last_kind, (x, y), when = self._last
            if (last_kind != kind and now - when < DEDUPE_S
                    and abs(x - pos[0]) <= DEDUPE_PX and abs(y - pos[1]) <= DEDUPE_PX):
                LOGGER.debug("%s at %s dropped: the same touch as the %s at %s", kind, pos, last_kind, (x, y))
                return None
        self._last = (kind, pos, now)
        return pos
