"""Staff accounts for the console: argon2id password hashes, session tokens, CSRF tokens, login rate limiting.

A session is a random 256-bit token in an HttpOnly, SameSite=Strict cookie (Secure behind the library's TLS
proxy); the journal keeps only its SHA-256, with the account and the session's CSRF token. Every action (a POST)
must carry that CSRF token; two roles: a *viewer* looks, an *operator* may also act (acknowledge, retry, resolve).
Wrong passwords are counted per account and per address: after ``attempts`` in ``WINDOW_S`` a login is refused
until the window has passed, with the same answer whether the account exists or not.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import deque
from typing import Callable

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

WINDOW_S = 300.0
MIN_PASSWORD = 10
_HASHER = PasswordHasher()                    # argon2id, the library's recommended parameters
# A hash of no password, checked when the account does not exist: a wrong name costs as long as a wrong password.
_DUMMY = _HASHER.hash(secrets.token_hex(16))


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"a console password has at least {MIN_PASSWORD} characters")
    return _HASHER.hash(password)


def check_password(password: str, stored: str | None) -> bool:
    try:
        return _HASHER.verify(stored or _DUMMY, password) and stored is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


class LoginLimiter:
    """Failed logins per key (an account, an address) in a sliding window."""

    def __init__(self, attempts: int, window_s: float = WINDOW_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.attempts = attempts
        self.window_s = window_s
        self.clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        seen = self._failures.setdefault(key, deque())
        while seen and seen[0] <= now - self.window_s:
            seen.popleft()
        return seen

    def blocked(self, *keys: str) -> float:
        """Seconds until a login for any of ``keys`` may be tried again; 0 if it may now."""
        now = self.clock()
        with self._lock:
            waits = [seen[0] + self.window_s - now for k in keys if len(seen := self._recent(k, now)) >= self.attempts]
        return max(waits, default=0.0)

    def failed(self, *keys: str) -> None:
        now = self.clock()
        with self._lock:
            for key in keys:
                self._recent(key, now).append(now)
            if len(self._failures) > 10_000:          # forget keys that have gone quiet (a scan of many names)
                for key in [k for k, v in self._failures.items() if not v]:
                    del self._failures[key]

    def succeeded(self, *keys: str) -> None:
        with self._lock:
            for key in keys:
                self._failures.pop(key, None)
