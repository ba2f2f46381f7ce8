"""Voice prompts: a committed sound file for every prompt in both languages; silent, never an error, without audio."""

from __future__ import annotations

import pygame

from kiosk.core.snapshot import Receipt, Snapshot
from kiosk.ui.i18n import LANGS
from kiosk.ui.voice import DOOR_PROMPTS, PROMPTS, Voice, prompt_for, sound_file
from tests.ui.support import Holder, window_ui


def test_every_prompt_has_a_sound_file_that_loads():
    pygame.mixer.init()
    for lang in LANGS:
        for prompt in (*PROMPTS, *(f"door_open_{n}" for n in range(1, DOOR_PROMPTS + 1))):
            path = sound_file(lang, prompt)
            assert path is not None, (lang, prompt)
            assert 0 < path.stat().st_size < 64_000, path
            assert pygame.mixer.Sound(str(path)).get_length() > 0.3


def test_without_an_audio_device_the_bookcase_is_silent(fonts, monkeypatch):
    """SDL itself finds no audio device: the prompts stay silent and the screen goes through a session."""
    monkeypatch.setenv("SDL_AUDIODRIVER", "no-such-audio-driver")
    pygame.mixer.quit()
    voice = Voice(enabled=True)
    assert not voice.available and not pygame.mixer.get_init()
    assert voice.play("tap_card", "zh") is False
    holder = Holder(Snapshot(state="idle", doors_in_service=(1, 2)))
    ui = window_ui(fonts, holder, voice=voice)
    try:
        ui.step()
        for snap in (Snapshot(state="choosing", reason="welcome", may_borrow=3, limit=15, doors_in_service=(1, 2)),
                     Snapshot(state="door_open", door=2, may_borrow=3, limit=15),
                     Snapshot(state="door_open", door=2, may_borrow=3, limit=15, held_open=True),
                     Snapshot(state="scanning", door=2), Snapshot(state="receipt", receipt=Receipt())):
            holder.snap = snap
            assert ui.step()
            assert ui.current == snap.state and ui.errors == 0
        assert [p for _, p in voice.played] == ["tap_card", "choose_door", "door_open_2", "close_door", "counting",
                                                "thank_you"]
    finally:
        ui.close()


def test_a_missing_file_is_silent_too(tmp_path):
    voice = Voice(enabled=True, folder=tmp_path)
    assert voice.play("tap_card", "en") is False


def test_prompts_for_the_key_moments():
    idle, choosing = Snapshot(state="idle"), Snapshot(state="choosing")
    door = Snapshot(state="door_open", door=3)
    assert prompt_for(None, idle) is None
    assert prompt_for(idle, choosing) == "choose_door"
    assert prompt_for(choosing, door) == "door_open_3"
    assert prompt_for(choosing, Snapshot(state="door_open", door=40)) == "door_open"
    assert prompt_for(door, Snapshot(state="door_open", door=3, held_open=True)) == "close_door"
    assert prompt_for(door, Snapshot(state="receipt")) == "thank_you"
    # A door whose board stopped answering: the screen says it is being checked, so the voice must not say "all done".
    assert prompt_for(door, Snapshot(state="receipt", door=3, reason="door_checking")) == "door_checking"
    assert prompt_for(idle, Snapshot(state="idle", out_of_service=True)) == "out_of_service"
    assert prompt_for(door, door) is None
