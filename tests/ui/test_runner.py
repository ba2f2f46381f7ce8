"""`kiosk run` with the screen: the core loop in its own thread, the screen on the main thread, and how both end."""

from __future__ import annotations

import os
import signal
import threading
import time

import pygame
import pytest

from kiosk.config import ScreenConfig
from kiosk.core import events as ev
from kiosk.core.snapshot import Snapshot
from kiosk.ui.loop import KioskUI
from kiosk.ui.runner import run_with_ui
from kiosk.ui.voice import Voice
from tests.ui.support import window_ui


class Core:
    """The daemon as kiosk.ui.runner.Core sees it (the edge of the layer): a loop that runs until stopped."""

    def __init__(self, fail: bool = False) -> None:
        self.snapshot = Snapshot(state="idle", doors_in_service=(1, 2))
        self.events: list[ev.Event] = []
        self.fail = fail
        self.thread: str | None = None
        self.stopped = threading.Event()

    def post(self, event: ev.Event) -> None:
        self.events.append(event)

    def find(self, text: str) -> list[dict]:
        return []

    def run(self, install_signal_handlers: bool = True) -> None:
        assert not install_signal_handlers          # signals belong to the main thread, the screen's
        self.thread = threading.current_thread().name
        if self.fail:
            raise OSError("database disk image is malformed")
        self.stopped.wait(60)

    def stop(self) -> None:
        self.stopped.set()


@pytest.fixture
def restore_signals():
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


def test_a_tap_reaches_the_core_and_sigterm_stops_both(fonts, restore_signals):
    core = Core()
    ui = window_ui(fonts, lambda: core.snapshot)

    def patron() -> None:              # from another thread, as a touch driver does: SDL's queue takes it
        deadline = time.monotonic() + 30
        try:
            while not any(t.key == "return" for t in ui.painter.targets) and time.monotonic() < deadline:
                time.sleep(0.01)
            x, y = next(t for t in ui.painter.targets if t.key == "return").rect.center
            w, h = ui.surface.get_size()
            pygame.event.post(pygame.event.Event(pygame.FINGERDOWN, touch_id=1, finger_id=0, x=x / w, y=y / h,
                                                 dx=0.0, dy=0.0, pressure=1.0))
            while not core.events and time.monotonic() < deadline:
                time.sleep(0.01)
        finally:
            os.kill(os.getpid(), signal.SIGTERM)       # as systemd stops the bookcase

    helper = threading.Thread(target=patron, name="test-patron", daemon=True)
    helper.start()
    assert run_with_ui(core, ui) == 0
    helper.join(10)
    assert core.events == [ev.ReturnStart()]
    assert core.thread == "kiosk-core" and core.stopped.is_set()
    assert ui.window is None                       # the screen was closed


def test_a_core_that_dies_ends_the_screen_with_an_error(fonts, restore_signals, caplog):
    core = Core(fail=True)
    ui = window_ui(fonts, lambda: core.snapshot)
    assert run_with_ui(core, ui) == 1
    assert ui.window is None
    assert "the core loop stopped with an error" in caplog.text


def test_closing_the_window_outside_kiosk_mode_stops_the_core(fonts, restore_signals):
    core = Core()
    ui = window_ui(fonts, lambda: core.snapshot)          # a plain window (a laptop demo), not full screen
    pygame.event.post(pygame.event.Event(pygame.QUIT))
    assert run_with_ui(core, ui) == 0
    assert core.stopped.is_set() and ui.window is None


def test_a_screen_that_cannot_open_raises_the_alarm_and_is_tried_again_until_it_opens(fonts, restore_signals,
                                                                                       monkeypatch, caplog):
    core = Core()
    ui = KioskUI(ScreenConfig(width=540, height=960, fullscreen=False, voice=False), bookcase_name="测试书柜",
                 fonts=fonts, voice=Voice(enabled=False))
    pygame.display.quit()
    monkeypatch.setenv("SDL_VIDEODRIVER", "no-such-driver")       # SDL's own failure: no such video driver

    def display_comes_back() -> None:
        deadline = time.monotonic() + 30
        try:
            while not core.events and time.monotonic() < deadline:
                time.sleep(0.01)
            os.environ["SDL_VIDEODRIVER"] = "dummy"                 # the next try finds a display
            while len(core.events) < 2 and time.monotonic() < deadline:
                time.sleep(0.01)
        finally:
            os.kill(os.getpid(), signal.SIGTERM)

    helper = threading.Thread(target=display_comes_back, name="test-display", daemon=True)
    helper.start()
    assert run_with_ui(core, ui, retry_s=0.05) == 0
    helper.join(10)
    down, up = core.events
    assert isinstance(down, ev.DeviceLink) and down.device == "screen" and not down.up
    assert "the touch screen cannot start" in down.message
    assert isinstance(up, ev.DeviceLink) and up.device == "screen" and up.up
    assert caplog.text.count("keeps serving without it") == 1     # one log line and one alarm, however many tries
    assert core.thread == "kiosk-core" and core.stopped.is_set() and ui.window is None
