"""Log lines that cannot be forged: text from outside (MQTT topics and payloads, tags, scans) is escaped.

A control character from a remote message — a newline, a carriage return, an ANSI escape — written raw to the
log could start a fake log line or repaint an operator's terminal. ``shown`` escapes such characters the way
Python's repr does (``\\n``, ``\\x1b``, ``\\u2028``) and shortens long text; ``SafeFormatter`` applies the same
to every formatted message, so one forgotten call cannot let them through.
"""

from __future__ import annotations

import logging
import re

# C0 and C1 controls, DEL, and the Unicode line/paragraph separators and bidirectional overrides.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match) -> str:
    return repr(match.group())[1:-1]


def shown(text: object, limit: int = 200) -> str:
    """``text`` as it may appear in a log line: controls escaped, at most ``limit`` characters (then "…")."""
    s = str(text)
    if len(s) > limit:
        s = s[:limit] + "…"
    return _CONTROL.sub(_escape, s)


class SafeFormatter(logging.Formatter):
    """A Formatter whose messages never hold a raw control character; tracebacks keep their own lines."""

    def formatMessage(self, record: logging.LogRecord) -> str:   # noqa: N802 - logging's name
        record.message = _CONTROL.sub(_escape, record.message)
        return super().formatMessage(record)


def configure(level: int, fmt: str, datefmt: str | None = None, stream=None) -> None:
    """``logging.basicConfig`` with a SafeFormatter on the root handler."""
    logging.basicConfig(level=level, format=fmt, datefmt=datefmt, stream=stream)
    for handler in logging.getLogger().handlers:
        handler.setFormatter(SafeFormatter(fmt, datefmt))
