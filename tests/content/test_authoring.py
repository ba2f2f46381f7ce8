"""The library's side: content.toml and assets -> a signed manifest a bookcase verifies; errors that name the place."""

from __future__ import annotations

import hashlib
import json
import os
import time

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk.content import ContentError
from kiosk.content.authoring import (
    AuthoringError,
    KeyFileError,
    build,
    check_folder,
    describe,
    keygen,
    load_private_key,
    sign,
)
from kiosk.content.manifest import MANIFEST, SIGNATURE, verify
from tests.content.site import write_folder


def test_build_then_sign_round_trip(tmp_path):
    folder = write_folder(tmp_path / "c")
    key = Ed25519PrivateKey.generate()
    before = int(time.time())
    signed = sign(folder, key)
    raw, sig = (folder / MANIFEST).read_bytes(), (folder / SIGNATURE).read_bytes()
    manifest = verify(raw, sig, (key.public_key(),))
    assert manifest == signed and manifest.library == "minhang" and manifest.version >= before
    assert [i.id for i in manifest.items] == ["intro", "winter", "book-1", "wechat"]
    assert manifest.fallback == ("intro",)
    for path, asset in manifest.assets.items():
        data = (folder / path).read_bytes()
        assert asset.sha256 == hashlib.sha256(data).hexdigest() and asset.size == len(data)
    assert set(manifest.assets) == {"video/intro.mp4", "img/winter.png", "img/cover.jpg"}
    winter = manifest.item("winter")
    assert winter.priority == 10 and str(winter.when.first) == "2026-12-01" and winter.when.days == {5, 6}
    assert manifest.item("book-1").text("title", "en") == "Dream of the Red Chamber"
    # For humans: sorted keys, indented, Chinese as it is.
    text = raw.decode("utf-8")
    assert "红楼梦" in text and "\\u" not in text and "\n  " in text
    assert list(json.loads(raw)) == sorted(json.loads(raw))
    # Written by rename: no temporary files left beside them.
    assert sorted(p.name for p in folder.iterdir()) == ["content.toml", "img", MANIFEST, SIGNATURE, "video"]
    # Another key does not verify it.
    with pytest.raises(ContentError, match="does not match"):
        verify(raw, sig, (Ed25519PrivateKey.generate().public_key(),))


def test_versions_only_grow(tmp_path):
    folder = write_folder(tmp_path / "c")
    key = Ed25519PrivateKey.generate()
    far = int(time.time()) + 10_000
    assert sign(folder, key, version=far).version == far
    assert sign(folder, key).version == far + 1          # the default stays above the previous one
    with pytest.raises(AuthoringError, match=f"version {far} is not above"):
        build(folder, version=far)
    assert json.loads(build(folder, version=far + 5))["version"] == far + 5


def test_check_folder_finds_a_changed_asset(tmp_path):
    folder = write_folder(tmp_path / "c")
    key = Ed25519PrivateKey.generate()
    sign(folder, key)
    assert check_folder(folder, (key.public_key(),)).library == "minhang"
    data = bytearray((folder / "img/winter.png").read_bytes())
    data[100] ^= 1
    (folder / "img/winter.png").write_bytes(bytes(data))
    with pytest.raises(ContentError, match="img/winter.png: does not match"):
        check_folder(folder, (key.public_key(),))


def test_describe_says_when(tmp_path):
    folder = write_folder(tmp_path / "c")
    manifest = sign(folder, Ed25519PrivateKey.generate())
    assert describe(manifest.item("intro")) == "intro (video) video/intro.mp4: always"
    assert describe(manifest.item("winter")) == ("winter (image, priority 10) img/winter.png: 2026-12-01 to "
                                                 "2026-12-31, sat,sun, 09:00-12:00 13:00-24:00")


def _item_source(**fields: str) -> str:
    body = "\n".join(f"{k} = {v}" for k, v in fields.items())
    return f'library = "minhang"\n[[items]]\n{body}\n'


BAD = [
    ("missing asset", _item_source(id='"intro"', kind='"video"', asset='"video/gone.mp4"'),
     r"item 1 \('intro'\): asset 'video/gone.mp4': missing asset file"),
    ("bad window", _item_source(id='"late"', kind='"video"', asset='"video/intro.mp4"')
     + '[items.when]\ntimes = ["22:00-02:00"]\n', r"item 1 \('late'\): bad window: .*over midnight"),
    ("hour 25", _item_source(id='"late"', kind='"video"', asset='"video/intro.mp4"')
     + '[items.when]\ntimes = ["25:00-26:00"]\n', r"item 1 \('late'\): bad window: .*not a time of day"),
    ("until before from", _item_source(id='"x"', kind='"video"', asset='"video/intro.mp4"')
     + "[items.when]\nfrom = 2026-12-31\nuntil = 2026-12-01\n", r"item 1 \('x'\): bad window: 'until'"),
    ("bad day", _item_source(id='"x"', kind='"video"', asset='"video/intro.mp4"')
     + '[items.when]\ndays = ["saturday"]\n', r"item 1 \('x'\): days \['saturday'\]"),
    ("unknown field", _item_source(id='"x"', kind='"video"', asset='"video/intro.mp4"', colour='"red"'),
     r"item 1 \('x'\): unknown field\(s\) colour"),
    ("no id", _item_source(kind='"video"', asset='"video/intro.mp4"'), r"item 1 .*needs an id"),
    ("bad kind", _item_source(id='"x"', kind='"audio"'), r"item 1 \('x'\): kind is 'audio'"),
    ("book without title", _item_source(id='"b"', kind='"book"', author='"曹雪芹"'), r"'b'.*needs title"),
    ("outside the folder", _item_source(id='"x"', kind='"video"', asset='"../secret.mp4"'),
     r"item 1 \('x'\): asset '../secret.mp4': an asset path is relative"),
    ("space in a name", _item_source(id='"x"', kind='"video"', asset='"video/my intro.mp4"'), r"rename the file"),
    ("unknown fallback", 'fallback = ["nope"]\n' + _item_source(id='"x"', kind='"video"', asset='"video/intro.mp4"'),
     r"fallback names items the manifest does not have: nope"),
    ("no library", "[[items]]\nid = \"x\"\nkind = \"video\"\n", r"library is missing"),
    ("not TOML", "library = minhang\n", r"not valid TOML: .*line 1"),
]


@pytest.mark.parametrize("source, error", [(s, e) for _, s, e in BAD], ids=[n for n, _, _ in BAD])
def test_errors_name_the_file_and_the_item(tmp_path, source, error):
    folder = write_folder(tmp_path / "c", source=source, sizes={"video/intro.mp4": 1000})
    with pytest.raises(AuthoringError, match=error) as caught:
        sign(folder, Ed25519PrivateKey.generate())
    assert str(caught.value).startswith(str(folder / "content.toml")) or "not above" in str(caught.value)
    assert not (folder / MANIFEST).exists() and not (folder / SIGNATURE).exists()


def test_a_folder_without_content_toml(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(AuthoringError, match="no content.toml here"):
        build(tmp_path / "empty")


def test_keygen_writes_a_private_file_once(tmp_path):
    out = tmp_path / "k.pem"
    key = keygen(out)
    assert out.stat().st_mode & 0o777 == 0o600
    assert load_private_key(out).public_key().public_bytes_raw() == key.public_key().public_bytes_raw()
    with pytest.raises(KeyFileError, match="exists already; not overwritten"):
        keygen(out)
    assert load_private_key(out).public_key().public_bytes_raw() == key.public_key().public_bytes_raw()


def test_key_files_that_will_not_do(tmp_path):
    with pytest.raises(KeyFileError, match="no such key file"):
        load_private_key(tmp_path / "missing.pem")
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a key\n")
    with pytest.raises(KeyFileError, match="not a PEM private key"):
        load_private_key(garbage)
    ec_key = tmp_path / "ec.pem"
    ec_key.write_bytes(ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    with pytest.raises(KeyFileError, match="not an Ed25519 key"):
        load_private_key(ec_key)
    locked = tmp_path / "locked.pem"
    locked.write_bytes(Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret")))
    with pytest.raises(KeyFileError, match="protected by a password"):
        load_private_key(locked)
    os.chmod(garbage, 0o000)
    if os.geteuid() != 0:          # root reads any file
        with pytest.raises(KeyFileError, match="cannot read"):
            load_private_key(garbage)
