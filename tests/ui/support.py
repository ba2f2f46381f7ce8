"""Helpers for the screen tests: a UI on a dummy window, taps as SDL delivers them, stepping until a condition."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pygame

from kiosk.config import ScreenConfig
from kiosk.core.snapshot import Snapshot
from kiosk.ui.loop import KioskUI
from kiosk.ui.voice import Voice


class Recorder:
    """Stands in for the core's post(): keeps the intents, and forwards them if told where."""

    def __init__(self, forward: Callable[[Any], None] | None = None) -> None:
        self.events: list[Any] = []
        self.forward = forward

    def __call__(self, event: Any) -> None:
        self.events.append(event)
        if self.forward is not None:
            self.forward(event)


class Holder:
    """A snapshot the test swaps, as the core loop does."""

    def __init__(self, snap: Snapshot) -> None:
        self.snap = snap

    def __call__(self) -> Snapshot:
        return self.snap


def window_ui(fonts, snapshot: Callable[[], Snapshot], post=None, find=None, size=(1080, 1920), lang="zh",
              clock=time.monotonic, **kw) -> KioskUI:
    """A KioskUI with its own (dummy) window, as `kiosk run` opens it, minus full screen."""
    ui = KioskUI(ScreenConfig(width=size[0], height=size[1], fullscreen=False, language=lang, voice=False),
                 bookcase_name="测试书柜", post=post, snapshot=snapshot, find=find, fonts=fonts,
                 **{"voice": Voice(enabled=False), **kw}, clock=clock)
    ui.open()
    pygame.event.clear()
    return ui


def target(ui: KioskUI, key: str) -> pygame.Rect:
    found = [t for t in ui.painter.targets if t.key == key]
    assert found, f"no {key!r} on the {ui.current} screen; targets: {[t.key for t in ui.painter.targets]}"
    return found[-1].rect


def finger(ui: KioskUI, key: str, synthesized_click: bool = True) -> None:
    """A finger on the target, followed (as SDL does) by the mouse click it synthesises."""
    rect = target(ui, key)
    w, h = pygame.display.get_surface().get_size()
    x, y = rect.center
    pygame.event.post(pygame.event.Event(pygame.FINGERDOWN, touch_id=1, finger_id=0, x=x / w, y=y / h, dx=0.0,
                                         dy=0.0, pressure=1.0))
    if synthesized_click:
        pygame.event.post(pygame.event.Event(pygame.MOUSEBUTTONDOWN, pos=(x, y), button=1, touch=True))
    pygame.event.post(pygame.event.Event(pygame.FINGERUP, touch_id=1, finger_id=0, x=x / w, y=y / h, dx=0.0,
                                         dy=0.0, pressure=0.0))
    if synthesized_click:
        pygame.event.post(pygame.event.Event(pygame.MOUSEBUTTONUP, pos=(x, y), button=1, touch=True))


def click(ui: KioskUI, key: str, button: int = 1) -> None:
    """A plain mouse click (a laptop) on the target."""
    x, y = target(ui, key).center
    pygame.event.post(pygame.event.Event(pygame.MOUSEBUTTONDOWN, pos=(x, y), button=button, touch=False))
    pygame.event.post(pygame.event.Event(pygame.MOUSEBUTTONUP, pos=(x, y), button=button, touch=False))


def step_until(ui: KioskUI, predicate: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    """Run the UI loop until ``predicate()`` holds (the timeout only guards against a hang)."""
    deadline = time.monotonic() + timeout
    while True:
        ui.step()
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; the screen shows {ui.current}")
        time.sleep(1 / 120)


def drawn_lines(ui: KioskUI) -> list[str]:
    return [line for t in ui.painter.texts for line in t.lines]
