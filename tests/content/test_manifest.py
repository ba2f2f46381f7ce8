"""The manifest: parsed only once its Ed25519 signature checks out, and refused with a reason otherwise."""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk.content import ContentError
from kiosk.content.manifest import DEFAULT_DURATION_S, parse, public_key, public_text, sign, verify

SHA = "ab" * 32


def doc(**change) -> dict:
    base = {"format": 1, "library": "minhang", "version": 3, "created": "2026-11-30T18:00:00+08:00",
            "assets": {"video/intro.mp4": {"sha256": SHA, "bytes": 10}, "covers/duanwu.png": {"sha256": "cd" * 32,
                                                                                            "bytes": 5}},
            "items": [{"id": "intro", "kind": "video", "asset": "video/intro.mp4"},
                      {"id": "duanwu", "kind": "book", "title": {"zh": "端午", "en": "Duanwu"}, "author": "王充闾",
                       "cover": "covers/duanwu.png", "duration_s": 12},
                      {"id": "wechat", "kind": "qr", "title": "闵图微信公众号", "url": "https://mp.weixin.qq.com/"}],
            "fallback": ["wechat"]}
    base.update(change)
    return base


def raw(d: dict) -> bytes:
    return json.dumps(d, ensure_ascii=False).encode()


@pytest.fixture(scope="module")
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def test_a_signed_manifest_verifies_and_reads_back(key):
    data = raw(doc())
    m = verify(data, sign(data, key), (public_key(public_text(key)),))
    assert (m.library, m.version, m.raw) == ("minhang", 3, data)
    assert [i.id for i in m.items] == ["intro", "duanwu", "wechat"]
    assert m.item("duanwu").text("title", "en") == "Duanwu"
    assert m.item("duanwu").text("author", "en") == "王充闾"          # no English: the Chinese
    assert m.item("duanwu").text("why") == ""
    assert m.item("intro").seconds is None                            # a video: its own length
    assert m.item("wechat").seconds == DEFAULT_DURATION_S
    assert m.item("duanwu").assets() == ("covers/duanwu.png",)
    assert m.fallback == ("wechat",)


def test_any_of_several_keys_may_sign_so_a_key_can_be_rotated(key):
    data = raw(doc())
    new = Ed25519PrivateKey.generate()
    keys = (key.public_key(), new.public_key())
    assert verify(data, sign(data, new), keys).version == 3
    assert verify(data, sign(data, key), keys).version == 3


@pytest.mark.parametrize("spoil", ["one byte of the manifest", "another key", "signature bit", "short",
                                   "not base64", "no keys"])
def test_anything_but_the_librarys_exact_signed_bytes_is_refused(key, spoil):
    data = raw(doc())
    sig = sign(data, key)
    keys = (key.public_key(),)
    if spoil == "one byte of the manifest":
        data = data.replace(b'"version": 3', b'"version": 4')
    elif spoil == "another key":
        sig = sign(data, Ed25519PrivateKey.generate())
    elif spoil == "signature bit":
        b = bytearray(base64.b64decode(sig))
        b[10] ^= 1
        sig = base64.b64encode(bytes(b))
    elif spoil == "short":
        sig = base64.b64encode(base64.b64decode(sig)[:60])
    elif spoil == "not base64":
        sig = b"%%%%"
    else:
        keys = ()
    with pytest.raises(ContentError, match="signature|public key"):
        verify(data, sig, keys)


@pytest.mark.parametrize("change, message", [
    ({"format": 2}, "does not match format"),
    ({"items": [{"id": "x", "kind": "video"}]}, "needs asset"),
    ({"items": [{"id": "x", "kind": "qr", "title": "t"}]}, "needs url"),
    ({"items": [{"id": "x", "kind": "image", "asset": "video/other.mp4"}]}, "not among the manifest's assets"),
    ({"items": [{"id": "x", "kind": "qr", "title": "t", "url": "u"}] * 2}, "unique; repeated: x"),
    ({"fallback": ["nope"]}, "fallback names items .* nope"),
    ({"assets": {"../etc/passwd": {"sha256": SHA, "bytes": 1}}}, "does not match format"),
    ({"assets": {"/abs.mp4": {"sha256": SHA, "bytes": 1}}}, "does not match format"),
    ({"assets": {"v/a.mp4": {"sha256": "AB" * 32, "bytes": 1}}}, "does not match format"),
    ({"items": [{"id": "x", "kind": "qr", "title": "t", "url": "u", "shell": "rm -rf"}]}, "does not match format"),
    ({"items": [{"id": "x", "kind": "qr", "title": "t", "url": "u", "duration_s": 0}]}, "does not match format"),
])
def test_a_malformed_manifest_is_refused_naming_what_is_wrong(change, message):
    with pytest.raises(ContentError, match=message):
        parse(raw(doc(**change)))


@pytest.mark.parametrize("data, message", [(b"\xff\xfe", "not JSON"), (b"[1, 2]", "does not match"),
                                           (b" " * (1 << 20 + 1), "more than the limit")])
def test_bytes_that_are_no_manifest_are_refused(data, message):
    with pytest.raises(ContentError, match=message):
        parse(data)


@pytest.mark.parametrize("text", ["", "not-base64!", base64.b64encode(b"x" * 31).decode()])
def test_a_bad_public_key_is_named(text):
    with pytest.raises(ValueError, match="Ed25519 public key"):
        public_key(text)
