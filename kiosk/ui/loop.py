"""The screen's loop on the main thread: touches in, intents out, frames drawn from the core's snapshots."""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Callable

import pygame

from kiosk.config import ScreenConfig
from kiosk.core import events as ev
from kiosk.core.snapshot import Snapshot
from kiosk.ui import UIError
from kiosk.ui.fonts import Fonts
from kiosk.ui.i18n import LANGS, catalogue
from kiosk.ui.painter import Painter
from kiosk.ui.power import ScreenPower
from kiosk.ui.screens import IDLE_PAGES, STAFF_STATES, make_screens, screen_name
from kiosk.ui.screens.base import View
from kiosk.ui.screens.find_state import FindState
from kiosk.ui.screens.promo import RECOMMENDED_TITLES, Promo
from kiosk.ui.touch import TouchFilter
from kiosk.ui.voice import Voice

LOGGER = logging.getLogger(__name__)

FPS = 30
PAGE_TIMEOUT_S = 60.0        # an opened page (Find, Help) or another language goes back after this long untouched
MAX_PIN_DIGITS = 12
ERROR_REDRAW_S = 1.0
MAX_RECTS = 16


class KioskUI:
    """The touch screen. ``open()`` a window (or ``use_surface()``), then ``run(stop)`` or ``step()``.

    It reads ``snapshot()`` (the core's immutable Snapshot) and calls ``post(event)`` with intents; ``find``
    is a read-only title search. It never calls a driver and never writes to the database.
    """

    def __init__(self, settings: ScreenConfig | None = None, *, bookcase_name: str = "", bookcase_name_en: str = "",
                 post: Callable[[ev.Event], None] | None = None, snapshot: Callable[[], Snapshot] | None = None,
                 find: Callable[[str], list[dict]] | None = None, choose_door_s: float = 30.0,
                 clock: Callable[[], float] = time.monotonic, fonts: Fonts | None = None,
                 voice: Voice | None = None, recommended: tuple[str, ...] = RECOMMENDED_TITLES,
                 promo: Promo | None = None, power: ScreenPower | None = None) -> None:
        self.settings = settings or ScreenConfig()
        self.bookcase_name = bookcase_name
        self.bookcase_name_en = bookcase_name_en        # shown in English; without one, the Chinese name
        self.fonts = fonts or Fonts.find()
        self.voice = voice if voice is not None else Voice(enabled=self.settings.voice)
        self.clock = clock
        self.choose_door_s = choose_door_s
        self.recommended = recommended
        self.screens = make_screens()
        if promo is not None:
            self.screens["attract"].promo = promo
        self.power = power                 # None: the screen is always on
        self._post = post
        self.finding = FindState(find, self.settings.reserve_url)      # the Find page's state and its finder
        self._snapshot = snapshot or (lambda: Snapshot(state="starting"))
        self.lang = self.settings.language
        self.page: str | None = None
        self.pin = ""
        self.chosen: tuple[int, float] | None = None
        self.last_touch = clock()
        self.touch = TouchFilter(clock)
        self.window: pygame.Surface | None = None
        self.surface: pygame.Surface | None = None
        self.origin = (0, 0)
        self.painter: Painter | None = None
        self.current = "starting"          # the screen on display
        self.frames = 0                    # frames drawn
        self.partial_frames = 0            # of which only a region (the promotional video) was redrawn
        self.blank = False                 # the screen is powered off: nothing is drawn
        self.errors = 0                    # frames whose screen failed to draw (the fallback was shown)
        self.quit_requested = False
        self._version = 0                  # bumps when what the screen shows changes locally
        self._snap: Snapshot | None = None
        self._snap_seq = 0
        self._drawn: tuple | None = None
        self._due = 0.0
        self._pending: list[pygame.Rect] | None = []    # what present() must show: None = the whole frame
        self._logged_errors: set[tuple] = set()

    # --- wiring ---------------------------------------------------------------------------------

    def connect(self, post: Callable[[ev.Event], None], snapshot: Callable[[], Snapshot],
                find: Callable[[str], list[dict]] | None = None) -> None:
        """Attach the core (the window may open before the core exists)."""
        self._post, self._snapshot = post, snapshot
        self.finding.connect(find)
        self.invalidate()

    def open(self) -> None:
        """Open the window: full screen (kiosk mode) or a plain window, at the configured size."""
        os.environ.setdefault("SDL_VIDEO_MINIMIZE_ON_FOCUS_LOSS", "0")
        # Every frame is drawn in software: where the video driver can show such a frame itself (X11),
        # skip SDL's OpenGL copy of it (under Xvfb that loads llvmpipe: +110 MB and 3x the frame time).
        # Drivers without their own framebuffer (kmsdrm on the Pi) still use the GPU for the copy.
        os.environ.setdefault("SDL_FRAMEBUFFER_ACCELERATION", "0")
        s = self.settings
        try:
            pygame.display.init()
            window = pygame.display.set_mode((s.width, s.height), pygame.FULLSCREEN if s.fullscreen else 0)
        except pygame.error as exc:
            pygame.display.quit()           # a later open() starts the video subsystem afresh
            raise UIError(f"cannot open the screen ({exc}); check the display, or set SDL_VIDEODRIVER") from None
        pygame.display.set_caption("城市书柜 City Bookcase")
        if s.fullscreen:
            pygame.mouse.set_visible(False)
        pygame.key.stop_text_input()
        self.window = window
        self.use_surface(window)
        LOGGER.info("screen open: %dx%d%s, language %s, voice %s", *window.get_size(),
                    " full screen" if s.fullscreen else "", s.language,
                    "on" if self.voice.available else "off")

    def use_surface(self, surface: pygame.Surface, origin: tuple[int, int] = (0, 0)) -> None:
        """Draw on ``surface``, which sits at ``origin`` in the window (a demo puts a panel beside it)."""
        self.surface = surface
        self.origin = origin
        self.painter = Painter(surface, self.fonts)
        self.invalidate()

    def invalidate(self) -> None:
        self._version += 1

    def set_blank(self, blank: bool) -> None:
        """The screen's power is off (True): no frame is drawn and the promotional video stops decoding.
        Back on (False): the next frame is drawn whole and the playlist carries on where it stopped."""
        if blank == self.blank:
            return
        self.blank = blank
        if blank:
            self._pause(self.current)
        self.invalidate()

    # --- what a touch may do (kiosk.ui.screens.base.Actions) ---------------------------------------

    def post(self, event: ev.Event) -> None:
        shown = "PinEntered(****)" if isinstance(event, ev.PinEntered) else repr(event)
        LOGGER.info("screen: %s on the %s screen", shown, self.current)
        if self._post is not None:
            self._post(event)

    def toggle_lang(self) -> None:
        self.lang = LANGS[(LANGS.index(self.lang) + 1) % len(LANGS)]
        self.invalidate()

    def open_page(self, page: str | None) -> None:
        if page == "find" and self.page != "find":
            self.say("find_open")
        self.page = page
        self.finding.open = page == "find"
        if page != "find":
            self.finding.reset()
        self.invalidate()

    @property
    def found(self):
        """The Find page's answer (kiosk.search.results.Answer), or None."""
        return self.finding.answer

    def find(self, title: str) -> None:
        """One title by name (a recommendation tapped, or a caller's text)."""
        self.finding.title(title)
        self._say_book()
        self.invalidate()

    def find_key(self, key: str) -> None:
        self.finding.key(key)
        self.invalidate()

    def find_back(self) -> None:
        if not self.finding.back():
            self.open_page(None)
        self.invalidate()

    def find_browse(self, shelf: str) -> None:
        self.finding.browse(shelf)
        self.invalidate()

    def find_open(self, index: int) -> None:
        self.finding.open_book(index)
        self._say_book()
        self.invalidate()

    def find_page(self, delta: int, per_page: int) -> None:
        self.finding.page(delta, per_page)
        self.invalidate()

    def _say_book(self) -> None:
        book = self.finding.view().opened
        if book is not None:
            self.say("find_here" if book.here else "find_elsewhere" if book.held else "find_none")

    def _take_scans(self) -> None:
        """Barcodes scanned while the Find page is open: a book shows; anything else goes to the core as a card."""
        for text, book in self.finding.take_scans():
            if book:
                LOGGER.info("screen: a scanned barcode looked up on the Find page")
                self._say_book()
            else:
                self.open_page(None)
                self.post(ev.CardPresented(text))
            self.last_touch = self.clock()
            self.invalidate()

    def choose_found(self, door: int) -> None:
        self.post(ev.DoorChosen(door))
        self.chosen = (door, self.clock() + self.choose_door_s)
        self.open_page(None)
        self.say("tap_card")

    def pin_key(self, key: str) -> None:
        if key == "clear":
            self.pin = ""
        elif key == "enter":
            if self.pin:
                self.post(ev.PinEntered(self.pin))
            self.pin = ""
        elif key.isdigit() and len(self.pin) < MAX_PIN_DIGITS:
            self.pin += key
        self.invalidate()

    def say(self, prompt: str) -> None:
        self.voice.play(prompt, self.lang)

    # --- events ---------------------------------------------------------------------------------

    def handle_event(self, event: pygame.event.Event) -> bool:
        """One pygame event; True if it was a tap or otherwise used. Keys do nothing (kiosk mode)."""
        if event.type == pygame.QUIT:
            if self.settings.fullscreen:
                LOGGER.info("request to close the screen ignored: kiosk mode")
            else:
                self.quit_requested = True
            return True
        if event.type in (pygame.VIDEOEXPOSE, pygame.VIDEORESIZE, pygame.WINDOWEXPOSED, pygame.WINDOWRESTORED,
                          pygame.WINDOWSIZECHANGED):
            self.invalidate()
            return True
        window = pygame.display.get_surface()
        size = window.get_size() if window is not None else self.surface.get_size()
        pos = self.touch.tap(event, size)
        if pos is None:
            return False
        if self.power is not None and self.power.wake("a touch") and self.blank:
            self.set_blank(False)
            return True                    # the touch that wakes a dark screen presses nothing
        local = (pos[0] - self.origin[0], pos[1] - self.origin[1])
        if self.surface is None or not self.surface.get_rect().collidepoint(local):
            return False
        self.tap(local)
        return True

    def tap(self, pos: tuple[int, int]) -> str | None:
        """A tap at ``pos`` (surface pixels): runs the target under it; returns the target's key."""
        self.last_touch = self.clock()
        target = self.painter.hit(pos) if self.painter else None
        if target is None:
            return None
        LOGGER.debug("tap on %s at %s", target.key, pos)
        target.action()
        return target.key

    # --- frames ---------------------------------------------------------------------------------

    def view(self, now: float | None = None) -> View:
        name = self.bookcase_name_en if self.lang == "en" and self.bookcase_name_en else self.bookcase_name
        return View(snap=self._snap or self._snapshot(), cat=catalogue(self.lang), act=self,
                    now=self.clock() if now is None else now, bookcase_name=name, page=self.page, found=self.found,
                    pin=self.pin, chosen=self.chosen[0] if self.chosen else None, recommended=self.recommended,
                    finding=self.finding.view())

    def render(self, force: bool = False) -> bool:
        """Draw a frame if anything on screen changed or is due to move; True if one was drawn.

        When nothing but the screen's own animation is due (same snapshot, screen, language, page and
        size), a screen with ``update(p, v)`` redraws only the region that moves (the promotional video);
        ``present()`` then shows just those rects."""
        now = self.clock()
        self._take_scans()
        snap = self._snapshot()
        if snap is not self._snap:
            old, self._snap = self._snap, snap
            self._snap_seq += 1
            self._on_snapshot(old, snap)
        self._expire(now)
        self._power_step(snap)
        name = screen_name(snap, self.page)
        if name == "fallback" and ("state", snap.state) not in self._logged_errors:
            self._logged_errors.add(("state", snap.state))
            LOGGER.warning("no screen for the flow state %r; showing the plain fallback screen", snap.state)
        if self.blank:
            return False
        key = (self._snap_seq, name, self._version, self.surface.get_size())
        if not force and key == self._drawn:
            if now < self._due:
                return False
            if self.current == name:
                partial = self._update(name, now)
                if partial is not None:
                    return partial
        if name != self.current:
            self._pause(self.current)
        view = self.view(now)
        self.painter.begin(self.surface)
        try:
            delay = self.screens[name].draw(self.painter, view)
            self.current = name
        except Exception as exc:
            # Rule 8: a screen that fails to draw shows the plain fallback; the bookcase carries on.
            self.errors += 1
            if (name, type(exc).__name__) not in self._logged_errors:
                self._logged_errors.add((name, type(exc).__name__))
                LOGGER.exception("the %s screen failed to draw; showing the fallback screen", name)
            delay = ERROR_REDRAW_S
            self._fallback(view)
        self._drawn = key
        self._due = now + delay if delay is not None else math.inf
        self._pending = None
        self.frames += 1
        return True

    def _power_step(self, snap: Snapshot) -> None:
        """Lit within the screen's hours, while anyone is at the bookcase (a card, a session, staff) and for
        ``wake_s`` after; dark otherwise. A backend that fails never stops the screen (ScreenPower logs it)."""
        if self.power is None:
            return
        try:
            if snap.state not in ("idle", "starting"):
                self.power.wake(f"someone at the bookcase ({snap.state})")
            self.set_blank(not self.power.tick())
        except Exception:
            LOGGER.exception("screen power control failed; the screen stays on")
            self.power = None
            self.set_blank(False)

    def _update(self, name: str, now: float) -> bool | None:
        """Redraw only what moves on the screen on display; None if it cannot (a full draw is needed)."""
        update = getattr(self.screens[name], "update", None)
        if update is None:
            return None
        try:
            found = update(self.painter, self.view(now))
        except Exception as exc:
            if (name, "update", type(exc).__name__) not in self._logged_errors:
                self._logged_errors.add((name, "update", type(exc).__name__))
                LOGGER.exception("the %s screen failed to update; drawing it whole", name)
            return None
        if found is None:
            return None
        rects, delay = found
        self._due = now + delay if delay is not None else math.inf
        if not rects:
            return False
        if self._pending is not None and self.window is not None:
            self._pending.extend(rects)
            if len(self._pending) > MAX_RECTS:          # frames drawn and never presented: show it all
                self._pending = None
        self.frames += 1
        self.partial_frames += 1
        return True

    def _pause(self, name: str) -> None:
        """The screen ``name`` goes off the display: let it stop what it animates."""
        pause = getattr(self.screens.get(name), "pause", None)
        if pause is None:
            return
        try:
            pause()
        except Exception:
            LOGGER.exception("the %s screen failed to pause", name)

    def _fallback(self, view: View) -> None:
        self.painter.begin(self.surface)
        try:
            self.screens["fallback"].draw(self.painter, view)
            self.current = "fallback"
        except Exception:
            LOGGER.debug("the fallback screen failed too", exc_info=True)
            self.surface.fill((255, 255, 255))

    def present(self) -> None:
        """Show the drawn frame (when this UI owns the window): all of it, or only the rects updated."""
        if self.window is not None:
            if self._pending is None:
                pygame.display.flip()
            elif self._pending:
                ox, oy = self.origin
                pygame.display.update([r.move(ox, oy) for r in self._pending])
        self._pending = []

    def step(self) -> bool:
        """One turn of the loop: events, then a frame if needed. True if a frame was drawn."""
        for event in pygame.event.get():
            try:
                self.handle_event(event)
            except Exception:
                LOGGER.exception("error while handling %s; the screen carries on", pygame.event.event_name(event.type))
        drew = self.render()
        if drew:
            try:
                self.present()
            except pygame.error as exc:
                LOGGER.error("the display refused a frame: %s", exc)
        return drew

    def run(self, stop: threading.Event) -> None:
        """Until ``stop`` is set (or the window is closed, outside kiosk mode)."""
        tick = pygame.time.Clock()
        while not stop.is_set() and not self.quit_requested:
            try:
                self.step()
            except Exception:
                LOGGER.exception("screen loop error; carrying on")
            tick.tick(FPS)

    def close(self) -> None:
        for screen in self.screens.values():
            close = getattr(screen, "close", None)
            if close is not None:
                try:
                    close()
                except Exception:
                    LOGGER.exception("the %s screen failed to close", screen.name)
        self.voice.close()
        if self.window is not None:
            pygame.display.quit()
            self.window = None

    # --- local state follows the session ----------------------------------------------------------

    def _on_snapshot(self, old: Snapshot | None, new: Snapshot) -> None:
        if old is not None and new.state != old.state:
            if new.state != "idle":
                if self.page in IDLE_PAGES:
                    self.open_page(None)
                self.chosen = None
            elif old.state not in ("idle", "starting"):
                # A session ended: the next patron starts from the beginning, in the default language.
                self.lang, self.pin = self.settings.language, ""
                self.open_page(None)
            if old.state in STAFF_STATES and new.state not in STAFF_STATES:
                self.page, self.pin = None, ""
        if new.staff is not None and new.staff.pin_error and (old is None or old.staff is None
                                                               or not old.staff.pin_error):
            self.pin = ""
        try:
            self.voice.on_change(old, new, self.lang)
        except Exception:
            LOGGER.exception("voice prompt failed")

    def _expire(self, now: float) -> None:
        if self.chosen is not None and now >= self.chosen[1]:
            self.chosen = None
            self.invalidate()
        idle = now - self.last_touch >= PAGE_TIMEOUT_S
        if idle and self._snap is not None and self._snap.state == "idle" and (
                self.page in IDLE_PAGES or self.lang != self.settings.language):
            self.lang = self.settings.language
            self.open_page(None)
            self.invalidate()
