"""Touches and clicks to taps: a finger and the mouse click SDL makes from it count once."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import pygame

LOGGER = logging.getLogger(__name__)

SDL_TOUCH_MOUSEID = 0xFFFFFFFF      # SDL's "which" on mouse events it synthesises from a touch
DEDUPE_S = 0.6                      # a plain click this soon after a finger, and this near it, is that finger's
DEDUPE_PX = 80


class TouchFilter:
    """``tap(event, window_size)`` -> the tap's position in window pixels, or None (not a tap, or a duplicate)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._last_finger: tuple[tuple[int, int], float] | None = None

    def tap(self, event: pygame.event.Event, window_size: tuple[int, int]) -> tuple[int, int] | None:
        if event.type == pygame.FINGERDOWN:
            w, h = window_size
            pos = (min(w - 1, max(0, int(event.x * w))), min(h - 1, max(0, int(event.y * h))))
            self._last_finger = (pos, self.clock())
            return pos
        if event.type != pygame.MOUSEBUTTONDOWN or getattr(event, "button", 1) != 1:
            return None
        if getattr(event, "touch", False) or getattr(event, "which", None) == SDL_TOUCH_MOUSEID:
            return None                 # SDL made this click from a finger we have already counted
        pos = tuple(event.pos)
        if self._last_finger is not None:
            (fx, fy), when = self._last_finger
            if self.clock() - when < DEDUPE_S and abs(fx - pos[0]) <= DEDUPE_PX and abs(fy - pos[1]) <= DEDUPE_PX:
                LOGGER.debug("click at %s dropped: the same touch as the finger at %s", pos, (fx, fy))
                return None
        return pos
