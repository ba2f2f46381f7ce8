"""The operators' console over real HTTP (uvicorn), a real journal and a real broker: every endpoint, logins
right and wrong, expired sessions, CSRF, roles, malformed input, the audit log, /metrics and /healthz."""

from __future__ import annotations

import time
from datetime import datetime

import pytest

from simulators.console_sample import TZ, EventMaker, _incoming, bookcase_id, state
from tests.gateway.console_support import (
    OPERATOR,
    PASSWORD,
    VIEWER,
    csrf_of,
    start_console,
)
from tests.scenarios.harness import wait_for


def time_now() -> datetime:
    return datetime.now(TZ)


@pytest.fixture
def console(tmp_path, broker):
    running = start_console(tmp_path / "gw", broker.port)
    try:
        yield running
    finally:
        running.server.stop()
        running.journal.close()


def _events(console, *events):
    console.journal.record([_incoming(e) for e in events], "test", 60.0)


def test_every_page_needs_a_login_but_metrics_and_healthz(console):
    with console.client() as c:
        for path in ("/", "/review", "/alarms", "/figures", "/bookcase/MH-0001"):
            answer = c.get(path)
            assert answer.status_code == 303 and answer.headers["location"].startswith("/login?next="), path
        assert c.get("/fleet/table").status_code == 401 and c.get("/events").status_code == 401
        assert c.get("/healthz").json()["ok"] is True
        assert "citybook_gateway_backlog 0" in c.get("/metrics").text


def test_wrong_passwords_are_refused_then_paused_whoever_asks(console):
    with console.client() as c:
        page = c.get("/login")
        assert page.status_code == 200 and 'name="password"' in page.text
        for _ in range(5):
            answer = c.post("/login", data={"user": OPERATOR, "password": "wrong password!"})
            assert answer.status_code == 401 and "账号或密码不对" in answer.text
            assert "citybook_console" not in answer.cookies
        # Five wrong in a row: even the right password waits, and an unknown name gets the same answer.
        paused = c.post("/login", data={"user": OPERATOR, "password": PASSWORD})
        assert paused.status_code == 429 and "秒后再试" in paused.text
        assert c.post("/login", data={"user": "nobody", "password": "x" * 12}).status_code in (401, 429)
    audit = console.journal.audit_log()
    assert not any(a["action"] == "login" for a in audit)


def test_a_login_gives_an_httponly_strict_cookie_and_the_pages(console):
    with console.client() as c:
        answer = c.post("/login?next=/figures", data={"user": VIEWER, "password": PASSWORD})
        assert answer.status_code == 303 and answer.headers["location"] == "/figures"
        cookie = answer.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
        for path in ("/", "/review", "/alarms", "/figures"):
            page = c.get(path)
            assert page.status_code == 200 and "城市书柜运维台" in page.text, path
        # An open redirect is not followed: only paths of the console.
        other = c.post("/login?next=//evil.example/", data={"user": VIEWER, "password": PASSWORD})
        assert other.headers["location"] == "/"
    assert [a["action"] for a in console.journal.audit_log()][:2] == ["login", "login"]


def test_an_expired_or_removed_session_sends_back_to_the_login(console):
    c = console.login(VIEWER)
    assert c.get("/").status_code == 200
    console.journal._write(lambda tx: tx.execute("UPDATE console_sessions SET expires_epoch = ?", (time.time() - 1,)))
    assert c.get("/").status_code == 303
    c = console.login(VIEWER)
    console.journal.user_remove(VIEWER)
    assert c.get("/").status_code == 303


def test_the_fleet_lists_offline_and_alarmed_bookcases_first_and_filters(console):
    for n, online in ((1, True), (2, False), (3, True)):
        console.publish_state(state(bookcase_id(n), n, online=online, reason=None if online else "connection lost"))
    maker = EventMaker(bookcase_id(3))
    _events(console, maker.event("alarm", time_now(), alarm="door_forced", door=4))
    c = console.login()
    wait_for(lambda: len(console.server.fleet.states) == 3, 20, "three states")
    table = c.get("/fleet/table").text
    order = [table.index(bookcase_id(n)) for n in (2, 3, 1)]
    assert order == sorted(order), "offline first, then the alarmed one"
    assert "connection lost" in table
    only = c.get("/fleet/table", params={"q": "MH-0003"}).text
    assert bookcase_id(3) in only and bookcase_id(1) not in only
    by_name = c.get("/fleet/table", params={"sort": "-bookcase"}).text
    assert by_name.index(bookcase_id(3)) < by_name.index(bookcase_id(1))
    detail = c.get(f"/bookcase/{bookcase_id(3)}").text
    assert "door_forced" in detail and "在线" in detail
    assert c.get("/bookcase/MH-9999").status_code == 404


def test_review_actions_need_csrf_and_the_operator_role_and_are_audited(console):
    maker = EventMaker(bookcase_id(1))
    tag = maker.event("uncertain_tag", time_now(), session="5d0f8c3a-8d8e-4a55-9c1e-2b9f0e1d2c3b", door=3,
                      uid="E004A1B2C3D4E5F6", item="MH20200125")
    _events(console, tag)
    viewer, operator = console.login(VIEWER), console.login()
    page = operator.get("/review").text
    assert "MH20200125" in page and "E004A1B2C3D4E5F6" in page and "标记已处理" in page
    assert "标记已处理" not in viewer.get("/review").text         # a viewer sees no action buttons
    url = f"/review/{tag['id']}/resolve"
    assert operator.post(url, data={"note": "checked"}).status_code == 403                      # no CSRF token
    assert operator.post(url, data={"note": "checked", "csrf": "forged"}).status_code == 403
    assert viewer.post(url, data={"note": "checked", "csrf": csrf_of(viewer)}).status_code == 403  # not an operator
    assert operator.post(url, data={"note": " ", "csrf": csrf_of(operator)}).status_code == 400   # say how
    assert operator.post("/review/no-such-event/resolve", data={"note": "x", "csrf": csrf_of(operator)}
                         ).status_code == 400
    done = operator.post(url, data={"note": "tag re-read: it is there", "csrf": csrf_of(operator)})
    assert done.status_code == 303 and "MH20200125" not in operator.get("/review").text
    (entry,) = [a for a in console.journal.audit_log() if a["action"] == "review resolve"]
    assert entry["who"] == OPERATOR and entry["target"] == tag["id"] and "re-read" in entry["detail"]


def test_alarms_are_acknowledged_and_cleared(console):
    maker = EventMaker(bookcase_id(2))
    alarm = maker.event("alarm", time_now(), alarm="door_held_open", door=2)
    _events(console, alarm)
    c = console.login()
    page = c.get("/alarms").text
    assert "door_held_open" in page and "未解除" in page
    assert c.post(f"/alarms/{alarm['id']}/ack", data={}).status_code == 403
    assert c.post(f"/alarms/{alarm['id']}/ack", data={"csrf": csrf_of(c)}).status_code == 303
    assert "已确认：zhang" in c.get("/alarms").text
    assert c.post("/alarms/not-an-alarm/ack", data={"csrf": csrf_of(c)}).status_code == 404
    _events(console, maker.event("alarm_cleared", time_now(), alarm="door_held_open", door=2))
    (only,) = console.journal.alarms()
    assert only["open"] is False and only["acked_by"] == OPERATOR


def test_figures_metrics_and_the_language_switch(console):
    maker = EventMaker(bookcase_id(1))
    _events(console, maker.event("loan", time_now(), session="5d0f8c3a-8d8e-4a55-9c1e-2b9f0e1d2c3b", door=1,
                                 item="MH20200001", patron="a" * 32, due="2027-01-04"))
    console.publish_state(state(bookcase_id(1), 1, outbox=7))
    wait_for(lambda: console.server.fleet.states, 20, "the state")
    c = console.login()
    assert "每日借还" in c.get("/figures").text
    metrics = c.get("/metrics").text
    assert 'citybook_outbox_depth{bookcase="MH-0001"} 7' in metrics
    assert 'citybook_bookcase_up{bookcase="MH-0001"} 1' in metrics and "citybook_bookcases_online 1" in metrics
    c.get("/lang/en", headers={"referer": f"{console.url}/figures"})
    assert "Loans and returns per day" in c.get("/figures").text
    c.get("/lang/klingon")
    assert "Loans and returns per day" in c.get("/figures").text         # an unknown language changes nothing
    assert "1</td>" in c.get("/fleet/table").text


def test_the_event_stream_says_when_the_fleet_changes(console):
    c = console.login()
    with c.stream("GET", "/events") as stream:
        lines = stream.iter_lines()
        assert next(lines) == "event: fleet"
        first = next(lines)
        console.publish_state(state(bookcase_id(5), 5))
        for line in lines:                        # the stream's next event comes when the state has arrived
            if line == "event: fleet":
                break
        assert next(lines) != first and bookcase_id(5) in console.server.fleet.states
