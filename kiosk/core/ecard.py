"""The library's dynamic e-card QR token: format, issuing and verification (pure; no clock of its own).

The WeChat account shows a QR code that changes every minute. Its text is::

    CB1<base32 of 43 bytes, no padding>            (72 characters, QR alphanumeric mode: version 3-L)

and the 43 bytes are, big-endian::

    0      1 version (1)
    1     16 patron key: the first 16 bytes of HMAC-SHA256(library secret, card number) — the same
             key the bookcase stores (docs/design.md §7), so no card number travels in the code
    17     4 issued at, Unix seconds
    21     2 lifetime in seconds (the library uses 60)
    23     4 nonce, random per code
    27    16 tag: the first 16 bytes of HMAC-SHA256(e-card key as UTF-8 bytes, bytes 0-26)

Base32 (RFC 4648, upper case, '=' padding removed) keeps the text within the QR alphanumeric character
set, so the code stays small enough to scan from a phone screen in sunlight. The e-card key is a
separate secret from the patron-key secret: the bookcases only verify, the WeChat side only issues.
A bookcase refuses a code that does not decode, whose tag does not match (forged or altered), that is
past its lifetime or issued in the future beyond the allowed clock skew, or that it has already
accepted (replay: the caller keeps used token ids until they expire). docs/ecard.md is the format as
the WeChat side reads it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import struct
from dataclasses import dataclass

PREFIX = "CB1"
VERSION = 1
_BODY = struct.Struct(">B16sIHI")       # version, patron key, issued, lifetime, nonce
TAG_BYTES = 16
TOKEN_BYTES = _BODY.size + TAG_BYTES    # 43
DEFAULT_LIFETIME_S = 60
CLOCK_SKEW_S = 30                        # a phone's clock may run this far ahead of the bookcase's

# Reasons, also keys of kiosk.core.policy.MESSAGES.
MALFORMED, FORGED, EXPIRED, USED = "ecard_malformed", "ecard_forged", "ecard_expired", "ecard_used"


class EcardError(ValueError):
    """The code is refused; ``reason`` is one of the module's reason constants."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


@dataclass(frozen=True)
class Ecard:
    patron_key: str         # 32 hex characters, as in the patron cache
    issued: int
    lifetime_s: int
    nonce: int
    token_id: str           # what the bookcase remembers to refuse a replay

    @property
    def expires(self) -> int:
        return self.issued + self.lifetime_s


def looks_like_token(text: str) -> bool:
    """True for scanner text that is meant as an e-card code (even a damaged one)."""
    return text.strip().upper().startswith(PREFIX)


def issue(key: str, patron_key: str, now: int, lifetime_s: int = DEFAULT_LIFETIME_S,
          nonce: int | None = None) -> str:
    """Make a code for ``patron_key`` (32 hex characters). For the library's WeChat side and for tests."""
    try:
        raw_key = bytes.fromhex(patron_key)
    except ValueError:
        raise ValueError("the patron key must be 32 hex characters") from None
    if len(raw_key) != 16:
        raise ValueError("the patron key must be 32 hex characters")
    if not 0 < lifetime_s < 65536:
        raise ValueError("the lifetime must be between 1 and 65535 seconds")
    nonce = int.from_bytes(os.urandom(4), "big") if nonce is None else nonce
    body = _BODY.pack(VERSION, raw_key, now, lifetime_s, nonce)
    token = body + _tag(key, body)
    return PREFIX + base64.b32encode(token).decode().rstrip("=")


def verify(key: str, text: str, now: float, skew_s: int = CLOCK_SKEW_S) -> Ecard:
    """Check a scanned code; returns the e-card or raises EcardError. Replays are the caller's to check."""
    text = text.strip().upper()
    if not text.startswith(PREFIX):
        raise EcardError(MALFORMED, "not an e-card code")
    encoded = text[len(PREFIX):]
    try:
        token = base64.b32decode(encoded + "=" * (-len(encoded) % 8))
    except (binascii.Error, ValueError):
        raise EcardError(MALFORMED, "the code is damaged (not base32)") from None
    if len(token) != TOKEN_BYTES:
        raise EcardError(MALFORMED, f"the code has {len(token)} bytes, expected {TOKEN_BYTES}")
    body, tag = token[:_BODY.size], token[_BODY.size:]
    version, raw_key, issued, lifetime_s, nonce = _BODY.unpack(body)
    if version != VERSION:
        raise EcardError(MALFORMED, f"unknown e-card version {version}")
    # Compare in constant time: a forger learns nothing from how fast the refusal comes.
    if not hmac.compare_digest(tag, _tag(key, body)):
        raise EcardError(FORGED, "the code's signature does not match (forged or altered)")
    if issued > now + skew_s:
        raise EcardError(EXPIRED, f"the code was issued {issued - now:.0f} s in the future (phone clock wrong?)")
    if now >= issued + lifetime_s:
        raise EcardError(EXPIRED, f"the code expired {now - issued - lifetime_s:.0f} s ago")
    return Ecard(raw_key.hex(), issued, lifetime_s, nonce, token_id=tag.hex())


def _tag(key: str, body: bytes) -> bytes:
    return hmac.new(key.encode(), body, hashlib.sha256).digest()[:TAG_BYTES]
