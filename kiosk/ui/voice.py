"""Voice prompts for the key moments, from the sound files in kiosk/ui/sounds (scripts/make_sounds.py).

Without an audio device, or without the files, the bookcase is silent; a prompt never raises.
"""

from __future__ import annotations

import collections
import logging
from pathlib import Path

import pygame

from kiosk.core.snapshot import Snapshot

LOGGER = logging.getLogger(__name__)

SOUND_DIR = Path(__file__).resolve().parent / "sounds"
PROMPTS = ("tap_card", "choose_door", "door_open", "close_door", "counting", "thank_you", "refused",
           "out_of_service", "door_checking", "find_open", "find_here", "find_elsewhere", "find_none")
DOOR_PROMPTS = 12                       # door_open_1 ... door_open_12; other doors get the generic prompt
EXTENSIONS = (".ogg", ".wav")

_ON_ENTER = {"choosing": "choose_door", "scanning": "counting", "receipt": "thank_you", "refused": "refused"}


def prompt_for(old: Snapshot | None, new: Snapshot) -> str | None:
    """The prompt a change of snapshot calls for (None: nothing to say)."""
    if old is None:
        return None
    if new.state == "door_open" and (old.state != "door_open" or old.door != new.door):
        return f"door_open_{new.door}" if new.door is not None and 1 <= new.door <= DOOR_PROMPTS else "door_open"
    if new.state != old.state and new.state == "receipt" and new.reason == "door_checking":
        return "door_checking"          # the door's state is unknown: not "all done" while its board is checked
    if new.state != old.state and new.state in _ON_ENTER:
        return _ON_ENTER[new.state]
    if new.held_open and not old.held_open:
        return "close_door"
    if new.out_of_service and not old.out_of_service:
        return "out_of_service"
    return None


def sound_file(lang: str, prompt: str, folder: Path = SOUND_DIR) -> Path | None:
    for ext in EXTENSIONS:
        path = folder / lang / f"{prompt}{ext}"
        if path.is_file():
            return path
    return None


class Voice:
    """Plays one prompt at a time (a new one cuts the old one short). ``played`` lists what was asked."""

    def __init__(self, enabled: bool = True, folder: Path = SOUND_DIR) -> None:
        self.enabled = enabled
        self.folder = folder
        self.available = False
        self.played: collections.deque[tuple[str, str]] = collections.deque(maxlen=50)
        self._sounds: dict[tuple[str, str], pygame.mixer.Sound | None] = {}
        self._channel: pygame.mixer.Channel | None = None
        if enabled:
            try:
                if not pygame.mixer.get_init():
                    pygame.mixer.init()
                self.available = True
            except (pygame.error, OSError) as exc:
                LOGGER.info("no audio device (%s): voice prompts stay silent", exc)

    def on_change(self, old: Snapshot | None, new: Snapshot, lang: str) -> str | None:
        prompt = prompt_for(old, new)
        if prompt is not None:
            self.play(prompt, lang)
        return prompt

    def play(self, prompt: str, lang: str) -> bool:
        """Say ``prompt`` in ``lang``; False if it stayed silent."""
        if not self.enabled:
            return False
        self.played.append((lang, prompt))
        if not self.available:
            return False
        try:
            sound = self._load(lang, prompt)
            if sound is None and prompt.startswith("door_open_"):
                sound = self._load(lang, "door_open")
            if sound is None:
                return False
            if self._channel is not None:
                self._channel.stop()
            self._channel = sound.play()
            return self._channel is not None
        except (pygame.error, OSError) as exc:
            LOGGER.warning("voice prompt %s/%s could not play: %s", lang, prompt, exc)
            return False

    def _load(self, lang: str, prompt: str) -> pygame.mixer.Sound | None:
        key = (lang, prompt)
        if key not in self._sounds:
            path = sound_file(lang, prompt, self.folder)
            if path is None:
                LOGGER.warning("no sound file for voice prompt %s/%s in %s", lang, prompt, self.folder)
                self._sounds[key] = None
            else:
                self._sounds[key] = pygame.mixer.Sound(str(path))
        return self._sounds[key]

    def close(self) -> None:
        if self._channel is not None:
            try:
                self._channel.stop()
            except pygame.error:
                pass
        self._sounds.clear()
