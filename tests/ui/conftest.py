"""Screen tests: real pygame on SDL's dummy video and audio drivers, the real Noto CJK font."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")


@pytest.fixture(scope="session", autouse=True)
def sdl_dummy():
    """SDL without a display or a sound card, for this package's tests only."""
    saved = {k: os.environ.get(k) for k in ("SDL_VIDEODRIVER", "SDL_AUDIODRIVER")}
    os.environ["SDL_VIDEODRIVER"] = "dummy"
    os.environ["SDL_AUDIODRIVER"] = "dummy"
    yield
    import pygame
    pygame.quit()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def fonts():
    from kiosk.ui.fonts import Fonts
    return Fonts.find()
