"""`kiosk run` end to end: the daemon downloads the library's signed content and its screen plays it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk.config import load_config
from kiosk.content.authoring import sign
from kiosk.content.manifest import public_text
from kiosk.content.server import ContentServer
from simulators.bookcase import SimulatedBookcase
from tests.content.media import make_clip
from tests.scenarios.harness import ROOT, wait_for, write_config

SOURCE = """library = "minhang"
[[items]]
id = "welcome"
kind = "video"
asset = "video/welcome.mp4"
[[items]]
id = "wechat"
kind = "qr"
title = "闵图微信公众号"
url = "https://www.example.org/minhang-library/wechat"
"""


def test_kiosk_run_installs_the_signed_content_and_plays_it_on_the_screen(tmp_path):
    site = tmp_path / "site"
    make_clip(site / "video" / "welcome.mp4", (40, 120, 200), seconds=1.0)
    (site / "content.toml").write_text(SOURCE, encoding="utf-8")
    key = Ed25519PrivateKey.generate()
    version = sign(site, key).version
    log = tmp_path / "daemon.log"
    with ContentServer(site).start() as server:
        extra = (f'[content]\npublic_keys = ["{public_text(key)}"]\nurl = "{server.url}"\n'
                 '[screen]\nfullscreen = false\nvoice = false\non_hours = ["00:00-24:00"]\n')
        config = write_config(tmp_path, doors=2, extra=extra)
        cfg = load_config(config)
        env = {**os.environ, "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy"}
        with SimulatedBookcase(cfg, tmp_path / "sim", books_per_door=2, air_ms=1, pop_delay_ms=30), \
                log.open("w") as out:
            proc = subprocess.Popen([sys.executable, "-m", "kiosk", "run", "--config", str(config)], cwd=ROOT,
                                    env=env, stdout=out, stderr=subprocess.STDOUT, text=True)
            try:
                wait_for(lambda: proc.poll() is not None or f"screen content: version {version}" in log.read_text(),
                         60, "the screen to load the installed content")
                assert proc.poll() is None, log.read_text()[-3000:]
            finally:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=60)
    text = log.read_text()
    assert proc.returncode == 0, text[-3000:]
    assert f"content version {version} from {server.url} installed and playing" in text
    assert "cannot be shown" not in text and "Traceback" not in text
    assert (cfg.content_dir / "current" / "manifest.json").read_bytes() == (site / "manifest.json").read_bytes()
