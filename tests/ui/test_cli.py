"""`kiosk screenshot`, `kiosk run` serving on when the screen cannot start, a missing CJK font, and `demo --ui`."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pygame
import pytest

from kiosk.cli import main
from kiosk.config import load_config
from kiosk.store.ledger import Store
from simulators.bookcase import SimulatedBookcase
from kiosk.ui import fonts
from kiosk.ui.fonts import FontError, Fonts, find_cjk_fonts
from tests.scenarios.harness import ROOT, wait_for, write_config

ISSUE_STATES = ("attract", "identifying", "refused", "door_open", "scanning", "receipt", "out_of_service", "staff_pin",
                "staff_restock", "diagnostics")


def test_screenshot_writes_a_png_of_the_asked_size(tmp_path, capsys):
    out = tmp_path / "shots" / "door.png"
    assert main(["screenshot", "--state", "door_open", "--lang", "en", "--out", str(out), "--size", "1920x1080"]) == 0
    assert pygame.image.load(str(out)).get_size() == (1920, 1080)
    assert main(["screenshot", "--state", "nonsense", "--out", str(out)]) == 2
    assert main(["screenshot", "--state", "attract", "--out", str(out), "--size", "big"]) == 2
    assert "no state 'nonsense'" in capsys.readouterr().err


def test_screenshot_of_every_state_the_issue_names_in_both_languages(tmp_path):
    pictures = {}
    for state in ISSUE_STATES:
        for lang in ("zh", "en"):
            out = tmp_path / f"{state}-{lang}.png"
            assert main(["screenshot", "--state", state, "--lang", lang, "--out", str(out)]) == 0
            image = pygame.image.load(str(out))
            assert image.get_size() == (1080, 1920)
            small = pygame.transform.scale(image, (108, 192))
            colours = {small.get_at((x, y))[:3] for x in range(0, 108, 2) for y in range(0, 192, 2)}
            assert len(colours) > 8, f"{out.name} is nearly blank"
            pictures[hashlib.sha256(pygame.image.tobytes(image, "RGB")).hexdigest()] = out.name
    assert len(pictures) == 2 * len(ISSUE_STATES)          # twenty different pictures


def test_screenshot_needs_no_display(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "SDL_VIDEODRIVER")}
    out = tmp_path / "receipt.png"
    result = subprocess.run([sys.executable, "-m", "kiosk", "screenshot", "--state", "receipt", "--out", str(out)],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert pygame.image.load(str(out)).get_size() == (1080, 1920)


def test_no_cjk_font_is_a_clear_error(tmp_path):
    with pytest.raises(FontError) as err:
        find_cjk_fonts([str(tmp_path)])
    assert "apt-get install fonts-noto-cjk" in str(err.value)
    latin = Path(pygame.__file__).parent / "freesansbold.ttf"         # a real font, without Chinese
    with pytest.raises(FontError, match="has no Chinese glyphs.*fonts-noto-cjk"):
        Fonts(latin)


def test_kiosk_run_and_screenshot_stop_with_that_error_when_no_cjk_font_is_installed(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(fonts, "FONT_DIRS", (str(tmp_path / "fonts"),))
    config = write_config(tmp_path)
    assert main(["run", "--config", str(config)]) == 1
    err = capsys.readouterr().err
    assert "the touch screen cannot start: no Chinese (CJK) font found" in err and "fonts-noto-cjk" in err
    assert "Traceback" not in err
    assert not (tmp_path / "data").exists()          # nothing started: no database, no serial port opened
    assert main(["screenshot", "--state", "attract", "--out", str(tmp_path / "a.png")]) == 1
    assert "fonts-noto-cjk" in capsys.readouterr().err and not (tmp_path / "a.png").exists()


def test_kiosk_run_serves_without_a_screen_that_cannot_start_and_raises_the_alarm(tmp_path):
    config = write_config(tmp_path, doors=2)
    cfg = load_config(config)
    env = {**os.environ, "SDL_VIDEODRIVER": "no-such-driver", "SDL_AUDIODRIVER": "dummy"}
    with SimulatedBookcase(cfg, tmp_path / "sim", books_per_door=3, air_ms=1, pop_delay_ms=30):
        proc = subprocess.Popen([sys.executable, "-m", "kiosk", "run", "--config", str(config)], cwd=ROOT, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            def alarm() -> list[dict]:
                if proc.poll() is not None or not cfg.db_path.exists():
                    return []
                store = Store(cfg.db_path, cfg.bookcase.id)
                try:
                    return [e for e in store.outbox() if e["type"] == "alarm" and e.get("device") == "screen"]
                finally:
                    store.close()
            wait_for(lambda: alarm() or proc.poll() is not None, 60, "the screen alarm")
            assert proc.poll() is None, "the daemon stopped instead of serving without its screen"
            (raised,) = alarm()
            assert raised["alarm"] == "hardware_fault" and "the touch screen cannot start" in raised["message"]
            assert cfg.intent_socket.exists()            # the core serves: doors can still be chosen headless
        finally:
            proc.send_signal(signal.SIGTERM)
            out = proc.communicate(timeout=60)[0]
    assert proc.returncode == 0, out[-3000:]
    assert "keeps serving without it" in out and "Traceback" not in out


def test_demo_ui_mode_plays_the_scenario_on_the_screen(tmp_path):
    (tmp_path / "config").mkdir()
    config = tmp_path / "config" / "demo.toml"
    shutil.copy(ROOT / "config" / "demo.toml", config)
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy"}
    result = subprocess.run([sys.executable, "-m", "simulators.demo", "--config", str(config), "--ui", "--exit",
                             "--pause", "0"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-3000:]
    assert "door 2: receipt for card" in out and "borrowed 2, returned 0" in out
    assert "borrowed 0, returned 1" in out
    assert "screen open" not in out                  # the demo's window, not `kiosk run`'s
    assert "Traceback" not in out
