"""Log lines that cannot be forged: text from outside (MQTT topics and payloads, tags, scans) is escaped.

A control character from a remote message — a newline, a carriage return, an ANSI escape — written raw to the
log could start a fake log line or repaint an operator's terminal. ``shown`` escapes such characters the way
Python's repr does (``\\n``, ``\\x1b``, ``\\u2028``) and shortens long text; ``SafeFormatter`` applies the same
to every formatted message, so one forgotten call cannot let them through.
"""

from __future__ import annotations

import logging
import re
import traceback

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
    """A Formatter whose messages never hold a raw control character. A traceback keeps its lines, but the text
    of each exception in it (which may quote a remote message) is escaped like a message."""

    def formatMessage(self, record: logging.LogRecord) -> str:   # noqa: N802 - logging's name
        record.message = _CONTROL.sub(_escape, record.message)
        return super().formatMessage(record)

    def formatException(self, ei) -> str:                        # noqa: N802 - logging's name
        try:
            return "".join(_traceback(traceback.TracebackException(*ei))).rstrip("\n")
        except Exception:                                         # never lose the log line over its traceback
            return _CONTROL.sub(_escape, super().formatException(ei))


def _traceback(te: traceback.TracebackException, seen: set[int] | None = None) -> list[str]:
    """``te.format()``, with each exception's own text ("KeyError: '…'") on one escaped line."""
    if getattr(te, "exceptions", None):
        raise NotImplementedError("an exception group: logged as one escaped line")
    seen = set() if seen is None else seen
    seen.add(id(te))
    lines: list[str] = []
    if te.__cause__ is not None and id(te.__cause__) not in seen:
        lines += _traceback(te.__cause__, seen)
        lines.append("\nThe above exception was the direct cause of the following exception:\n\n")
    elif te.__context__ is not None and not te.__suppress_context__ and id(te.__context__) not in seen:
        lines += _traceback(te.__context__, seen)
        lines.append("\nDuring handling of the above exception, another exception occurred:\n\n")
    if te.stack:
        lines.append("Traceback (most recent call last):\n")
        lines += te.stack.format()         # file names, line numbers and this program's source lines
    text = "".join(te.format_exception_only()).rstrip("\n")
    lines.append(_CONTROL.sub(_escape, text) + "\n")
    return lines


def configure(level: int, fmt: str, datefmt: str | None = None, stream=None) -> None:
    """``logging.basicConfig`` with a SafeFormatter on the root handler."""
    logging.basicConfig(level=level, format=fmt, datefmt=datefmt, stream=stream)
    for handler in logging.getLogger().handlers:
        handler.setFormatter(SafeFormatter(fmt, datefmt))
