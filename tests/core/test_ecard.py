"""The e-card QR token: round trip, size, and every way a code is refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kiosk.core import ecard
from kiosk.core.policy import MESSAGES, patron_key

KEY = "library-ecard-key-0123"
PATRON = patron_key("secret-0123456789abc", "3101120000018")
NOW = 1_795_000_000


def _raw(token: str) -> bytearray:
    body = token[3:]
    return bytearray(base64.b32decode(body + "=" * (-len(body) % 8)))


def _text(raw: bytearray) -> str:
    return "CB1" + base64.b32encode(bytes(raw)).decode().rstrip("=")


def test_round_trip_gives_the_patron_key_and_expiry():
    token = ecard.issue(KEY, PATRON, NOW, nonce=7)
    card = ecard.verify(KEY, token, NOW + 10)
    assert (card.patron_key, card.issued, card.expires, card.nonce) == (PATRON, NOW, NOW + 60, 7)


def test_code_fits_qr_alphanumeric_mode_version_3():
    token = ecard.issue(KEY, PATRON, NOW)
    alnum = set("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:")
    assert set(token) <= alnum
    assert len(token) <= 77          # QR version 3-L holds 77 alphanumeric characters


def test_scanner_case_and_line_ending_do_not_matter():
    token = ecard.issue(KEY, PATRON, NOW)
    assert ecard.verify(KEY, " " + token.lower() + "\r\n", NOW).patron_key == PATRON


@pytest.mark.parametrize("offset, ok", [(0, True), (59, True), (60, False), (3600, False),
                                        (-30, True), (-31, False)])
def test_lifetime_and_clock_skew(offset, ok):
    token = ecard.issue(KEY, PATRON, NOW)
    if ok:
        assert ecard.verify(KEY, token, NOW + offset, skew_s=30).patron_key == PATRON
    else:
        with pytest.raises(ecard.EcardError) as err:
            ecard.verify(KEY, token, NOW + offset, skew_s=30)
        assert err.value.reason == ecard.EXPIRED


def test_wrong_key_is_forged():
    token = ecard.issue("another-library-key-000", PATRON, NOW)
    with pytest.raises(ecard.EcardError) as err:
        ecard.verify(KEY, token, NOW)
    assert err.value.reason == ecard.FORGED


def test_a_changed_patron_key_is_forged():
    raw = _raw(ecard.issue(KEY, PATRON, NOW))
    raw[5] ^= 0x01                   # someone else's patron key, same tag
    forged = _text(raw)
    with pytest.raises(ecard.EcardError) as err:
        ecard.verify(KEY, forged, NOW)
    assert err.value.reason == ecard.FORGED


def test_an_extended_lifetime_is_forged():
    raw = _raw(ecard.issue(KEY, PATRON, NOW))
    raw[21:23] = (3600).to_bytes(2, "big")
    forged = _text(raw)
    with pytest.raises(ecard.EcardError) as err:
        ecard.verify(KEY, forged, NOW + 120)
    assert err.value.reason == ecard.FORGED


@pytest.mark.parametrize("text", ["CB1", "CB1!!!!", "CB1" + "A" * 10, "CB1" + "A" * 200, "3101120000018"])
def test_damaged_codes_are_malformed(text):
    with pytest.raises(ecard.EcardError) as err:
        ecard.verify(KEY, text, NOW)
    assert err.value.reason == ecard.MALFORMED


@given(st.text(max_size=120))
def test_any_scanner_text_is_refused_cleanly_or_accepted(text):
    try:
        ecard.verify(KEY, "CB1" + text, NOW)
    except ecard.EcardError as exc:
        assert exc.reason in (ecard.MALFORMED, ecard.FORGED, ecard.EXPIRED)


def test_every_refusal_has_patron_words_in_both_languages():
    for reason in (ecard.MALFORMED, ecard.FORGED, ecard.EXPIRED, ecard.USED, "ecard_unsupported"):
        zh, en = MESSAGES[reason]
        assert "二维码" in zh or "电子读者证" in zh
        assert "e-card" in en.lower() or "qr code" in en.lower()


def test_issue_rejects_a_bad_patron_key():
    with pytest.raises(ValueError):
        ecard.issue(KEY, "not-hex", NOW)


def test_the_documented_test_vector():
    key = patron_key("example-library-secret-0001", "3101120000018")
    assert key == "9ee2dae11beb206819b224d87d4fa057"
    token = ecard.issue("example-ecard-key-000001", key, 1795000000, 60, nonce=0x01020304)
    assert token == "CB1AGPOFWXBDPVSA2AZWISNQ7KPUBLWV7MGYAADYAICAMCDVPEXZL3NJSIK553R4Z3BUZDVA"
    assert token in (Path(__file__).parents[2] / "docs" / "ecard.md").read_text(encoding="utf-8")


DOC = Path(__file__).parents[2] / "docs" / "ecard.md"
VECTOR = "CB1AGPOFWXBDPVSA2AZWISNQ7KPUBLWV7MGYAADYAICAMCDVPEXZL3NJSIK553R4Z3BUZDVA"


def _documented_python() -> dict:
    text = DOC.read_text(encoding="utf-8")
    (block,) = re.findall(r"```python\n(.*?)```", text, re.S)
    namespace: dict = {}
    exec(compile(block, str(DOC), "exec"), namespace)       # the WeChat side's code, exactly as documented
    return namespace


def test_the_documented_python_makes_the_test_vector_and_codes_the_bookcase_accepts():
    doc = _documented_python()
    key = doc["patron_key"]("example-library-secret-0001", "3101120000018")
    assert key == patron_key("example-library-secret-0001", "3101120000018") == "9ee2dae11beb206819b224d87d4fa057"
    assert doc["issue"]("example-ecard-key-000001", key, 60, now=1795000000, nonce=0x01020304) == VECTOR
    fresh = doc["issue"]("example-ecard-key-000001", key, now=NOW)            # a random nonce, as in production
    assert ecard.verify("example-ecard-key-000001", fresh, NOW + 1).patron_key == key


@pytest.mark.parametrize("now, ok", [(1794999969, False), (1794999970, True), (1795000059, True), (1795000060, False)])
def test_the_documented_validity_window_of_the_test_vector(now, ok):
    assert "from Unix time 1794999970 to 1795000059" in DOC.read_text(encoding="utf-8")
    if ok:
        assert ecard.verify("example-ecard-key-000001", VECTOR, now).patron_key == "9ee2dae11beb206819b224d87d4fa057"
    else:
        with pytest.raises(ecard.EcardError) as err:
            ecard.verify("example-ecard-key-000001", VECTOR, now)
        assert err.value.reason == ecard.EXPIRED


def test_the_documented_refusal_table_matches_the_patron_messages():
    text = DOC.read_text(encoding="utf-8")
    for reason in (ecard.MALFORMED, ecard.FORGED, ecard.EXPIRED, ecard.USED, "ecard_unsupported"):
        (row,) = [line for line in text.splitlines() if f"| `{reason}` |" in line]
        assert row.rstrip(" |").endswith(MESSAGES[reason][0])


def test_a_non_ascii_ecard_key_is_used_as_its_utf8_bytes():
    token = ecard.issue("书柜密钥-0123456789", PATRON, NOW, nonce=1)
    raw = _raw(token)
    assert bytes(raw[27:]) == hmac.new("书柜密钥-0123456789".encode("utf-8"), bytes(raw[:27]), hashlib.sha256).digest()[:16]
