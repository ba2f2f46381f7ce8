"""APDU and ATR helpers of the PC/SC contactless card reader (PC/SC part 3, ISO 7816-3/-4). Pure bytes, no I/O.

GET UID, the pseudo-APDU a PC/SC contactless reader answers itself (PC/SC part 3, 3.2.2.1.3)::

    command   +------+------+------+------+------+
              | CLA  | INS  |  P1  |  P2  |  Le  |
              | 0xFF | 0xCA | 0x00 | 0x00 | 0x00 |      P1 0x00 = UID, 0x01 = historical bytes (ATS)
              +------+------+------+------+------+      Le 0x00 = all of it
    response  +----------------------+------+------+
              | UID (4, 7 or 10 B)   | SW1  | SW2  |      90 00 = success
              +----------------------+------+------+

ATR of a contactless storage card (MIFARE & co.) as the reader builds it (PC/SC part 3, 3.1.3.2.3)::

    3B 8F 80 01 | 80 4F 0C A0 00 00 03 06 SS NN NN 00 00 00 00 | TCK
    TS T0 TD1 TD2 | historical bytes: category 80, AID tag 4F, length 0C, RID A0 00 00 03 06 (PC/SC),
                    SS = standard (03 = ISO 14443 A part 3), NN NN = card name (00 01 = MIFARE Classic 1K)
    TCK = XOR of every byte from T0 to the last historical byte (ISO 7816-3, 8.2.5)
"""

from __future__ import annotations

from dataclasses import dataclass

from kiosk.drivers.errors import CodecError

CLA_PCSC = 0xFF           # PC/SC part 3: class of the reader's own pseudo-APDUs
INS_GET_DATA = 0xCA
P1_UID = 0x00
P1_HISTORICAL = 0x01

SW_OK = 0x9000
SW_END_OF_DATA = 0x6282           # warning: fewer bytes than Le
SW_NO_INFORMATION = 0x6300        # PC/SC part 3: the operation failed
SW_WRONG_LENGTH = 0x6700
SW_FUNCTION_NOT_SUPPORTED = 0x6A81
SW_WRONG_P1_P2 = 0x6B00
SW_WRONG_LE = 0x6C00              # 6C XX: XX is the right Le
SW_INS_NOT_SUPPORTED = 0x6D00
SW_CLA_NOT_SUPPORTED = 0x6E00

UID_LENGTHS = range(4, 11)        # ISO 14443 A: 4, 7, 10; B PUPI: 4; ISO 15693 / FeliCa IDm: 8

PCSC_RID = bytes.fromhex("A000000306")
STANDARDS = {0x03: "ISO 14443 A part 3", 0x07: "ISO 14443 B part 3", 0x0B: "ISO 15693 part 3",
             0x11: "FeliCa"}
CARD_NAMES = {0x0001: "MIFARE Classic 1K", 0x0002: "MIFARE Classic 4K", 0x0003: "MIFARE Ultralight",
              0x0026: "MIFARE Mini", 0x003A: "MIFARE Ultralight C", 0x0014: "ICODE SLI", 0x003B: "FeliCa"}
STANDARD_ISO14443A_3 = 0x03
CARD_MIFARE_CLASSIC_1K = 0x0001

_SW_TEXT = {
    0x9000: "success",
    0x6282: "end of data reached before Le bytes",
    0x6300: "no information given (the reader could not carry out the command)",
    0x6581: "memory failure",
    0x6700: "wrong length",
    0x6800: "function in CLA not supported",
    0x6981: "command incompatible with the card",
    0x6982: "security status not satisfied",
    0x6986: "command not allowed",
    0x6A81: "function not supported",
    0x6A82: "file or application not found",
    0x6B00: "wrong parameters P1-P2",
    0x6D00: "instruction not supported",
    0x6E00: "class not supported",
    0x6F00: "no precise diagnosis",
}


def describe_sw(sw: int) -> str:
    """``"6A 81 (function not supported)"``: a status word in words, for log lines."""
    text = _SW_TEXT.get(sw)
    if text is None and sw >> 8 == 0x6C:
        text = f"wrong Le, the right one is {sw & 0xFF}"
    if text is None and sw >> 8 == 0x61:
        text = f"{sw & 0xFF} more bytes available"
    return f"{sw >> 8:02X} {sw & 0xFF:02X} ({text or 'unknown status'})"


@dataclass(frozen=True)
class Apdu:
    """A short command APDU (ISO 7816-4, 5.1): header, optional data (Lc) and optional Le (0 = 256)."""

    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes = b""
    le: int | None = None

    def to_bytes(self) -> bytes:
        if len(self.data) > 255:
            raise CodecError(f"short APDU data is at most 255 bytes, got {len(self.data)}")
        out = bytes([self.cla, self.ins, self.p1, self.p2])
        if self.data:
            out += bytes([len(self.data)]) + self.data
        if self.le is not None:
            if not 0 <= self.le <= 256:
                raise CodecError(f"short APDU Le is 0..256, got {self.le}")
            out += bytes([self.le & 0xFF])
        return out

    @classmethod
    def from_bytes(cls, raw: bytes) -> Apdu:
        """Parse the four short cases of ISO 7816-3, 12.1.3; CodecError for anything else (e.g. extended)."""
        raw = bytes(raw)
        if len(raw) < 4:
            raise CodecError(f"an APDU has at least 4 header bytes, got {len(raw)}")
        cla, ins, p1, p2 = raw[:4]
        body = raw[4:]
        if not body:                                    # case 1: header only
            return cls(cla, ins, p1, p2)
        if len(body) == 1:                              # case 2: Le (0x00 means 256)
            return cls(cla, ins, p1, p2, le=body[0] or 256)
        lc = body[0]
        if lc and len(body) == 1 + lc:                  # case 3: Lc data
            return cls(cla, ins, p1, p2, body[1:])
        if lc and len(body) == 2 + lc:                  # case 4: Lc data Le
            return cls(cla, ins, p1, p2, body[1:-1], body[-1] or 256)
        raise CodecError(f"APDU body of {len(body)} bytes does not match Lc {lc} (extended APDUs not supported)")


def get_uid_command() -> bytes:
    """``FF CA 00 00 00``: ask the reader for the card's UID, all of it."""
    return Apdu(CLA_PCSC, INS_GET_DATA, P1_UID, 0x00, le=0).to_bytes()


@dataclass(frozen=True)
class Response:
    """A response APDU: data, then the two status bytes SW1 SW2."""

    data: bytes
    sw: int

    @property
    def ok(self) -> bool:
        return self.sw == SW_OK

    def to_bytes(self) -> bytes:
        return bytes(self.data) + self.sw.to_bytes(2, "big")

    @classmethod
    def from_bytes(cls, raw: bytes) -> Response:
        raw = bytes(raw)
        if len(raw) < 2:
            raise CodecError(f"a response APDU ends with SW1 SW2, got {len(raw)} byte(s): {raw.hex(' ')}")
        return cls(raw[:-2], int.from_bytes(raw[-2:], "big"))


class StatusWordError(CodecError):
    """The card or reader answered with a status word other than 90 00."""

    def __init__(self, sw: int, what: str) -> None:
        self.sw = sw
        super().__init__(f"{what} answered {describe_sw(sw)}")


def parse_uid(raw: bytes) -> str:
    """The UID in a GET UID response as upper-case hex without separators, e.g. ``"04A224B2C53A80"``.

    Raises StatusWordError unless SW is 90 00, CodecError when the UID is not 4..10 bytes long.
    """
    response = Response.from_bytes(raw)
    if not response.ok:
        raise StatusWordError(response.sw, "GET UID")
    if len(response.data) not in UID_LENGTHS:
        raise CodecError(f"GET UID returned a UID of {len(response.data)} bytes, expected 4 to 10")
    return response.data.hex().upper()


# --- ATR --------------------------------------------------------------------------------------------


def tck(body: bytes) -> int:
    """The check byte TCK for an ATR without it: XOR of every byte from T0 on (TS is not included)."""
    value = 0
    for byte in body[1:]:
        value ^= byte
    return value


def contactless_atr(card_name: int = CARD_MIFARE_CLASSIC_1K, standard: int = STANDARD_ISO14443A_3) -> bytes:
    """The ATR a PC/SC part 3 reader makes up for a contactless storage card (MIFARE Classic 1K by default)."""
    historical = bytes([0x80, 0x4F, 0x0C]) + PCSC_RID + bytes([standard]) + card_name.to_bytes(2, "big") + bytes(4)
    # T0: TD1 follows (bit 8), K = number of historical bytes; TD1 = 80: TD2 follows, T=0;
    # TD2 = 01: T=1. A T other than 0 is indicated, so TCK is mandatory (ISO 7816-3, 8.2.5).
    body = bytes([0x3B, 0x80 | len(historical), 0x80, 0x01]) + historical
    return body + bytes([tck(body)])


@dataclass(frozen=True)
class Atr:
    """A parsed ATR: the protocols it offers, its historical bytes, and for PC/SC part 3 storage cards the
    standard and card name."""

    raw: bytes
    protocols: tuple[int, ...]
    historical: bytes
    standard: int | None = None
    card_name: int | None = None

    @property
    def description(self) -> str:
        """Operator words, e.g. ``"MIFARE Classic 1K (ISO 14443 A part 3)"``."""
        if self.card_name is None:
            # PC/SC part 3, 3.1.3.2.3: 3B 8n 80 01 + the ATS's historical bytes is an ISO 14443-4 card.
            iso14443_4 = self.raw[:1] == b"\x3b" and self.raw[1] & 0xF0 == 0x80 and self.raw[2:4] == b"\x80\x01"
            return "contactless card (ISO 14443-4)" if iso14443_4 else "card"
        name = CARD_NAMES.get(self.card_name, f"card type {self.card_name:04X}")
        standard = STANDARDS.get(self.standard or 0, f"standard {self.standard:02X}")
        return f"{name} ({standard})"


def parse_atr(raw: bytes) -> Atr:
    """Parse an ATR (ISO 7816-3, 8.2); CodecError if it is cut short or its TCK is wrong."""
    raw = bytes(raw)
    if len(raw) < 2:
        raise CodecError(f"an ATR has at least TS and T0, got {len(raw)} byte(s)")
    if raw[0] not in (0x3B, 0x3F):
        raise CodecError(f"ATR must start with TS 3B or 3F, got {raw[0]:02X}")
    pos = 1
    indicator = raw[pos]          # T0, then each TDi: high nibble says which of TA TB TC TD follow
    historical_len = raw[pos] & 0x0F
    pos += 1
    protocols: list[int] = []
    while True:
        present = indicator >> 4
        count = bin(present).count("1")
        if pos + count > len(raw):
            raise CodecError("ATR is cut short inside its interface bytes")
        pos += count - (1 if present & 0x8 else 0)
        if not present & 0x8:
            break
        indicator = raw[pos]
        protocols.append(indicator & 0x0F)
        pos += 1
    end = pos + historical_len
    if end > len(raw):
        raise CodecError(f"ATR announces {historical_len} historical bytes but has {len(raw) - pos}")
    historical = raw[pos:end]
    offered = tuple(dict.fromkeys(protocols)) or (0,)
    # ISO 7816-3, 8.2.5: TCK is present unless T=0 is the only protocol indicated.
    if offered != (0,):
        if len(raw) != end + 1:
            raise CodecError(f"ATR should end with TCK after byte {end}, has {len(raw)} bytes")
        if tck(raw[:end]) != raw[end]:
            raise CodecError(f"ATR check byte is {raw[end]:02X}, the bytes XOR to {tck(raw[:end]):02X}")
    elif len(raw) != end:
        raise CodecError(f"ATR has {len(raw) - end} byte(s) after its historical bytes")
    standard = card_name = None
    # PC/SC part 3: 80 4F 0C RID(5) SS NN NN RFU(4) marks a storage card the reader speaks for.
    if len(historical) >= 11 and historical[:3] == b"\x80\x4f\x0c" and historical[3:8] == PCSC_RID:
        standard, card_name = historical[8], int.from_bytes(historical[9:11], "big")
    return Atr(raw, offered, historical, standard, card_name)
