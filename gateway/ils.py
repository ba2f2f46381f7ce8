"""The gateway's edge to the ILS: the SIP2 pool built from [ils], how the ILS is doing, SIP2 values in our terms.

Everything SIP2 itself (messages, checksums, login, resends, keep-alive) is gateway.sip2's; this module only
builds its pool from the config, keeps the ILS's health for the status and the retained state message, and
reads the answers' dates and circulation statuses.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from datetime import date

from gateway.config import IlsConfig

LOGGER = logging.getLogger(__name__)

# SIP2 circulation status (item information 18): the ones under which the ILS has the item lent to someone.
# 04 charged, 05 charged (not to be recalled before a date), 07 recalled, 11 claimed returned, 12 lost.
CHARGED = frozenset({"04", "05", "07", "11", "12"})
_SIP_DATE = re.compile(r"\s*(\d{4})(\d{2})(\d{2})")
_ISO_DATE = re.compile(r"\s*(\d{4})-(\d{2})-(\d{2})")


def due_date(text: str | None) -> str | None:
    """A SIP2 date ("YYYYMMDDZZZZHHMMSS", or ISO as some servers send) -> "YYYY-MM-DD"; None if not a date."""
    if not text:
        return None
    m = _SIP_DATE.match(text) or _ISO_DATE.match(text)
    if not m:
        return None
    try:
        return date(int(m[1]), int(m[2]), int(m[3])).isoformat()
    except ValueError:
        return None


def charged(circulation_status: str | None) -> bool:
    return (circulation_status or "").strip() in CHARGED


class IlsHealth:
    """Up or down, since when, the last error: written by the workers, read by status and the state message."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.up: bool | None = None          # None: not tried yet
        self.since = time.time()
        self.last_error = ""
        self.requests = 0
        self.lost = 0

    def ok(self) -> None:
        with self._lock:
            self.requests += 1
            if self.up is not True:
                if self.up is False:
                    LOGGER.info("the ILS answers again (it was unreachable for %.0f s)", time.time() - self.since)
                self.up, self.since = True, time.time()

    def down(self, error: str) -> None:
        with self._lock:
            self.last_error = error[:300]
            if self.up is not False:
                LOGGER.warning("the ILS cannot be reached: %s; events wait in the journal", error)
                self.up, self.since = False, time.time()

    def lost_answer(self, error: str) -> None:
        with self._lock:
            self.lost += 1
            self.last_error = error[:300]

    def snapshot(self) -> dict:
        with self._lock:
            return {"up": self.up, "since": round(self.since, 3), "last_error": self.last_error or None,
                    "requests": self.requests, "lost_answers": self.lost}


def build_pool(cfg: IlsConfig):
    """The SIP2 connection pool for [ils] (gateway.sip2): ``pool_size`` logged-in connections."""
    from gateway.sip2 import Sip2Client, Sip2Pool

    def factory() -> Sip2Client:
        return Sip2Client(cfg.host, cfg.port, user=cfg.user, password=cfg.password, location=cfg.location,
                          institution=cfg.institution, charset=cfg.charset, timeout_s=cfg.timeout_s,
                          connect_timeout_s=cfg.connect_timeout_s, resends=cfg.resends,
                          error_detection=cfg.error_detection)
    return Sip2Pool(factory, cfg.pool_size, keepalive_s=cfg.keepalive_s,
                    backoff=(cfg.backoff_min_s, cfg.backoff_max_s))
