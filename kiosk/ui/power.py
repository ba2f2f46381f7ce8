"""Screen power: the display is off outside the configured hours and comes back on when someone taps.

A street bookcase's screen lit all night wastes power and light; a dark one must still wake the moment a
patron touches it or taps a card. ``ScreenPower`` decides; a backend switches the panel:

- ``none``: nothing to switch (the simulator, a laptop); the UI still stops drawing and decoding video.
- ``command``: two shell commands from the config, e.g. ``vcgencmd display_power 0`` / ``... 1`` on a
  Raspberry Pi with the legacy firmware driver, ``wlr-randr --output HDMI-A-1 --off`` under a Wayland
  compositor, or ``xset dpms force off`` under X11.

A backend that fails is logged (once per kind of failure) and never stops the screen.
"""

from __future__ import annotations

import logging
import shlex
import subprocess
import time
from collections.abc import Callable
from datetime import datetime
from typing import Protocol
from zoneinfo import ZoneInfo

from kiosk.config import ScreenConfig
from kiosk.content.manifest import Window, parse_window

LOGGER = logging.getLogger(__name__)

COMMAND_TIMEOUT_S = 5.0
RETRY_S = 60.0            # after a failed switch off, the screen stays lit and drawn; try again this much later


class Backend(Protocol):
    def set(self, on: bool) -> None:
        """Switch the panel; may raise OSError or subprocess errors (ScreenPower logs them)."""


class NoBackend:
    """Nothing to switch: records what it was asked, for the simulator and the tests."""

    def __init__(self) -> None:
        self.calls: list[bool] = []

    def set(self, on: bool) -> None:
        self.calls.append(on)


class CommandBackend:
    def __init__(self, on_command: str, off_command: str) -> None:
        self.commands = {True: shlex.split(on_command), False: shlex.split(off_command)}

    def set(self, on: bool) -> None:
        subprocess.run(self.commands[on], check=True, timeout=COMMAND_TIMEOUT_S, capture_output=True)


def backend_for(settings: ScreenConfig) -> Backend:
    if settings.power == "command":
        return CommandBackend(settings.power_on_command, settings.power_off_command)
    return NoBackend()


class ScreenPower:
    """On inside ``settings.on_hours`` (always, if none are set), and for ``settings.wake_s`` after a wake."""

    def __init__(self, settings: ScreenConfig, tz: ZoneInfo, backend: Backend | None = None, *,
                 clock: Callable[[], float] = time.monotonic,
                 wallclock: Callable[[], datetime] = lambda: datetime.now().astimezone()) -> None:
        self.windows: tuple[Window, ...] = tuple(parse_window(w) for w in settings.on_hours)
        self.wake_s = settings.wake_s
        self.tz = tz
        self.backend = backend if backend is not None else backend_for(settings)
        self.clock, self.wallclock = clock, wallclock
        self.awake_until = -1.0
        self.on = True                     # the panel is on at start (the boot left it so)
        self.retry_at = -1.0
        self._failed: set[str] = set()

    def in_hours(self) -> bool:
        if not self.windows:
            return True
        local = self.wallclock().astimezone(self.tz).time()
        return any(local in w for w in self.windows)

    def wake(self, why: str) -> bool:
        """Someone is here (a touch, a card): on now, and for ``wake_s``. True if the screen was off."""
        self.awake_until = self.clock() + self.wake_s
        was_off = not self.on
        if was_off:
            LOGGER.info("screen on: %s", why)
            self._switch(True)
        return was_off

    def tick(self) -> bool:
        """Switch the panel if the hours or the wake period say so; returns whether it should be lit."""
        want = self.in_hours() or self.clock() < self.awake_until
        if want != self.on and (want or self.clock() >= self.retry_at):
            LOGGER.info("screen %s: %s", "on" if want else "off",
                        "within the screen's hours" if want else
                        f"outside the screen's hours ({', '.join(map(str, self.windows))})")
            self._switch(want)
        return self.on

    def _switch(self, on: bool) -> None:
        """A failed "on" still counts as on (draw: the panel may well be lit); a failed "off" leaves the screen
        on and drawn, and is tried again after RETRY_S, so a lit panel never shows a frozen frame."""
        try:
            self.backend.set(on)
            self.on = on
        except (OSError, subprocess.SubprocessError) as exc:
            self.on = True
            self.retry_at = self.clock() + RETRY_S
            detail = exc.stderr.decode(errors="replace").strip() if getattr(exc, "stderr", None) else str(exc)
            kind = f"{on}:{type(exc).__name__}"
            if kind not in self._failed:
                self._failed.add(kind)
                LOGGER.error("cannot switch the screen %s (%s); check [screen] power_%s_command", "on" if on else "off",
                             detail or type(exc).__name__, "on" if on else "off")
