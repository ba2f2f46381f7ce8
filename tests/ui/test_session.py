"""Sessions driven through the screen against the simulated bookcase, and each side stalled on purpose."""

from __future__ import annotations

import threading
import time

import pytest

from kiosk.core import events as ev
from tests.scenarios.harness import ADULT, ADULT2, Bookcase
from tests.ui.support import Recorder, drawn_lines, finger, step_until, window_ui


@pytest.fixture
def case(tmp_path):
    bookcase = Bookcase(tmp_path, doors=3, books_per_door=4).start()
    yield bookcase
    bookcase.stop()


def _ui(case, fonts, **kw):
    post = Recorder(case.app.post)
    ui = window_ui(fonts, lambda: case.app.snapshot, post=post, find=case.app.find, **kw)
    step_until(ui, lambda: ui.current == "attract", "the attract screen")
    return ui, post


def test_borrow_and_return_through_the_screen(case, fonts):
    row = next(r for r in case.view.find("") if r["door"] == 2)
    title, item = row["title"], row["item_id"]
    ui, post = _ui(case, fonts, recommended=(title,))
    try:
        # Find a book: it is behind door 2; choose that door, then tap the card.
        finger(ui, "find")
        step_until(ui, lambda: ui.current == "find", "the find page")
        finger(ui, f"title:{title}")
        step_until(ui, lambda: any(line.startswith("在 2 号门") for line in drawn_lines(ui)), "the search answer")
        finger(ui, "borrow:2")
        step_until(ui, lambda: ui.current == "attract" and ui.chosen is not None, "the chosen door")
        case.sim.scan(ADULT)
        step_until(ui, lambda: ui.current == "door_open", "door 2 open on screen")
        assert "2 号门已打开" in drawn_lines(ui)
        step_until(ui, lambda: case.seen_open(2), "door 2 to open")
        case.sim.take(2, item)
        case.sim.close(2)
        step_until(ui, lambda: ui.current == "receipt", "the receipt")
        lines = drawn_lines(ui)
        assert f"《{title}》" in lines and "借阅 1 册" in lines, lines
        finger(ui, "done")
        step_until(ui, lambda: ui.current == "attract", "back to the start")

        # Another patron returns it: card first, then a door button, in English.
        finger(ui, "lang")
        case.sim.scan(ADULT2)
        step_until(ui, lambda: ui.current == "choosing", "the door choice")
        assert "Please choose a door" in drawn_lines(ui)
        finger(ui, "door:3")
        step_until(ui, lambda: case.seen_open(3), "door 3 to open")
        case.sim.put(3, item)
        case.sim.close(3)
        step_until(ui, lambda: ui.current == "receipt", "the second receipt")
        assert "Returned: 1" in drawn_lines(ui)
        step_until(ui, lambda: ui.current == "attract" and ui.lang == "zh", "the core to time the receipt out")
    finally:
        ui.close()
    assert [e for e in post.events if isinstance(e, ev.DoorChosen)] == [ev.DoorChosen(2), ev.DoorChosen(3)]
    (loan,) = case.view.loans()
    assert loan["item_id"] == item and loan["door"] == 2 and loan["returned_at"]
    (ret,) = case.view.returns()
    assert ret["item_id"] == item and ret["door"] == 3


@pytest.mark.parametrize("stall", ["blocked", "busy"])
def test_a_session_completes_while_the_screen_is_stalled(case, fonts, stall):
    """The screen's thread hangs inside a frame (waiting on something, or computing in Python and so holding
    the GIL in turns) while a patron borrows a book: the serial links and the core carry on without it."""
    ui, _ = _ui(case, fonts)
    item = case.items(1)[0]
    settled = threading.Event()
    stalled: list[bool] = []
    result: dict = {}

    def patron() -> None:
        try:
            result["session"] = case.session(ADULT, 1, take=[item])
        finally:
            settled.set()

    draw = ui.screens["attract"].draw

    def stuck(p, v):
        if stall == "blocked":
            stalled.append(settled.wait(60))
        else:
            deadline = time.monotonic() + 60
            while not settled.is_set() and time.monotonic() < deadline:
                sum(i * i for i in range(2000))
            stalled.append(settled.is_set())
        return draw(p, v)

    ui.screens["attract"].draw = stuck
    thread = threading.Thread(target=patron, name="test-patron")
    try:
        frames = ui.frames
        thread.start()
        ui.render(force=True)            # returns only once the session has settled
        thread.join(timeout=60)
        assert stalled == [True], "the session did not settle while the screen was stalled"
        assert ui.frames == frames + 1   # one frame, the stalled one: nothing else was drawn meanwhile
        assert case.loans(result["session"]) == [item]
        ui.screens["attract"].draw = draw
        step_until(ui, lambda: ui.current in ("receipt", "attract"), "the screen to catch up")
    finally:
        settled.set()
        thread.join(timeout=60)
        ui.close()


def test_the_screen_keeps_drawing_while_the_core_loop_is_blocked(case, fonts):
    """The core loop hangs in an event: the screen still answers touches, and an intent tapped meanwhile
    waits in the core's queue (posting never blocks the screen) and is served once the core is back."""
    ui, post = _ui(case, fonts)
    flow = case.app.flow
    gate, entered = threading.Event(), threading.Event()
    handle = flow.handle

    def blocking(event):
        if isinstance(event, ev.Cancel) and not gate.is_set():
            entered.set()
            gate.wait(60)
        return handle(event)

    flow.handle = blocking
    try:
        case.app.post(ev.Cancel())
        assert entered.wait(10)
        frames = ui.frames
        finger(ui, "help")
        step_until(ui, lambda: ui.current == "help", "the help page")
        finger(ui, "lang")
        step_until(ui, lambda: "How to use the bookcase" in drawn_lines(ui), "the help page in English")
        finger(ui, "back")
        step_until(ui, lambda: ui.current == "attract", "the attract screen again")
        assert post.events == []               # pages and language are the screen's own business
        finger(ui, "return")                   # an intent for the core, which is still stuck
        step_until(ui, lambda: post.events == [ev.ReturnStart()], "the Return books intent")
        ui.step()
        assert ui.frames >= frames + 3         # help, English, back: drawn while the core was stuck
        assert not gate.is_set() and case.app.snapshot.state == "idle" and ui.current == "attract"
        gate.set()
        step_until(ui, lambda: ui.current == "choosing", "the core to serve the intent it queued")
        assert "Please choose a door" in drawn_lines(ui)
    finally:
        gate.set()
        del flow.handle
        ui.close()
