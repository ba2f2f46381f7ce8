"""`kiosk screenshot`, `kiosk run` when the screen cannot start, a missing CJK font, and `demo --ui`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pygame
import pytest

from kiosk.cli import main
from kiosk.ui.fonts import FontError, find_cjk_fonts
from tests.scenarios.harness import ROOT, write_config


def test_screenshot_writes_a_png_of_the_asked_size(tmp_path, capsys):
    out = tmp_path / "shots" / "door.png"
    assert main(["screenshot", "--state", "door_open", "--lang", "en", "--out", str(out), "--size", "1920x1080"]) == 0
    assert pygame.image.load(str(out)).get_size() == (1920, 1080)
    assert main(["screenshot", "--state", "nonsense", "--out", str(out)]) == 2
    assert main(["screenshot", "--state", "attract", "--out", str(out), "--size", "big"]) == 2
    assert "no state 'nonsense'" in capsys.readouterr().err


def test_no_cjk_font_is_a_clear_error(tmp_path):
    with pytest.raises(FontError) as err:
        find_cjk_fonts([str(tmp_path)])
    assert "apt-get install fonts-noto-cjk" in str(err.value)


def test_kiosk_run_says_so_when_the_screen_cannot_start(tmp_path):
    config = write_config(tmp_path)
    env = {**os.environ, "SDL_VIDEODRIVER": "no-such-driver"}
    result = subprocess.run([sys.executable, "-m", "kiosk", "run", "--config", str(config)], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "the touch screen cannot start" in result.stderr and "--headless" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert not (tmp_path / "data").exists()          # nothing started: no database, no serial port opened


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
