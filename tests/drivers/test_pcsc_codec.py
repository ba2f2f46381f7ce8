"""PC/SC card reader codec: GET UID, response APDUs and status words, contactless ATRs, against byte vectors."""

from __future__ import annotations

import pytest

from kiosk.drivers.errors import CodecError
from kiosk.drivers.pcsc import codec
from kiosk.drivers.pcsc.codec import Apdu, Response, StatusWordError

# ATRs as PC/SC part 3 readers (ACR122U, OMNIKEY 5x21, ...) report them for these cards.
MIFARE_1K = "3B 8F 80 01 80 4F 0C A0 00 00 03 06 03 00 01 00 00 00 00 6A"
MIFARE_4K = "3B 8F 80 01 80 4F 0C A0 00 00 03 06 03 00 02 00 00 00 00 69"
ULTRALIGHT = "3B 8F 80 01 80 4F 0C A0 00 00 03 06 03 00 03 00 00 00 00 68"
ISO14443_4 = "3B 81 80 01 80 80"          # e.g. a DESFire: historical bytes from the ATS
CONTACT_T0 = "3B 02 14 50"                # a contact card offering T=0 only: no TCK


def test_get_uid_command_is_ff_ca_00_00_00() -> None:
    assert codec.get_uid_command() == bytes.fromhex("FFCA000000")


@pytest.mark.parametrize("raw, expected", [
    ("04A224B2C35E80 9000", "04A224B2C35E80"),
    ("A1B2C3D4 9000", "A1B2C3D4"),
    ("0102030405060708090A 9000", "0102030405060708090A"),
    ("e0040150a1b2c3d4 9000", "E0040150A1B2C3D4"),    # 8 bytes (ISO 15693 / FeliCa IDm): upper-case hex
])
def test_parse_uid_gives_upper_case_hex_without_separators(raw: str, expected: str) -> None:
    assert codec.parse_uid(bytes.fromhex(raw)) == expected


@pytest.mark.parametrize("raw, sw, words", [
    ("6A81", 0x6A81, "function not supported"),
    ("6300", 0x6300, "could not carry out"),
    ("A1B2C3D4 6282", 0x6282, "end of data"),
    ("6C07", 0x6C07, "the right one is 7"),
    ("6E00", 0x6E00, "class not supported"),
])
def test_parse_uid_refuses_every_status_but_9000(raw: str, sw: int, words: str) -> None:
    with pytest.raises(StatusWordError) as info:
        codec.parse_uid(bytes.fromhex(raw))
    assert info.value.sw == sw
    assert f"{sw >> 8:02X} {sw & 0xFF:02X}" in str(info.value) and words in str(info.value)


@pytest.mark.parametrize("raw", ["", "90", "010203 9000", "0102030405060708090A0B 9000", "9000"])
def test_parse_uid_refuses_short_responses_and_odd_uid_lengths(raw: str) -> None:
    with pytest.raises(CodecError):
        codec.parse_uid(bytes.fromhex(raw))


def test_describe_sw_names_unknown_codes_too() -> None:
    assert codec.describe_sw(0x9000) == "90 00 (success)"
    assert codec.describe_sw(0x6110) == "61 10 (16 more bytes available)"
    assert codec.describe_sw(0x6F12) == "6F 12 (unknown status)"


@pytest.mark.parametrize("apdu, raw", [
    (Apdu(0xFF, 0xCA, 0x00, 0x00, le=0), "FFCA000000"),                        # case 2, Le 00
    (Apdu(0x00, 0xA4, 0x04, 0x00, bytes.fromhex("A0000003")), "00A4040004A0000003"),  # case 3
    (Apdu(0x00, 0xB0, 0x00, 0x00), "00B00000"),                                # case 1
    (Apdu(0x00, 0xA4, 0x04, 0x00, b"\x01\x02", le=256), "00A404000201 0200"),  # case 4, Le 256 -> 00
])
def test_apdu_round_trip(apdu: Apdu, raw: str) -> None:
    data = bytes.fromhex(raw)
    assert apdu.to_bytes() == data
    parsed = Apdu.from_bytes(data)
    assert parsed.to_bytes() == data
    assert (parsed.cla, parsed.ins, parsed.p1, parsed.p2, parsed.data) == (apdu.cla, apdu.ins, apdu.p1, apdu.p2,
                                                                           apdu.data)


def test_apdu_le_00_reads_as_256() -> None:
    assert Apdu.from_bytes(bytes.fromhex("FFCA000000")).le == 256


@pytest.mark.parametrize("raw", ["FFCA00", "00A4040004A000", "00A404000203", "00A40400000102"])
def test_apdu_refuses_bad_lengths(raw: str) -> None:
    with pytest.raises(CodecError):
        Apdu.from_bytes(bytes.fromhex(raw))


def test_response_round_trip() -> None:
    response = Response.from_bytes(bytes.fromhex("04A224B2C35E80 9000"))
    assert response.ok and response.data == bytes.fromhex("04A224B2C35E80") and response.sw == 0x9000
    assert response.to_bytes() == bytes.fromhex("04A224B2C35E809000")
    assert not Response(b"", 0x6A81).ok


@pytest.mark.parametrize("name, atr", [(codec.CARD_MIFARE_CLASSIC_1K, MIFARE_1K), (0x0002, MIFARE_4K),
                                       (0x0003, ULTRALIGHT)])
def test_contactless_atr_matches_real_readers(name: int, atr: str) -> None:
    assert codec.contactless_atr(name) == bytes.fromhex(atr)


def test_tck_is_the_xor_from_t0_on() -> None:
    body = bytes.fromhex(MIFARE_1K)[:-1]
    assert codec.tck(body) == 0x6A
    assert codec.tck(bytes.fromhex("3B81800180")) == 0x80


@pytest.mark.parametrize("atr, protocols, description", [
    (MIFARE_1K, (0, 1), "MIFARE Classic 1K (ISO 14443 A part 3)"),
    (ULTRALIGHT, (0, 1), "MIFARE Ultralight (ISO 14443 A part 3)"),
    (ISO14443_4, (0, 1), "contactless card (ISO 14443-4)"),
    (CONTACT_T0, (0,), "card"),
])
def test_parse_atr(atr: str, protocols: tuple[int, ...], description: str) -> None:
    parsed = codec.parse_atr(bytes.fromhex(atr))
    assert parsed.protocols == protocols
    assert parsed.description == description


def test_parse_atr_reads_pcsc_part3_fields() -> None:
    parsed = codec.parse_atr(bytes.fromhex(MIFARE_4K))
    assert (parsed.standard, parsed.card_name) == (0x03, 0x0002)
    assert parsed.historical == bytes.fromhex("804F0CA0000003060300020000000000")[:15]


@pytest.mark.parametrize("atr, words", [
    ("3B 8F 80 01 80 4F 0C A0 00 00 03 06 03 00 01 00 00 00 00 6B", "check byte is 6B"),  # bad TCK
    ("3B 8F 80 01 80 4F 0C A0 00 00 03 06 03 00 01 00 00 00 00", "TCK"),                # TCK missing
    ("3B 8F 80 01 80 4F 0C", "historical"),                                               # cut short
    ("3B 8F", "cut short inside its interface bytes"),
    ("3C 00", "TS 3B or 3F"),
    ("3B", "at least"),
    ("3B 02 14 50 00", "after its historical bytes"),                                     # T=0 only: no TCK
])
def test_parse_atr_refuses_broken_atrs(atr: str, words: str) -> None:
    with pytest.raises(CodecError, match=words):
        codec.parse_atr(bytes.fromhex(atr))
