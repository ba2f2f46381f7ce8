"""The config's [screen] section: defaults when absent, checked values, unknown keys refused."""

from __future__ import annotations

import pytest

from kiosk.config import ConfigError, ScreenConfig, load_config
from tests.scenarios.harness import write_config


def _with(tmp_path, text: str):
    path = write_config(tmp_path)
    path.write_text(path.read_text(encoding="utf-8") + text, encoding="utf-8")
    return load_config(path)


def test_defaults_when_absent(tmp_path):
    assert load_config(write_config(tmp_path)).screen == ScreenConfig(1080, 1920, True, "zh", True)


def test_landscape_english_silent(tmp_path):
    cfg = _with(tmp_path, '[screen]\nwidth = 1920\nheight = 1080\nfullscreen = false\nlanguage = "en"\nvoice = false\n')
    assert cfg.screen == ScreenConfig(1920, 1080, False, "en", False)


@pytest.mark.parametrize("text, key, words", [
    ('[screen]\nlanguage = "fr"\n', "screen.language", "not one of"),
    ('[screen]\nwidth = 100\n', "screen.width", "out of range"),
    ('[screen]\nfullscreen = "yes"\n', "screen.fullscreen", "expected true or false"),
    ('[screen]\nrotate = 90\n', "screen.rotate", "unknown key"),
    ('[screen]\nvideo_volume = 1.5\n', "screen.video_volume", "out of range"),
    ('[screen]\nvideo_volume = "loud"\n', "screen.video_volume", "expected"),
])
def test_errors_name_the_key(tmp_path, text, key, words):
    with pytest.raises(ConfigError) as err:
        _with(tmp_path, text)
    assert err.value.key == key and words in err.value.message
