"""Refused content leaves the old content on the screen: the updater against a real loopback server, the
playlist drawing from the same content folder, the pixels of the promotional region checked."""

from __future__ import annotations

import os
import time
from datetime import datetime
from zoneinfo import ZoneInfo

import pygame
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk.config import ScreenConfig
from kiosk.content.authoring import sign
from kiosk.core.snapshot import Snapshot
from kiosk.sync.content import INSTALLED, ContentUpdater
from kiosk.ui.loop import KioskUI
from kiosk.ui.screens.playlist import Playlist
from kiosk.ui.voice import Voice
from tests.content.media import GREEN, RED, make_clip, near
from tests.content.site import VIDEO, content_config, content_store

TZ = ZoneInfo("Asia/Shanghai")
TUESDAY_NOON = datetime(2026, 11, 24, 12, 0, tzinfo=TZ)      # only the everyday items: "intro" plays first


def spoil_tampered(library) -> None:
    library.server.faults.corrupt = {VIDEO}


def spoil_other_key(library) -> None:
    sign(library.folder, Ed25519PrivateKey.generate(), 300)


def spoil_interrupted(library) -> None:
    library.server.faults.drop_after = 20_000          # the manifest fits; the new clip does not


@pytest.fixture
def screen():
    """The screen's loop needs SDL's video subsystem (its events): the dummy driver, no window."""
    saved = os.environ.get("SDL_VIDEODRIVER")
    os.environ["SDL_VIDEODRIVER"] = "dummy"
    pygame.display.init()
    made: list[KioskUI] = []
    yield made
    for ui in made:
        ui.close()
    pygame.display.quit()
    if saved is None:
        os.environ.pop("SDL_VIDEODRIVER", None)
    else:
        os.environ["SDL_VIDEODRIVER"] = saved


def centre(ui: KioskUI, playlist: Playlist) -> tuple[int, ...]:
    rect = playlist.rect
    return tuple(ui.surface.get_at((rect.centerx - rect.width // 8, rect.centery)))


def play(ui: KioskUI, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        ui.step()
        time.sleep(1 / 30)


@pytest.mark.parametrize("spoil", [spoil_tampered, spoil_other_key, spoil_interrupted])
def test_a_refused_update_leaves_the_old_video_playing(library, tmp_path, screen, spoil):
    (library.folder / VIDEO).write_bytes(make_clip(tmp_path / "red.mp4", RED, seconds=3).read_bytes())
    sign(library.folder, library.key, 100)
    cfg = content_config(tmp_path / "bc", [library.public], library.server.url)
    store = content_store(cfg)
    updater = ContentUpdater(cfg, store, settle_s=0.05)   # a bad signature is looked at again at once
    assert updater.update() == INSTALLED
    playlist = Playlist(store, TZ, wallclock=lambda: TUESDAY_NOON)
    ui = KioskUI(ScreenConfig(width=540, height=960, fullscreen=False, voice=False), voice=Voice(enabled=False),
                 promo=playlist, snapshot=lambda: Snapshot(state="idle", doors_in_service=(1,)))
    screen.append(ui)
    ui.use_surface(pygame.Surface((540, 960)))
    play(ui, 0.5)
    assert playlist.showing == "intro" and near(centre(ui, playlist), RED, 40)
    generation = store.generation()
    # The library's next version has a green clip; on its way to the bookcase something goes wrong.
    (library.folder / VIDEO).write_bytes(make_clip(tmp_path / "green.mp4", GREEN, seconds=3,
                                                          pattern=True).read_bytes())     # noise: 100s of KB
    sign(library.folder, library.key, 200)
    spoil(library)
    assert updater.update() != INSTALLED
    assert store.generation() == generation and store.current_version() == 100
    play(ui, 0.5)
    assert playlist.showing == "intro" and near(centre(ui, playlist), RED, 40)
    updater.close()
