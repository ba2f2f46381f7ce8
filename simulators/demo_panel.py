"""`make demo` with the touch screen: the kiosk screen, the daemon's core in this process, and a tester panel.

The window holds the bookcase's screen (as `kiosk run` shows it) and, on its right, a panel that plays the
patron's hands and the hardware: tap a reader card on the scanner, take and put books, close doors, break
a device. Every panel button has a key; the kiosk screen itself ignores the keyboard, as on a bookcase.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import pygame

from kiosk.core.policy import card_hint
from kiosk.demodata import DEMO_STAFF_CARD, demo_patrons
from kiosk.ui.fonts import Fonts
from kiosk.ui.loop import FPS, KioskUI
from kiosk.ui.runner import content_promo

if TYPE_CHECKING:
    from simulators.demo import Demo

LOGGER = logging.getLogger(__name__)

PANEL_BG, PANEL_INK, BUTTON, BUTTON_INK, NOTE = (33, 37, 43), (235, 235, 235), (70, 78, 90), (255, 255, 255), (255, 200, 0)
STATUS_EVERY_S = 0.3


@dataclass
class PanelButton:
    label: str
    key: int | None                 # pygame key constant
    hint: str
    action: Callable[[], str]       # returns what happened, for the status line
    rect: pygame.Rect | None = None


class Panel:
    """The tester's hands: cards on the scanner, books in and out of the open door, doors shut, faults."""

    def __init__(self, demo: Demo, surface: pygame.Surface, origin: tuple[int, int], fonts: Fonts) -> None:
        self.demo, self.sim = demo, demo.sim
        self.surface, self.origin, self.fonts = surface, origin, fonts
        self.held: list[str] = []              # books the tester has taken out
        self.message = "Tap a card (keys 1-9) to start"
        self.faults: set[str] = set()
        self._status: dict | None = None
        self._status_at = 0.0
        labels = {"adult": "adult", "branch": "branch", "child": "child"}
        self.buttons: list[PanelButton] = []
        digits = (pygame.K_1, pygame.K_2, pygame.K_3, pygame.K_4, pygame.K_5, pygame.K_6, pygame.K_7, pygame.K_8,
                  pygame.K_9)
        cards = [p for p in demo_patrons() if p.card_number.isdigit()][:len(digits)]
        for key, patron in zip(digits, cards):
            what = labels.get(patron.patron_class, patron.patron_class)
            if patron.status != "active":
                what += f", {patron.status}"
            elif patron.loans_elsewhere:
                what += f", {patron.loans_elsewhere} loans"
            self.buttons.append(PanelButton(f"Card {card_hint(patron.card_number)} ({what})", key,
                                            pygame.key.name(key), lambda n=patron.card_number: self.scan(n)))
        self.buttons += [
            PanelButton("Staff card", pygame.K_s, "s", lambda: self.scan(DEMO_STAFF_CARD)),
            PanelButton("Take a book", pygame.K_t, "t", self.take),
            PanelButton("Put a book in", pygame.K_p, "p", self.put),
            PanelButton("Close the open doors", pygame.K_c, "c", self.close),
            *([PanelButton(f"Return a book at {demo.peer.id}", pygame.K_m, "m", self.return_elsewhere)]
              if demo.peer is not None else []),
            PanelButton("RFID readers: fail / heal", pygame.K_r, "r", lambda: self.toggle("rfid", "silence")),
            PanelButton("Lock board: unplug / replug", pygame.K_l, "l", lambda: self.toggle("lockboard", "unplug")),
        ]

    # --- actions --------------------------------------------------------------------------------

    def scan(self, number: str) -> str:
        self.sim.scan(number)
        return f"scanned card {card_hint(number)}"

    def open_doors(self) -> list[dict]:
        return [d for d in self.status()["doors"] if d["open"]]

    def take(self) -> str:
        doors = self.open_doors()
        if not doors or not doors[0]["items"]:
            return "no open door with books in it"
        door = doors[0]
        item = sorted(door["items"])[0]
        self.sim.take(door["door"], item)
        self.held.append(item)
        self._status = None
        return f"took {item} from door {door['door']}"

    def put(self) -> str:
        doors = self.open_doors()
        if not doors:
            return "no door is open"
        outside = self.held or sorted(self.status().get("outside", []))
        if not outside:
            return "no book outside the bookcase to put in"
        item = outside.pop() if outside is self.held else outside[-1]
        self.sim.put(doors[0]["door"], item)
        self._status = None
        return f"put {item} into door {doors[0]['door']}"

    def close(self) -> str:
        doors = self.open_doors()
        for door in doors:
            self.sim.close(door["door"])
        self._status = None
        return "closed door " + ", ".join(str(d["door"]) for d in doors) if doors else "no door is open"

    def return_elsewhere(self) -> str:
        """The patron carries the last book taken to the fleet's other bookcase and returns it there."""
        peer = self.demo.peer
        if not self.held:
            return f"take a book first: it is then returned at {peer.id}"
        if self.open_doors():
            return "close the open door first"
        item = self.held.pop()

        def walk() -> None:
            try:
                self.demo.return_at_peer(item)
                self.message = f"{item} returned at {peer.id}; the loan here is closed"
            except BaseException as exc:        # a SystemExit from a wait that gave up, too
                self.message = f"return at {peer.id}: {exc}"
                LOGGER.error("demo panel: return of %s at %s: %s", item, peer.id, exc)

        threading.Thread(target=walk, name="demo-return-elsewhere", daemon=True).start()
        return f"carrying {item} to {peer.id} ..."

    def toggle(self, device: str, fault: str) -> str:
        heal = "heal" if fault == "silence" else "replug"
        if device in self.faults:
            self.faults.discard(device)
            getattr(self.sim, heal)(device)
            return f"{device}: {heal}"
        self.faults.add(device)
        getattr(self.sim, fault)(device)
        return f"{device}: {fault}"

    def status(self) -> dict:
        now = time.monotonic()
        if self._status is None or now - self._status_at > STATUS_EVERY_S:
            self._status, self._status_at = self.sim.status(), now
        return self._status

    # --- events and drawing ---------------------------------------------------------------------

    def handle(self, event: pygame.event.Event, window_size: tuple[int, int]) -> bool:
        """A key or a click meant for the panel; True if it was."""
        if event.type == pygame.KEYDOWN:
            for b in self.buttons:
                if b.key == event.key:
                    return self._run(b)
            return False
        if event.type == pygame.FINGERDOWN:
            pos = (int(event.x * window_size[0]), int(event.y * window_size[1]))
        elif event.type == pygame.MOUSEBUTTONDOWN and event.button == 1 and not getattr(event, "touch", False):
            pos = event.pos
        else:
            return False
        local = (pos[0] - self.origin[0], pos[1] - self.origin[1])
        if not self.surface.get_rect().collidepoint(local):
            return False
        for b in self.buttons:
            if b.rect is not None and b.rect.collidepoint(local):
                return self._run(b)
        return True

    def _run(self, button: PanelButton) -> bool:
        try:
            self.message = button.action()
        except Exception as exc:        # a tester's click must not end the demo
            self.message = f"{button.label}: {exc}"
        LOGGER.info("demo panel: %s", self.message)
        return True

    def _height(self, size: int, pad: int, doors: int) -> int:
        """How tall the panel's contents are at type ``size``."""
        line = self.fonts.line_height(size)
        return (pad + self.fonts.line_height(size + 2, True) + pad // 2 + len(self.buttons) * (line + pad + pad // 2)
                + pad + doors * line + 2 * (pad // 2 + line) + pad)

    def draw(self) -> int:
        """Draw the panel; returns the bottom of its last line (the feedback line), which stays on the panel."""
        s = self.surface
        w, h = s.get_size()
        s.fill(PANEL_BG)
        pad = max(8, w // 40)
        status = self.status()
        size = max(13, min(20, h // 48))
        while size > 9 and self._height(size, pad, len(status["doors"])) > h:
            size -= 1                            # the fleet's extra button, a short window: smaller type
        while pad > 2 and self._height(size, pad, len(status["doors"])) > h:
            pad -= 1
        line = self.fonts.line_height(size)
        y = pad
        y = self._text("Tester panel (keys in [ ])", pad, y, size + 2, PANEL_INK, bold=True) + pad // 2
        button_h = line + pad
        for b in self.buttons:
            b.rect = pygame.Rect(pad, y, w - 2 * pad, button_h)
            pygame.draw.rect(s, BUTTON, b.rect, border_radius=6)
            self._text(f"[{b.hint}] {b.label}", b.rect.left + pad, b.rect.top + pad // 2, size, BUTTON_INK)
            y += button_h + pad // 2
        y += pad
        for door in status["doors"]:
            state = "OPEN" if door["open"] else "closed"
            y = self._text(f"door {door['door']}: {state}, {len(door['items'])} books", pad, y, size,
                           NOTE if door["open"] else PANEL_INK)
        y = self._text(f"books in hand: {', '.join(self.held[-3:]) or 'none'}", pad, y + pad // 2, size, PANEL_INK)
        return self._text(self.message, pad, y + pad // 2, size, NOTE)

    def _text(self, text: str, x: int, y: int, size: int, color: tuple[int, int, int], bold: bool = False) -> int:
        surf, r = self.fonts.render(text, size, color, bold)
        self.surface.blit(surf, (x + r.x, y + self.fonts.ascender(size, bold) - r.y))
        return y + self.fonts.line_height(size, bold)


def run_ui_demo(demo: Demo, size: tuple[int, int], play: bool, exit_after: bool) -> int:
    """The demo window until it is closed (Esc), or after the scenario with ``exit_after``."""
    from kiosk.app import App
    cfg = demo.cfg
    kiosk_w, kiosk_h = size
    panel_w = max(360, kiosk_w * 2 // 3)
    pygame.display.init()
    window = pygame.display.set_mode((kiosk_w + panel_w, kiosk_h))
    pygame.display.set_caption(f"City Bookcase demo: {cfg.bookcase.id}")
    LOGGER.info("demo window %dx%d (the kiosk screen at %dx%d), SDL video driver %s", *window.get_size(), kiosk_w,
                kiosk_h, pygame.display.get_driver())
    ui = KioskUI(replace(cfg.screen, width=kiosk_w, height=kiosk_h, fullscreen=False),
                 bookcase_name=cfg.bookcase.name, bookcase_name_en=cfg.bookcase.name_en, choose_door_s=cfg.session.choose_door_timeout_s)
    ui.use_surface(window.subsurface(pygame.Rect(0, 0, kiosk_w, kiosk_h)))
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        demo.prepare()              # demo.cfg now carries its [content] table (and with the fleet its [mqtt])
        demo.record_children()
    except BaseException:
        pygame.display.quit()
        raise
    ui.screens["attract"].promo = content_promo(demo.cfg)
    panel = Panel(demo, window.subsurface(pygame.Rect(kiosk_w, 0, panel_w, kiosk_h)), (kiosk_w, 0), ui.fonts)
    app = App(demo.cfg)
    ui.connect(app.post, lambda: app.snapshot, app.find)
    core = threading.Thread(target=app.run, kwargs={"install_signal_handlers": False}, name="kiosk-core")
    core.start()
    outcome: dict[str, BaseException | None] = {}

    def scenario() -> None:
        try:
            demo.wait_ready()
            if play or exit_after:
                demo.scenario()
            if not exit_after:
                print("demo: the bookcase is yours: use the panel or its keys; Esc or closing the window stops it",
                      flush=True)
        except BaseException as exc:            # reported on the main thread
            outcome["error"] = exc
        finally:
            if exit_after:
                stop.set()

    script = threading.Thread(target=scenario, name="demo-scenario")
    script.start()
    tick = pygame.time.Clock()
    last_panel = 0.0
    try:
        while not stop.is_set():
            for event in pygame.event.get():
                if event.type == pygame.QUIT or event.type == pygame.KEYDOWN and event.key in (pygame.K_ESCAPE,
                                                                                                pygame.K_q):
                    stop.set()
                elif not panel.handle(event, window.get_size()):
                    ui.handle_event(event)
            drew = ui.render()
            now = time.monotonic()
            if drew or now - last_panel > STATUS_EVERY_S:
                panel.draw()
                last_panel = now
                pygame.display.flip()
            tick.tick(FPS)
    finally:
        demo.halt.set()
        app.stop()
        core.join(timeout=30)
        script.join(timeout=30)
        ui.close()
        pygame.display.quit()
    error = outcome.get("error")
    if isinstance(error, SystemExit):
        print(error, flush=True)
        return 1
    if error is not None:
        LOGGER.error("demo scenario failed: %r", error)
        return 1
    return 0
