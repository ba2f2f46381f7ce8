"""The console in a real browser (Debian's Chromium, headless): log in, watch two bookcases go offline and online
without a reload, acknowledge an alarm, resolve a review item; a viewer gets no buttons and a forged action
(no CSRF token) is refused."""

from __future__ import annotations

from datetime import datetime

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from simulators.console_sample import TZ, EventMaker, _incoming, bookcase_id, state
from tests.gateway.browser import chromium
from tests.gateway.console_support import OPERATOR, PASSWORD, VIEWER, start_console

WAIT_S = 20


@pytest.fixture
def console(tmp_path, broker):
    running = start_console(tmp_path / "gw", broker.port)
    try:
        yield running
    finally:
        running.server.stop()
        running.journal.close()


@pytest.fixture
def browser(tmp_path):
    driver = chromium(tmp_path / "profile")
    try:
        yield driver
    finally:
        driver.quit()


def log_in(browser, console, name: str) -> None:
    browser.get(console.url + "/login")
    browser.find_element(By.NAME, "user").send_keys(name)
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "form.login button").click()
    WebDriverWait(browser, WAIT_S).until(lambda d: "/login" not in d.current_url)


def text_of(browser, selector: str) -> str:
    """The text of the first element matching `selector`, or '' — read in one script, so a page that is replaced
    between finding the element and reading it (the live table, a form's redirect) cannot make it stale."""
    return browser.execute_script("const c = document.querySelector(arguments[0]); return c ? c.innerText : '';",
                                  selector)


def row_state(browser, bookcase: str) -> str:
    """The status cell of a bookcase's row."""
    return text_of(browser, f'tr[data-bookcase="{bookcase}"] td.state')


def test_an_operator_watches_the_fleet_live_and_works_alarms_and_review(console, browser):
    for n in (1, 2):
        console.publish_state(state(bookcase_id(n), n))
    log_in(browser, console, OPERATOR)
    WebDriverWait(browser, WAIT_S).until(lambda d: row_state(d, "MH-0001").startswith("在线")
                                         and row_state(d, "MH-0002").startswith("在线"))
    browser.execute_script("window.stillThisPage = true")
    WebDriverWait(browser, WAIT_S).until(lambda d: "●" in text_of(d, "#live"))
    # Two bookcases lose their link (their last will says offline) and come back: the page follows, no reload.
    for n in (1, 2):
        console.publish_state(state(bookcase_id(n), n, online=False, reason="connection lost"))
    WebDriverWait(browser, WAIT_S).until(lambda d: row_state(d, "MH-0001").startswith("离线")
                                         and row_state(d, "MH-0002").startswith("离线"))
    console.publish_state(state(bookcase_id(2), 2))
    WebDriverWait(browser, WAIT_S).until(lambda d: row_state(d, "MH-0002").startswith("在线"))
    assert row_state(browser, "MH-0001").startswith("离线")
    assert browser.execute_script("return window.stillThisPage === true")

    now = datetime.now(TZ)
    alarm = EventMaker(bookcase_id(1)).event("alarm", now, alarm="door_forced", door=4)
    tag = EventMaker(bookcase_id(2)).event("uncertain_tag", now, session="5d0f8c3a-8d8e-4a55-9c1e-2b9f0e1d2c3b",
                                           door=3, uid="E004A1B2C3D4E5F6", item="MH20200125")
    console.journal.record([_incoming(alarm), _incoming(tag)], "test", 60.0)

    browser.get(console.url + "/alarms")
    browser.find_element(By.CSS_SELECTOR, f'tr[data-alarm="{alarm["id"]}"] button').click()
    WebDriverWait(browser, WAIT_S).until(lambda d: "已确认：zhang" in text_of(d, f'tr[data-alarm="{alarm["id"]}"]'))

    browser.get(console.url + "/review")
    section = browser.find_element(By.CSS_SELECTOR, f'section[data-event="{tag["id"]}"]')
    section.find_element(By.NAME, "note").send_keys("re-counted: the book is there")
    section.find_element(By.CSS_SELECTOR, "form button").click()
    WebDriverWait(browser, WAIT_S).until(lambda d: "MH20200125" not in d.page_source)
    actions = {(a["who"], a["action"]) for a in console.journal.audit_log()}
    assert {(OPERATOR, "alarm acknowledge"), (OPERATOR, "review resolve")} <= actions


def test_a_viewer_may_look_but_not_act_and_a_forged_action_is_refused(console, browser):
    alarm = EventMaker(bookcase_id(1)).event("alarm", datetime.now(TZ), alarm="door_held_open", door=2)
    console.journal.record([_incoming(alarm)], "test", 60.0)
    log_in(browser, console, VIEWER)
    browser.get(console.url + "/alarms")
    assert "door_held_open" in browser.page_source
    assert browser.find_elements(By.CSS_SELECTOR, f'tr[data-alarm="{alarm["id"]}"] button') == []
    status = browser.execute_script(
        "const r = await fetch(arguments[0], {method: 'POST', body: new URLSearchParams({csrf: 'forged'})});"
        "return r.status;", f"/alarms/{alarm['id']}/ack")
    assert status == 403
    assert console.journal.alarms()[0]["acked_by"] is None
