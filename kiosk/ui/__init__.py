"""The touch screen: pygame screens drawn from core snapshots, touches posted as intents (docs/design.md §3).

Nothing here imports kiosk.drivers or kiosk.sync, calls a device or writes SQLite. Importing this package
does not import pygame; ``kiosk.ui.loop`` and the screens do.
"""

import os

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")      # no pygame banner in the bookcase's log
# SDL's video init would put its own SIGTERM/SIGINT handlers over Python's (turning them into SDL_QUIT
# events): the daemon's stop on SIGTERM from systemd must not depend on whether a window ever opened.
os.environ.setdefault("SDL_NO_SIGNAL_HANDLERS", "1")


class UIError(Exception):
    """The screen cannot start (no display, no CJK font); the message says what to do."""
