"""`kiosk run` with the screen: the UI on the main thread, the core loop in a thread of its own."""

from __future__ import annotations

import logging
import signal
import threading
from typing import Protocol

from kiosk.config import Config
from kiosk.core import events as ev
from kiosk.core.flow import Snapshot
from kiosk.ui.loop import KioskUI

LOGGER = logging.getLogger(__name__)

CORE_STOP_S = 30.0


class Core(Protocol):
    """What the screen needs of the daemon (kiosk.app.App)."""
    snapshot: Snapshot

    def post(self, event: ev.Event) -> None: ...
    def find(self, text: str) -> list[dict]: ...
    def run(self, install_signal_handlers: bool = True) -> None: ...
    def stop(self) -> None: ...


def open_ui(config: Config) -> KioskUI:
    """Fonts, sounds and the window, from the config's [screen]; raises kiosk.ui.UIError."""
    ui = KioskUI(config.screen, bookcase_name=config.bookcase.name,
                 choose_door_s=config.session.choose_door_timeout_s)
    ui.open()
    ui.render(force=True)
    ui.present()
    return ui


def run_with_ui(app: Core, ui: KioskUI) -> int:
    """Run the core loop in a thread and the screen here until SIGTERM/SIGINT (or the core stops)."""
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
