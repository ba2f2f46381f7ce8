"""`kiosk screenshot`: any screen with sample data, rendered off-screen (no display needed) to a PNG."""

from __future__ import annotations

import logging
from pathlib import Path

import pygame

from kiosk.config import ScreenConfig
from kiosk.ui.fonts import Fonts
from kiosk.ui.loop import KioskUI
from kiosk.ui.samples import BOOKCASE_NAME, NOW, RESERVE_URL, Sample, samples
from kiosk.ui.voice import Voice

LOGGER = logging.getLogger(__name__)


def sample_ui(sample: Sample, lang: str, size: tuple[int, int], fonts: Fonts | None = None) -> KioskUI:
    """A KioskUI showing ``sample`` on an off-screen surface, frozen at the sample clock; one frame drawn."""
    ui = KioskUI(ScreenConfig(width=size[0], height=size[1], fullscreen=False, language=lang, voice=False,
                              reserve_url=RESERVE_URL),
                 bookcase_name=BOOKCASE_NAME, snapshot=lambda: sample.snap, fonts=fonts, voice=Voice(enabled=False),
                 clock=lambda: NOW)
    ui.use_surface(pygame.Surface(size))
    ui.page, ui.pin = sample.page, sample.pin
    f = ui.finding
    f.query, f.answer, f.book, f.offset, f.classes = sample.query, sample.found, sample.book, sample.offset, \
        sample.classes
    ui.chosen = (sample.chosen, NOW + 30) if sample.chosen is not None else None
    ui.render(force=True)
    return ui


def screenshot(state: str, lang: str, out: Path, size: tuple[int, int] = (1080, 1920)) -> Path:
    """Render the sample for ``state`` in ``lang`` to the PNG ``out``."""
    ui = sample_ui(samples()[state], lang, size)
    out.parent.mkdir(parents=True, exist_ok=True)
    pygame.image.save(ui.surface, str(out))
    LOGGER.info("screenshot of %s (%s, %dx%d) in %s", state, lang, *size, out)
    return out
