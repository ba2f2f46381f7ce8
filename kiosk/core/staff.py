"""Staff PINs: salted PBKDF2 hashes, checked in constant time (pure; the store keeps the hashes)."""

from __future__ import annotations

import hashlib
import hmac
import os
import re

PIN_PATTERN = re.compile(r"\d{4,8}")
ITERATIONS = 20_000      # a few ms on a Raspberry Pi 4: the core loop must not stall on a PIN check
_SCHEME = "pbkdf2-sha256"


def valid_pin(pin: str) -> bool:
    return bool(PIN_PATTERN.fullmatch(pin))


def hash_pin(pin: str, salt: bytes | None = None) -> str:
    """``pbkdf2-sha256$<iterations>$<salt hex>$<hash hex>``; PINs are 4 to 8 digits."""
    if not valid_pin(pin):
        raise ValueError("a staff PIN is 4 to 8 digits")
    salt = os.urandom(16) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha256", pin.encode(), salt, ITERATIONS)
    return f"{_SCHEME}${ITERATIONS}${salt.hex()}${digest.hex()}"


def check_pin(pin: str, stored: str) -> bool:
    try:
        scheme, iterations, salt, digest = stored.split("$")
        if scheme != _SCHEME:
            return False
        actual = hashlib.pbkdf2_hmac("sha256", pin.encode(), bytes.fromhex(salt), int(iterations))
    except ValueError:
        return False
    return hmac.compare_digest(actual.hex(), digest)
