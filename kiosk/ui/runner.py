"""`kiosk run` with the screen: the UI on the main thread, the core loop in a thread of its own.

A screen that will not open does not stop the bookcase (docs/design.md rule 8): the core serves on (cards,
doors, sync), a ``hardware_fault`` alarm for the ``screen`` tells the library, and the window is tried
again every ``SCREEN_RETRY_S`` until it opens (then the alarm clears).
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from typing import Protocol
from zoneinfo import ZoneInfo

from kiosk.config import Config
from kiosk.content.manifest import public_key
from kiosk.content.store import ContentStore
from kiosk.core import events as ev
from kiosk.core.snapshot import Snapshot
from kiosk.ui import UIError
from kiosk.ui.loop import KioskUI
from kiosk.ui.power import ScreenPower
from kiosk.ui.screens.playlist import Playlist
from kiosk.ui.speaker import Speaker

LOGGER = logging.getLogger(__name__)

CORE_STOP_S = 30.0
SCREEN_RETRY_S = 30.0
STOP_POLL_S = 0.1


class Core(Protocol):
    """What the screen needs of the daemon (kiosk.app.App)."""
    snapshot: Snapshot

    def post(self, event: ev.Event) -> None: ...
    def find(self, text: str) -> list[dict]: ...
    def run(self, install_signal_handlers: bool = True) -> None: ...
    def stop(self) -> None: ...


def build_ui(config: Config) -> KioskUI:
    """Fonts and sounds from the config's [screen], the library's content in the promotional region, screen
    power by [screen] on_hours; the window not yet open. Raises kiosk.ui.UIError (a missing CJK font: an
    installation fault that no retry mends)."""
    tz = ZoneInfo(config.content.timezone)
    return KioskUI(config.screen, bookcase_name=config.bookcase.name, bookcase_name_en=config.bookcase.name_en,
                   choose_door_s=config.session.choose_door_timeout_s, promo=content_promo(config),
                   power=ScreenPower(config.screen, tz))


def content_promo(config: Config) -> Playlist:
    """The promotional region: the signed content installed in the bookcase's content folder (kept there by
    kiosk.sync.content), or the built-in cards while there is none; the videos' sound at ``video_volume``."""
    keys = tuple(public_key(k) for k in config.content.public_keys)
    volume = config.screen.video_volume
    return Playlist(ContentStore(config.content_dir, keys), ZoneInfo(config.content.timezone),
                    speaker=Speaker(volume) if volume > 0 else None)


def open_ui(config: Config) -> KioskUI:
    """``build_ui`` and the window open with its first frame; raises kiosk.ui.UIError."""
    ui = build_ui(config)
    _show(ui)
    return ui


def _show(ui: KioskUI) -> None:
    ui.open()
    ui.render(force=True)
    ui.present()


def _open_window(app: Core, ui: KioskUI, stop: threading.Event, retry_s: float) -> bool:
    """Open the window unless it is open; while it cannot, raise the alarm once and try again every
    ``retry_s``. False if ``stop`` came first."""
    down = False
    while ui.window is None:
        try:
            _show(ui)
        except UIError as exc:
            if not down:
                LOGGER.error("the touch screen cannot start: %s; the bookcase keeps serving without it and tries "
                             "the screen again every %.0f s", exc, retry_s)
                app.post(ev.DeviceLink("screen", False, f"the touch screen cannot start: {exc}"))
                down = True
            # Not stop.wait(): the SIGTERM handler sets ``stop`` on this very thread, and Event.set() inside
            # Event.wait() of the same thread can deadlock on the event's lock.
            deadline = time.monotonic() + retry_s
            while not stop.is_set() and time.monotonic() < deadline:
                time.sleep(STOP_POLL_S)
            if stop.is_set():
                return False
            continue
        if down:
            app.post(ev.DeviceLink("screen", True, "the touch screen is open"))
    return not stop.is_set()


def run_with_ui(app: Core, ui: KioskUI, retry_s: float = SCREEN_RETRY_S) -> int:
    """Run the core loop in a thread and the screen here until SIGTERM/SIGINT (or the core stops). The
    window is opened here if it is not open yet, and retried while it cannot be."""
    stop = threading.Event()
    failed = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())

    def core() -> None:
        try:
            app.run(install_signal_handlers=False)
        except BaseException:
            LOGGER.exception("the core loop stopped with an error")
            failed.set()
        finally:
            stop.set()

    ui.connect(app.post, lambda: app.snapshot, getattr(app, "find", None))
    thread = threading.Thread(target=core, name="kiosk-core")
    thread.start()
    try:
        if _open_window(app, ui, stop, retry_s):
            ui.run(stop)
    except BaseException:
        LOGGER.exception("the screen loop stopped with an error")
        failed.set()
    finally:
        app.stop()
        thread.join(timeout=CORE_STOP_S)
        if thread.is_alive():
            LOGGER.error("the core loop did not stop within %.0f s", CORE_STOP_S)
            failed.set()
        ui.close()
    return 1 if failed.is_set() else 0
