"""Fleet message schemas: every event type the core writes has one; bad messages are refused with a reason."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import pytest

from kiosk.sync import schema
from kiosk.sync.schema import MessageError

CORE = Path(__file__).resolve().parents[2] / "kiosk" / "core"


def event(type_: str = "loan", **fields) -> dict:
    base = {"v": 1, "id": str(uuid.uuid4()), "bookcase": "MH-0001", "seq": 12, "ts": "2026-11-25T09:30:00.125+08:00",
            "type": type_}
    if type_ == "loan":
        base.update(session=str(uuid.uuid4()), door=2, item="MH20200007", uid="E004A1B2C3D4E5F6", patron="0" * 32,
                    due="2026-12-25")
    base.update(fields)
    return {k: v for k, v in base.items() if v is not None}


def test_every_event_type_the_core_writes_has_a_schema():
    written = set()
    for path in CORE.glob("*.py"):
        written |= set(re.findall(r'"type": "([a-z_]+)"', path.read_text(encoding="utf-8")))
    assert written, "found no event types in kiosk/core"
    missing = written - set(schema.EVENT_SCHEMAS)
    assert not missing, f"add a schema to kiosk/sync/schema.py for: {', '.join(sorted(missing))}"


@pytest.mark.parametrize("payload, reason", [
    (b"x" * 2000, "too_large"),
    (b'{"v": 1,', "not_json"),
    (b"\xff\xfe", "not_json"),
    (b"[1]", "not_object"),
    (b'"loan"', "not_object"),
])
def test_decode_refuses(payload, reason):
    with pytest.raises(MessageError) as exc:
        schema.decode(payload, max_bytes=1024)
    assert exc.value.reason == reason and str(exc.value)


@pytest.mark.parametrize("msg, reason", [
    (event(v=2), "unknown_version"),
    (event(v=True), "unknown_version"),
    (event(v=None), "unknown_version"),
    (event(type="teleport"), "unknown_type"),
    (event(item=None), "invalid"),
    (event(item=""), "invalid"),
    (event(door=0), "invalid"),
    (event(patron="3101120000018"), "invalid"),
    (event(ts="2026-11-25 09:30"), "invalid"),
    (event(ts="2026-11-25T09:30:00"), "invalid"),        # no offset: an event time must say its zone
    (event(ts="2026-11-25t09:30:00z"), "invalid"),       # RFC 3339 allows it; Python does not read it
    (event(ts="0001-01-01T00:00:00+14:00"), "invalid"),  # reads, but there is no such time in UTC
    (event(ts="9999-12-31T23:59:59-14:00"), "invalid"),
    (event(id="not-a-uuid"), "invalid"),
    (event(seq=0), "invalid"),
    (event(bookcase="MH/0001"), "invalid"),
    (event(due="next month"), "invalid"),
])
def test_check_event_refuses(msg, reason):
    with pytest.raises(MessageError) as exc:
        schema.check_event(msg)
    assert exc.value.reason == reason


def test_check_event_accepts_extra_fields_and_nulls_where_allowed():
    assert schema.check_event(event(offline=True))["offline"] is True
    assert schema.check_event(event("alarm", alarm="door_forced", door=None, session=str(uuid.uuid4())))
    assert schema.check_event(event("refusal", reason="blocked", patron=None))


def test_other_messages_are_checked_against_the_type_their_topic_implies():
    status = {"v": 1, "id": str(uuid.uuid4()), "ts": "2026-11-25T09:30:00+08:00", "type": "patron_status",
              "patron": "a" * 32, "patron_class": "child", "status": "overdue", "loans_elsewhere": 1}
    assert schema.check_message("patron_status", status)
    with pytest.raises(MessageError) as exc:
        schema.check_message("holdings", status)
    assert exc.value.reason == "unknown_type"
    with pytest.raises(MessageError) as exc:
        schema.check_message("patron_status", {**status, "loans_elsewhere": -1})
    assert exc.value.reason == "invalid"


def test_outgoing_unknown_types_pass_on_their_envelope_only():
    assert schema.check_outgoing(event("loan")) is True
    assert schema.check_outgoing(event("shelf_light_on", lamp=3)) is False
    with pytest.raises(MessageError):
        schema.check_outgoing(event("shelf_light_on", seq=-1))
    with pytest.raises(MessageError):
        schema.check_outgoing(event("loan", item=None))


def test_encode_is_compact_utf8():
    body = schema.encode({"title": "我心归处是敦煌", "n": 1})
    assert body == '{"n":1,"title":"我心归处是敦煌"}'.encode() and json.loads(body)["n"] == 1
