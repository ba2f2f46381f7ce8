"""Fleet messages, version 1: one JSON schema per message type, checked on the way out and on the way in.

Validation uses ``fastjsonschema`` (pinned in pyproject.toml): pure Python, no dependencies, and the
schemas compile to plain functions, so checking every one of 10,000 outbox events costs milliseconds.

Every event on ``<root>bookcase/<id>/event`` carries the envelope of docs/design.md §6 —
``{"v": 1, "id": <uuid>, "bookcase": <id>, "seq": <n>, "ts": <ISO 8601 with offset>, "type": <type>}`` —
plus the fields of its type below. Extra fields are allowed (additive changes stay version 1); a
different ``v``, an unknown ``type`` or a missing or mistyped field is refused with a ``MessageError``
whose ``reason`` is one of ``REASONS`` and whose text an operator can read.

The library's content announcement on ``<root>central/content`` is smaller: ``{"v": 1, "version": <n>}``
and optionally ``"url"`` (the content folder, http(s), ending in "/"); see ``check_content``.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from typing import Any, Callable

import fastjsonschema

from kiosk.ids import BOOKCASE_ID_PATTERN

VERSION = 1
# The largest integer every JSON reader keeps exactly (JavaScript's Number.MAX_SAFE_INTEGER); far beyond any
# real sequence number or count, and within the 64-bit columns of SQLite and the gateway's PostgreSQL journal.
MAX_INTEGER = 2 ** 53 - 1

# Why an inbound message was refused: counter name -> what the operator reads.
REASONS: dict[str, str] = {
    "too_large": "the message is larger than the limit",
    "not_json": "the message is not JSON text",
    "not_object": "the message is not a JSON object",
    "unknown_version": "the message is of a version this bookcase does not understand",
    "unknown_type": "the message is of a type this bookcase does not know",
    "invalid": "the message does not match its schema",
    "wrong_sender": "the message claims to come from someone other than its topic says",
    "wrong_topic": "the message arrived on a topic this bookcase does not read",
    "bad_text": "the message holds text no database can store (a lone surrogate or a NUL character)",
    "unreadable": "the message could not be applied, whatever was done with it",
}

_UUID = {"type": "string", "pattern": "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"}
_TS = {"type": "string", "format": "date-time", "maxLength": 40}
_BOOKCASE = {"type": "string", "pattern": BOOKCASE_ID_PATTERN}       # the config's rule (kiosk.ids)
_PATRON = {"type": "string", "pattern": "^[0-9a-f]{32}$"}
_ITEM = {"type": "string", "minLength": 1, "maxLength": 64}
_UID = {"type": "string", "pattern": "^[0-9A-F]{2,32}$"}
_DOOR = {"type": "integer", "minimum": 1, "maximum": 255}
_TEXT = {"type": "string", "maxLength": 500}
_COUNT = {"type": "integer", "minimum": 0, "maximum": MAX_INTEGER}
_SEQ = {"type": "integer", "minimum": 1, "maximum": MAX_INTEGER}
_DATE = {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"}
# Where a bookcase stands (optional in state and holdings): WGS 84 degrees and a street address.
_PLACE = {"latitude": {"type": "number", "minimum": -90, "maximum": 90},
          "longitude": {"type": "number", "minimum": -180, "maximum": 180}, "address": _TEXT}


def _null(schema: dict) -> dict:
    return {"anyOf": [schema, {"type": "null"}]}


_ENVELOPE_PROPS = {"v": {"const": VERSION}, "id": _UUID, "bookcase": _BOOKCASE, "seq": _SEQ, "ts": _TS}
_ENVELOPE = ("v", "id", "bookcase", "seq", "ts", "type")


def _event(type_: str, required: tuple[str, ...] = (), **props: dict) -> dict:
    return {"type": "object", "required": [*_ENVELOPE, *required],
            "properties": {**_ENVELOPE_PROPS, "type": {"const": type_}, **props}}


_SESSION = {"session": _UUID, "door": _DOOR}

# The transaction stream: what kiosk.core puts in the outbox, type by type.
EVENT_SCHEMAS: dict[str, dict] = {
    "session_opened": _event("session_opened", ("session", "door", "kind"), **_SESSION, patron=_null(_PATRON),
                             kind={"type": "string", "maxLength": 32}),
    "session_closed": _event("session_closed", ("session", "door", "kind"), **_SESSION, patron=_null(_PATRON),
                             kind={"type": "string", "maxLength": 32}, loans=_COUNT, returns=_COUNT,
                             missing=_COUNT),
    "loan": _event("loan", ("session", "door", "item", "patron", "due"), **_SESSION, item=_ITEM, uid=_UID,
                   patron=_PATRON, due=_DATE),
    "return": _event("return", ("session", "door", "item"), **_SESSION, item=_ITEM, uid=_UID),
    "restock": _event("restock", ("session", "door", "change"), **_SESSION, item=_null(_ITEM), uid=_UID,
                      change={"type": "string", "maxLength": 32}),
    "restock_started": _event("restock_started", ("doors",), staff=_null({"type": "string", "maxLength": 64}),
                              doors={"type": "array", "items": _DOOR, "maxItems": 255}),
    "item_missing": _event("item_missing", ("session", "door", "uid"), **_SESSION, item=_null(_ITEM), uid=_UID),
    "foreign_object": _event("foreign_object", ("session", "door", "uid"), **_SESSION, uid=_UID,
                             change={"enum": ["added", "removed"]}, reason=_TEXT),
    "uncertain_tag": _event("uncertain_tag", ("session", "door", "uid"), **_SESSION, item=_null(_ITEM), uid=_UID),
    "alarm": _event("alarm", ("alarm",), alarm={"type": "string", "pattern": "^[a-z_]{1,40}$"},
                    door=_null(_DOOR)),
    "alarm_cleared": _event("alarm_cleared", ("alarm",), alarm={"type": "string", "pattern": "^[a-z_]{1,40}$"},
                            door=_null(_DOOR)),
    "refusal": _event("refusal", ("reason",), reason={"type": "string", "maxLength": 64}, patron=_null(_PATRON)),
}

# What a bookcase's kernel tells of its health (kiosk/health.py); each reading only where the kernel has it.
_HEALTH = {"type": "object", "additionalProperties": False,
           "properties": {"uptime_s": _COUNT,
                          "temperature_c": {"type": "number", "minimum": -100, "maximum": 200},
                          "disk_free_mb": _COUNT,
                          "undervoltage": {"type": "boolean"}, "undervoltage_since_boot": {"type": "boolean"},
                          "throttled": {"type": "boolean"}, "throttled_since_boot": {"type": "boolean"},
                          "sd_errors": _COUNT}}

# The other messages: retained state and holdings per bookcase, and what the library's gateway sends.
MESSAGE_SCHEMAS: dict[str, dict] = {
    "state": {
        "type": "object",
        "required": ["v", "id", "bookcase", "ts", "type", "online", "version", "outbox_depth", "last_sync"],
        "properties": {"v": {"const": VERSION}, "id": _UUID, "bookcase": _BOOKCASE, "ts": _TS,
                       "type": {"const": "state"}, "online": {"type": "boolean"}, "name": _TEXT, **_PLACE,
                       "version": {"type": "string", "maxLength": 32}, "outbox_depth": _COUNT,
                       "last_sync": _null(_TS), "reason": _TEXT,
                       "counters": {"type": "object", "additionalProperties": _COUNT, "maxProperties": 64},
                       "content": {"type": "object", "required": ["version"],
                                   "properties": {"version": _COUNT, "last_result": _null({"type": "string"}),
                                                  "last_error": _null(_TEXT), "refused": _COUNT}},
                       "health": _HEALTH,
                       "outbox_oldest": _null(_TS),
                       "doors": {"type": "object", "properties": {
                           "in_service": {"type": "array", "items": _DOOR, "maxItems": 255},
                           "out_of_service": {"type": "array", "items": _DOOR, "maxItems": 255}}}}},
    "holdings": {
        "type": "object",
        "required": ["v", "id", "bookcase", "ts", "type", "items"],
        "properties": {"v": {"const": VERSION}, "id": _UUID, "bookcase": _BOOKCASE, "ts": _TS,
                       "type": {"const": "holdings"}, "name": _TEXT, **_PLACE,
                       "items": {"type": "array", "maxItems": 5000, "items": {
                           "type": "object", "required": ["item"],
                           "properties": {"item": _ITEM, "title": _TEXT, "door": _DOOR, "author": _TEXT,
                                          "isbn": {"type": "string", "pattern": "^[0-9Xx-]{10,17}$"},
                                          "clc": {"type": "string", "maxLength": 40}}}}}},
    "patron_status": {
        "type": "object",
        "required": ["v", "id", "ts", "type", "patron", "patron_class", "status", "loans_elsewhere"],
        "properties": {"v": {"const": VERSION}, "id": _UUID, "ts": _TS, "type": {"const": "patron_status"},
                       "patron": _PATRON, "patron_class": {"type": "string", "pattern": "^[a-z_]{1,32}$"},
                       "status": {"enum": ["active", "blocked", "expired", "lost", "overdue"]},
                       "loans_elsewhere": {"type": "integer", "minimum": 0, "maximum": 1000}}},
    "ack": {
        "type": "object",
        "required": ["v", "id", "ts", "type", "bookcase", "results"],
        "properties": {"v": {"const": VERSION}, "id": _UUID, "ts": _TS, "type": {"const": "ack"},
                       "bookcase": _BOOKCASE,
                       "results": {"type": "array", "maxItems": 10000, "items": {
                           "type": "object", "required": ["event", "status"],
                           "properties": {"event": _UUID, "seq": _SEQ,
                                          "status": {"enum": ["applied", "rejected", "duplicate"]},
                                          "reason": _TEXT,
                                          # a loan's due date as the library system set it (offline loans
                                          # replayed later get the ILS's date, not the bookcase's)
                                          "due": _DATE}}}}},
    "content": {
        "type": "object",
        "required": ["v", "version"],
        "properties": {"v": {"const": VERSION},
                       "version": {"type": "integer", "minimum": 1, "maximum": MAX_INTEGER},
                       # no spaces or control characters: none belongs in a URL, and it is shown to staff
                       "url": {"type": "string", "pattern": "^https?://[^\\s\\x00-\\x1f\\x7f-\\x9f]+/$",
                               "maxLength": 1000}}},
}

_ENVELOPE_SCHEMA = {"type": "object", "required": list(_ENVELOPE),
                    "properties": {**_ENVELOPE_PROPS, "type": {"type": "string", "pattern": "^[a-z_]{1,40}$"}}}


class MessageError(ValueError):
    """A message that must not be applied (or sent): ``reason`` is a key of REASONS, ``detail`` says what."""

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(REASONS[reason] + (f" ({detail})" if detail else ""))


def _compile(schema: dict) -> Callable[[Any], Any]:
    return fastjsonschema.compile(schema, use_default=False)


_EVENTS = {name: _compile(schema) for name, schema in EVENT_SCHEMAS.items()}
_MESSAGES = {name: _compile(schema) for name, schema in MESSAGE_SCHEMAS.items()}
_ENVELOPE_CHECK = _compile(_ENVELOPE_SCHEMA)


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"the number {text[:20]} is out of range")
    return number


def decode(payload: bytes, max_bytes: int) -> dict:
    """Bytes off the wire -> a JSON object, refusing oversized, non-UTF-8, non-JSON and non-object payloads,
    NaN, Infinity and numbers too large for a float (Python's json reads them; no other JSON reader does), and
    lone surrogates or NUL characters anywhere in the text, keys included (``bad_text``)."""
    if not isinstance(payload, (bytes, bytearray)):
        raise MessageError("not_json", f"got {type(payload).__name__}, not bytes")
    if len(payload) > max_bytes:
        raise MessageError("too_large", f"{len(payload)} bytes, the limit is {max_bytes}")
    try:
        msg = json.loads(payload.decode("utf-8"), parse_constant=_no_constant, parse_float=_finite)
    except UnicodeDecodeError:
        raise MessageError("not_json", "not UTF-8 text") from None
    except (ValueError, RecursionError) as exc:
        raise MessageError("not_json", str(exc)[:120]) from None
    if not isinstance(msg, dict):
        raise MessageError("not_object", f"got {type(msg).__name__}")
    if b"\\u" in payload:
        _storable(msg)          # only a \uXXXX escape can make either: strict UTF-8 and JSON carry neither raw
    return msg


def _storable(value: Any, where: str = "") -> None:
    """Refuse a lone surrogate or a NUL anywhere (keys too). SQLite, the log and every JSON encoder choke on a
    surrogate; PostgreSQL's text (the gateway's journal) cannot hold a NUL, so every write of the message there
    would fail, again and again."""
    stack = [(value, where)]
    while stack:
        value, where = stack.pop()
        if isinstance(value, str):
            texts = [value]
        elif isinstance(value, dict):
            texts = list(value)
            stack.extend((v, f"{where}.{k}"[:80]) for k, v in value.items())
        elif isinstance(value, list):
            texts = []
            stack.extend((v, f"{where}[{i}]") for i, v in enumerate(value))
        else:
            continue
        for text in texts:
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                raise MessageError("bad_text", f"a lone surrogate at {where.lstrip('.') or 'the top'}") from None
            if "\0" in text:
                raise MessageError("bad_text", f"a NUL character at {where.lstrip('.') or 'the top'}")


def _version(msg: dict) -> None:
    if not isinstance(msg, dict):       # decode() never returns one; a caller of check_* may pass anything
        raise MessageError("not_object", f"got {type(msg).__name__}")
    if msg.get("v") != VERSION or isinstance(msg.get("v"), bool):
        raise MessageError("unknown_version", f"v is {str(msg.get('v'))[:40]!r}, this bookcase reads v{VERSION}")


def _run(check: Callable[[Any], Any], msg: dict, timed: bool = True) -> None:
    try:
        check(msg)
    except fastjsonschema.JsonSchemaValueException as exc:
        # The message may name a key of the message itself (a state's counters): shortened, never trusted.
        raise MessageError("invalid", exc.message.replace("data.", "", 1).replace("data ", "", 1)[:200]) from None
    if not timed:
        return                          # the content announcement: its schema has no time ("ts" is an extra)
    # RFC 3339 allows what Python's fromisoformat refuses (a lower-case t or z), and times at the ends of the
    # calendar that cannot be moved to UTC (0001-01-01T00:00+14:00): the store compares times in UTC, so
    # every time must parse and convert here, or a message that can never be applied would come back forever.
    try:
        datetime.fromisoformat(msg["ts"]).astimezone(timezone.utc)
    except (ValueError, OverflowError):
        raise MessageError("invalid", f"ts {msg['ts']!r} is not a time this bookcase can read") from None


def check_event(msg: dict) -> dict:
    """An event of the transaction stream: version, known type, then that type's schema."""
    _version(msg)
    type_ = msg.get("type")
    check = _EVENTS.get(type_) if isinstance(type_, str) else None       # a list or an object cannot be a key
    if check is None:
        raise MessageError("unknown_type", f"type {str(type_)[:40]!r}")
    _run(check, msg)
    return msg


def check_message(kind: str, msg: dict) -> dict:
    """A state, holdings, patron_status or ack message: version, the type the topic implies, its schema."""
    _version(msg)
    if msg.get("type") != kind:
        raise MessageError("unknown_type", f"type {str(msg.get('type'))[:40]!r} where {kind!r} belongs")
    _run(_MESSAGES[kind], msg)
    return msg


def check_content(msg: dict) -> dict:
    """The library's content announcement: version, then its schema."""
    _version(msg)
    _run(_MESSAGES["content"], msg, timed=False)
    return msg


def check_outgoing(msg: dict) -> bool:
    """An outbox event about to be published. True if its type has a schema; an unknown type passes with
    the envelope checked only (newer code may add types; consumers refuse what they do not know). A lone
    surrogate or a NUL is refused as it is inbound: every consumer would refuse the event."""
    _version(msg)
    _storable(msg)
    if isinstance(msg.get("type"), str) and msg["type"] in _EVENTS:
        check_event(msg)
        return True
    _run(_ENVELOPE_CHECK, msg)
    return False


def encode(msg: dict) -> bytes:
    """A message as compact UTF-8 JSON (Chinese titles stay readable on the wire)."""
    return json.dumps(msg, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode("utf-8")
