"""Screen power: off outside the hours, on at a tap or a card, through a real command backend."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from kiosk.config import ConfigError, ScreenConfig
from kiosk.ui.power import RETRY_S, CommandBackend, NoBackend, ScreenPower, backend_for
from tests.ui.test_config_screen import _with

SHANGHAI = ZoneInfo("Asia/Shanghai")


class Clocks:
    def __init__(self, local: datetime) -> None:
        self.t = 1000.0
        self.local = local

    def mono(self) -> float:
        return self.t

    def wall(self) -> datetime:
        return self.local

    def advance(self, seconds: float) -> None:
        self.t += seconds
        self.local += timedelta(seconds=seconds)


def power(hours=("07:00-22:00",), wake_s=120, backend=None, at=datetime(2026, 12, 1, 21, 59, tzinfo=SHANGHAI)):
    clocks = Clocks(at)
    p = ScreenPower(ScreenConfig(on_hours=hours, wake_s=wake_s), SHANGHAI, backend or NoBackend(),
                    clock=clocks.mono, wallclock=clocks.wall)
    return p, clocks


def test_off_at_the_end_of_the_hours_and_on_at_their_start():
    p, clocks = power()
    assert p.tick() and p.backend.calls == []
    clocks.advance(60)                                  # 22:00
    assert not p.tick() and p.backend.calls == [False]
    assert not p.tick() and p.backend.calls == [False]  # switched once, not every frame
    clocks.advance(9 * 3600 - 1)                        # 06:59:59
    assert not p.tick()
    clocks.advance(1)                                   # 07:00
    assert p.tick() and p.backend.calls == [False, True]


def test_a_tap_at_night_wakes_the_screen_for_wake_s_then_it_sleeps_again():
    p, clocks = power(at=datetime(2026, 12, 1, 23, 30, tzinfo=SHANGHAI))
    assert not p.tick()
    assert p.wake("card tapped") is True
    assert p.tick() and p.backend.calls == [False, True]
    clocks.advance(100)
    assert p.wake("touch") is False                     # already on: the period starts again
    clocks.advance(119)
    assert p.tick()
    clocks.advance(1)
    assert not p.tick() and p.backend.calls == [False, True, False]


def test_hours_are_the_bookcases_local_time():
    utc_13h = datetime(2026, 12, 1, 13, 0, tzinfo=UTC)          # 21:00 in Shanghai
    p, _ = power(at=utc_13h)
    assert p.tick()
    p, _ = power(at=utc_13h + timedelta(hours=1, minutes=30))           # 22:30 in Shanghai
    assert not p.tick()


def test_no_hours_means_always_on():
    p, clocks = power(hours=())
    for _ in range(48):
        clocks.advance(1800)
        assert p.tick()
    assert p.backend.calls == []


def test_the_command_backend_runs_the_configured_commands(tmp_path):
    log = tmp_path / "panel.log"
    backend = CommandBackend(f"sh -c 'echo on >> {log}'", f"sh -c 'echo off >> {log}'")
    p, clocks = power(backend=backend)
    clocks.advance(60)
    p.tick()
    p.wake("touch")
    assert log.read_text().split() == ["off", "on"]


def test_a_failing_off_command_keeps_the_screen_drawn_and_is_retried_later(tmp_path, caplog):
    script = tmp_path / "off.sh"
    script.write_text("echo 'display_power: no such display' >&2; exit 3\n")
    backend = CommandBackend("true", f"sh {script}")
    p, clocks = power(backend=backend)
    clocks.advance(60)
    with caplog.at_level(logging.ERROR, logger="kiosk.ui.power"):
        assert p.tick()                                 # still lit: keep drawing, no frozen frame
        clocks.advance(1)
        assert p.tick()
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "no such display" in errors[0] and "power_off_command" in errors[0]
    script.write_text("exit 0\n")
    clocks.advance(RETRY_S)
    assert not p.tick()


def test_a_missing_command_is_logged_not_raised(caplog):
    p, clocks = power(backend=CommandBackend("/nonexistent/panel on", "/nonexistent/panel off"))
    clocks.advance(60)
    with caplog.at_level(logging.ERROR, logger="kiosk.ui.power"):
        assert p.tick()
    assert "cannot switch the screen off" in caplog.text


def test_power_settings_read_from_the_config(tmp_path):
    text = ('[screen]\non_hours = ["07:00-12:00", "13:00-22:00"]\npower = "command"\n'
            'power_on_command = "vcgencmd display_power 1"\npower_off_command = "vcgencmd display_power 0"\n'
            'wake_s = 60\n')
    s = _with(tmp_path, text).screen
    assert (s.on_hours, s.power, s.wake_s) == (("07:00-12:00", "13:00-22:00"), "command", 60)
    assert backend_for(s).commands == {True: ["vcgencmd", "display_power", "1"],
                                       False: ["vcgencmd", "display_power", "0"]}


@pytest.mark.parametrize("text, key, words", [
    ('[screen]\npower = "command"\npower_on_command = "x"\n', "screen.power", "give both"),
    ('[screen]\npower = "dpms"\n', "screen.power", "not one of"),
    ('[screen]\non_hours = ["22:00-07:00"]\n', "screen.on_hours", "over midnight is two windows"),
    ('[screen]\non_hours = "07:00-22:00"\n', "screen.on_hours", "expected"),
    ('[screen]\non_hours = [7]\n', "screen.on_hours", "time windows"),
    ('[screen]\nwake_s = 1\n', "screen.wake_s", "out of range"),
])
def test_bad_power_settings_name_the_key(tmp_path, text, key, words):
    with pytest.raises(ConfigError) as err:
        _with(tmp_path, text)
    assert err.value.key == key and words in err.value.message


# --- the screen follows its power --------------------------------------------------------------

def night_ui(fonts, holder, recorder):
    from tests.ui.support import window_ui
    p, clocks = power(at=datetime(2026, 12, 1, 21, 59, 30, tzinfo=SHANGHAI))
    ui = window_ui(fonts, holder, post=recorder, clock=clocks.mono, power=p, size=(540, 960))
    return ui, p, clocks


def test_dark_outside_the_hours_and_the_waking_touch_presses_nothing(fonts):
    from kiosk.core.snapshot import Snapshot
    from tests.ui.support import Holder, Recorder, finger
    holder, recorder = Holder(Snapshot(state="idle", doors_in_service=(1, 2))), Recorder()
    ui, p, clocks = night_ui(fonts, holder, recorder)
    try:
        assert ui.step() and not ui.blank
        clocks.advance(60)                                   # 22:00:30
        frames = ui.frames
        ui.step()
        assert ui.blank and p.backend.calls == [False] and ui.frames == frames
        finger(ui, "return")                                 # on the dark screen, where the button was
        ui.step()
        assert not ui.blank and p.backend.calls == [False, True]
        assert recorder.events == []                         # woken, not pressed
        assert ui.frames > frames                            # drawn again at once
        finger(ui, "return")
        ui.step()
        assert [type(e).__name__ for e in recorder.events] == ["ReturnStart"]
        clocks.advance(p.wake_s)
        ui.step()
        assert ui.blank and p.backend.calls == [False, True, False]
    finally:
        ui.close()


def test_a_card_wakes_the_dark_screen_and_a_session_keeps_it_lit(fonts):
    from kiosk.core.snapshot import Snapshot
    from tests.ui.support import Holder, Recorder
    holder, recorder = Holder(Snapshot(state="idle", doors_in_service=(1, 2))), Recorder()
    ui, p, clocks = night_ui(fonts, holder, recorder)
    try:
        clocks.advance(60)
        ui.step()
        assert ui.blank
        holder.snap = Snapshot(state="choosing", reason="welcome", may_borrow=3, limit=15, doors_in_service=(1,))
        ui.step()
        assert not ui.blank and ui.current == "choosing"
        holder.snap = Snapshot(state="door_open", door=1, may_borrow=3, limit=15)
        for _ in range(3):                                   # a long session: lit all through it
            clocks.advance(p.wake_s)
            ui.step()
            assert not ui.blank
        holder.snap = Snapshot(state="idle", doors_in_service=(1, 2))
        clocks.advance(p.wake_s - 1)
        ui.step()
        assert not ui.blank
        clocks.advance(1)
        ui.step()
        assert ui.blank
    finally:
        ui.close()
