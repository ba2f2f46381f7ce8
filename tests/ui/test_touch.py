"""Touch: a finger and the click SDL synthesises from it are one tap; a mouse works; keys do nothing."""

from __future__ import annotations

import pygame

from kiosk.core import events as ev
from kiosk.core.snapshot import Snapshot, StaffView
from tests.ui.support import Holder, Recorder, click, finger, target, window_ui

CHOOSING = Snapshot(state="choosing", reason="welcome", may_borrow=5, limit=15, doors_in_service=(1, 2, 3))


def _ui(fonts, snap=CHOOSING, **kw):
    post = Recorder()
    ui = window_ui(fonts, Holder(snap), post=post, **kw)
    ui.step()
    return ui, post


def test_a_finger_and_its_synthesized_click_give_one_intent(fonts):
    ui, post = _ui(fonts)
    try:
        finger(ui, "door:2")
        ui.step()
        ui.step()
        assert post.events == [ev.DoorChosen(2)]
    finally:
        ui.close()


def test_an_unmarked_click_right_after_a_finger_at_the_same_place_is_the_same_touch(fonts):
    ui, post = _ui(fonts)
    try:
        finger(ui, "door:3", synthesized_click=False)
        click(ui, "door:3")             # some drivers do not mark their synthesized clicks
        ui.step()
        assert post.events == [ev.DoorChosen(3)]
    finally:
        ui.close()


def test_a_click_before_its_finger_is_the_same_touch(fonts):
    now = [100.0]
    ui, post = _ui(fonts, clock=lambda: now[0])
    try:
        x, y = target(ui, "door:2").center
        w, h = pygame.display.get_surface().get_size()
        # SDL posts its synthesized (marked) click before the finger; some drivers' unmarked clicks come first too.
        for marked in (True, False):
            pygame.event.post(pygame.event.Event(pygame.MOUSEBUTTONDOWN, pos=(x, y), button=1, touch=marked))
            pygame.event.post(pygame.event.Event(pygame.FINGERDOWN, touch_id=1, finger_id=0, x=x / w, y=y / h,
                                                 dx=0.0, dy=0.0, pressure=1.0))
            ui.step()
            now[0] += 5.0                  # the next patron's touch
        assert post.events == [ev.DoorChosen(2), ev.DoorChosen(2)]
    finally:
        ui.close()


def test_two_quick_fingers_are_two_taps(fonts):
    ui, post = _ui(fonts, snap=Snapshot(state="staff_pin", staff=StaffView()))
    try:
        finger(ui, "pin:1")
        finger(ui, "pin:1")
        ui.step()
        assert ui.pin == "11"
    finally:
        ui.close()


def test_a_mouse_works_on_a_laptop_and_only_the_left_button_taps(fonts):
    ui, post = _ui(fonts)
    try:
        click(ui, "door:1", button=3)
        click(ui, "door:1")
        ui.step()
        click(ui, "cancel")
        ui.step()
        assert post.events == [ev.DoorChosen(1), ev.Cancel()]
    finally:
        ui.close()


def test_keys_and_window_close_do_not_leave_kiosk_mode(fonts):
    ui, post = _ui(fonts, snap=Snapshot(state="idle", doors_in_service=(1, 2)))
    try:
        ui.settings = ui.settings.__class__(**{**ui.settings.__dict__, "fullscreen": True})
        for key in (pygame.K_ESCAPE, pygame.K_F4, pygame.K_q, pygame.K_TAB):
            pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=key, mod=pygame.KMOD_ALT, unicode="", scancode=0))
        pygame.event.post(pygame.event.Event(pygame.QUIT))
        ui.step()
        assert not ui.quit_requested and post.events == [] and ui.current == "attract"
    finally:
        ui.close()


def test_touch_targets_post_the_intents_of_the_attract_and_staff_screens(fonts):
    holder = Holder(Snapshot(state="idle", doors_in_service=(1, 2)))
    post = Recorder()
    ui = window_ui(fonts, holder, post=post)
    try:
        ui.step()
        finger(ui, "return")
        ui.step()
        holder.snap = Snapshot(state="staff_pin", staff=StaffView())
        ui.step()
        for key in ("2", "4", "6", "8"):
            finger(ui, f"pin:{key}")
            ui.step()
        assert ui.pin == "2468"
        finger(ui, "pin:enter")
        ui.step()
        assert post.events == [ev.ReturnStart(), ev.PinEntered("2468")] and ui.pin == ""
    finally:
        ui.close()
