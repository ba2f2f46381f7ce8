"""The demo's large-screen content: drawn by ffmpeg, signed with a demo key, served over loopback HTTP.

``make demo`` plays the library's side: scripts/make-demo-content.sh draws the clips and pictures of
config/demo-content/content.toml, a signing key made for the demo signs them, and ``kiosk content serve``'s
server publishes the folder. The bookcase's config gets a ``[content]`` table with the demo key and the
server's address. Later in the story the library publishes an update (a new-book notice), announced over
MQTT when the fleet runs, and the bookcase swaps it in.
"""

from __future__ import annotations

import logging
import subprocess
import tomllib
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from kiosk.content import ContentError
from kiosk.content.authoring import keygen, load_private_key, sign
from kiosk.content.manifest import public_text
from kiosk.content.server import ContentServer

LOGGER = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "make-demo-content.sh"
CHECK_INTERVAL_S = 10          # the demo: an update shows within seconds even without the broker

# The update the story publishes: a notice of new books, today, after every 3 items of the playlist (so the
# videos and recommendations go on playing around it).
NOTICE = """
[[items]]
id = "new-books"
kind = "book"
title = "思君令人老，努力加餐饭"
why = {{ zh = "今日新书到柜：闵图短视频荐书", en = "New today, from the library's short-video picks" }}
where = {{ zh = "“找书”可查柜门", en = "“Find a book”: which door" }}
cover = "covers/sijun.png"
duration_s = 10
every = 3
when = {{ from = {first}, until = {last} }}
"""


class DemoContent:
    def __init__(self, workdir: Path) -> None:
        self.folder = workdir / "content-src"
        self.key_path = workdir / "content-signing.key"        # demo only: a library keeps its key offline
        self.server: ContentServer | None = None
        self.version = 0

    def prepare(self) -> str:
        """Draw, sign and serve the content; the ``[content]`` table for the bookcase's config. Raises
        kiosk.content.ContentError with the reason when it cannot be drawn (ffmpeg or the CJK font missing) or
        signed (a damaged demo key): the demo then runs without it."""
        done = subprocess.run([str(SCRIPT), str(self.folder)], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise ContentError(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else
                               f"{SCRIPT.name} exited with {done.returncode}")
        key = load_private_key(self.key_path) if self.key_path.exists() else keygen(self.key_path)
        self.version = sign(self.folder, key).version
        self.server = ContentServer(self.folder).start()
        return ("\n[content]\n"
                f"public_keys = [\"{public_text(key)}\"]   # the demo's own key, made in {self.key_path}\n"
                f"url = \"{self.server.url}\"\n"
                f"check_interval_s = {CHECK_INTERVAL_S}\n")

    def items(self) -> int:
        return len(tomllib.loads((self.folder / "content.toml").read_text(encoding="utf-8"))["items"])

    def publish_notice(self, timezone: str) -> int:
        """The library adds today's new-book notice (today where the bookcase is, give or take a day) and
        signs again; the new version."""
        source = self.folder / "content.toml"
        text = source.read_text(encoding="utf-8")
        if 'id = "new-books"' not in text:
            today = datetime.now(ZoneInfo(timezone)).date()
            text += NOTICE.format(first=today - timedelta(days=1), last=today + timedelta(days=1))
            source.write_text(text, encoding="utf-8")
        self.version = sign(self.folder, load_private_key(self.key_path)).version
        return self.version

    def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None
