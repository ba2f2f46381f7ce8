"""The screen's own state: pages, language, the title search, voice prompts, and the fallback screen."""

from __future__ import annotations

import logging

from kiosk.core import events as ev
from kiosk.core.snapshot import Receipt, Snapshot
from kiosk.ui.loop import PAGE_TIMEOUT_S
from kiosk.ui.voice import Voice
from tests.ui.support import Holder, Recorder, drawn_lines, finger, window_ui

IDLE = Snapshot(state="idle", doors_in_service=(1, 2, 3))


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_find_a_book_shows_the_door_and_can_choose_it_before_the_card(fonts):
    post, holder = Recorder(), Holder(IDLE)
    rows = [{"item_id": "MH20200013", "title": "端午", "author": "", "door": 2}]
    ui = window_ui(fonts, holder, post=post, find=lambda text: rows if text == "端午" else [])
    try:
        ui.step()
        finger(ui, "find")
        ui.step()
        assert ui.current == "find"
        finger(ui, "title:端午")
        ui.step()
        assert "在 2 号门 · 1 本" in drawn_lines(ui)
        finger(ui, "borrow:2")
        ui.step()
        assert post.events == [ev.DoorChosen(2)]
        assert ui.current == "attract" and "已选 2 号门，请刷读者证" in drawn_lines(ui)
    finally:
        ui.close()


def test_a_book_only_at_other_bookcases_says_where_and_offers_no_door(fonts):
    rows = [{"bookcase": "MH-0102", "name": "闵行区图书馆城市书柜 · 七宝镇万科城市花园", "item_id": "MH20200611",
             "title": "杂草记", "door": 2},
            {"bookcase": "MH-0102", "name": "闵行区图书馆城市书柜 · 七宝镇万科城市花园", "item_id": "MH20200612",
             "title": "杂草记", "door": 3}]
    ui = window_ui(fonts, Holder(IDLE), find=lambda text: rows if text == "杂草记" else [])
    try:
        ui.step()
        ui.open_page("find")
        ui.find("杂草记")
        ui.step()
        lines = drawn_lines(ui)
        assert "七宝镇万科城市花园，2、3 号门" in lines
        assert "附近的城市书柜有" in "".join(lines)
        assert not [t for t in ui.painter.targets if t.key.startswith("borrow:")]      # no door here to open
    finally:
        ui.close()


def test_a_failing_search_says_so(fonts):
    def broken(text):
        raise RuntimeError("database is locked")
    ui = window_ui(fonts, Holder(IDLE), find=broken)
    try:
        ui.step()
        ui.open_page("find")
        ui.find("端午")
        ui.step()
        assert "暂时无法查询，请稍后再试。" in "".join(drawn_lines(ui))
    finally:
        ui.close()


def test_pages_and_language_go_back_when_nobody_touches_the_screen(fonts):
    clock = Clock()
    ui = window_ui(fonts, Holder(IDLE), clock=clock)
    try:
        ui.step()
        finger(ui, "lang")
        ui.step()
        finger(ui, "help")
        ui.step()
        assert ui.current == "help" and ui.lang == "en"
        clock.now += PAGE_TIMEOUT_S + 1
        ui.step()
        assert ui.current == "attract" and ui.lang == "zh"
    finally:
        ui.close()


def test_a_session_keeps_the_patrons_language_and_the_next_patron_gets_the_default(fonts):
    holder = Holder(IDLE)
    ui = window_ui(fonts, holder)
    try:
        ui.step()
        finger(ui, "lang")
        ui.step()
        for snap in (Snapshot(state="choosing", reason="welcome", may_borrow=3, limit=15, doors_in_service=(1,)),
                     Snapshot(state="door_open", door=1, may_borrow=3, limit=15),
                     Snapshot(state="receipt", receipt=Receipt())):
            holder.snap = snap
            ui.step()
            assert ui.lang == "en"
        assert "All done" in drawn_lines(ui)
        holder.snap = IDLE
        ui.step()
        assert ui.lang == "zh" and ui.current == "attract"
    finally:
        ui.close()


def test_voice_prompts_follow_the_session(fonts):
    holder = Holder(IDLE)
    voice = Voice(enabled=True)
    ui = window_ui(fonts, holder, voice=voice)
    try:
        ui.step()
        for snap in (Snapshot(state="choosing", reason="welcome", may_borrow=3, limit=15, doors_in_service=(2,)),
                     Snapshot(state="door_open", door=2, may_borrow=3, limit=15),
                     Snapshot(state="door_open", door=2, may_borrow=3, limit=15, held_open=True),
                     Snapshot(state="scanning", door=2),
                     Snapshot(state="receipt", receipt=Receipt())):
            holder.snap = snap
            ui.step()
        assert [p for _, p in voice.played] == ["choose_door", "door_open_2", "close_door", "counting", "thank_you"]
        assert voice.available          # SDL's dummy audio driver: the files load and play
    finally:
        ui.close()


def test_a_screen_that_fails_to_draw_shows_the_fallback_and_the_loop_goes_on(fonts, caplog):
    holder = Holder(IDLE)
    ui = window_ui(fonts, holder)

    def broken(p, v):
        raise ZeroDivisionError("bug in a screen")
    ui.screens["attract"].draw = broken
    try:
        with caplog.at_level(logging.ERROR, logger="kiosk.ui.loop"):
            for _ in range(3):
                ui.render(force=True)
        assert ui.current == "fallback" and ui.errors == 3
        assert "请稍候" in drawn_lines(ui)
        assert sum("failed to draw" in r.message for r in caplog.records) == 1      # logged once, not per frame
        holder.snap = Snapshot(state="door_open", door=1, may_borrow=1, limit=15)
        ui.step()
        assert ui.current == "door_open"
    finally:
        ui.close()


def test_the_pin_never_reaches_the_log(fonts, caplog):
    from kiosk.core.snapshot import StaffView
    post = Recorder()
    ui = window_ui(fonts, Holder(Snapshot(state="staff_pin", staff=StaffView())), post=post)
    try:
        ui.step()
        with caplog.at_level(logging.DEBUG):
            for key in ("9", "3", "7", "1", "enter"):
                ui.pin_key(key)
        assert post.events == [ev.PinEntered("9371")]
        assert "9371" not in caplog.text
    finally:
        ui.close()
