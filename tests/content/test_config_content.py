"""The config's [content] section: defaults, the keys and the url checked, errors naming the key."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk.config import ConfigError, ContentConfig
from kiosk.content.manifest import public_text
from tests.ui.test_config_screen import _with

KEY = public_text(Ed25519PrivateKey.generate())


def test_defaults_when_absent(tmp_path):
    cfg = _with(tmp_path, "")
    assert cfg.content == ContentConfig()
    assert cfg.content_dir == cfg.data_dir / "content"


def test_a_full_section(tmp_path):
    cfg = _with(tmp_path, f'[content]\npublic_keys = ["{KEY}"]\nurl = "https://content.minhang.example/city"\n'
                          'check_interval_s = 600\nmax_kbps = 500\ndir = "screen-content"\n')
    c = cfg.content
    assert c.public_keys == (KEY,) and c.url == "https://content.minhang.example/city/"
    assert (c.check_interval_s, c.max_kbps, c.timezone) == (600, 500, "Asia/Shanghai")
    assert cfg.content_dir == cfg.path.parent / "screen-content"


@pytest.mark.parametrize("text, key, words", [
    ('[content]\npublic_keys = ["abc"]\n', "content.public_keys", "not an Ed25519 public key"),
    ('[content]\npublic_keys = [3]\n', "content.public_keys", "not an Ed25519 public key"),
    ('[content]\nurl = "http://x/"\n', "content.public_keys", "refused unless it is signed"),
    (f'[content]\npublic_keys = ["{KEY}"]\nurl = "ftp://x/"\n', "content.url", "not an http"),
    ('[content]\ntimezone = "Mars/Olympus"\n', "content.timezone", "not a time zone"),
    ('[content]\nmax_kbps = -1\n', "content.max_kbps", "out of range"),
    ('[content]\nmanifest = "x"\n', "content.manifest", "unknown key"),
])
def test_errors_name_the_key(tmp_path, text, key, words):
    with pytest.raises(ConfigError) as err:
        _with(tmp_path, text)
    assert err.value.key == key and words in err.value.message
