"""The simulated lock board over a real pty, spoken to with the driver's own codec."""

from __future__ import annotations

from pathlib import Path

import pytest

from kiosk.config import load_config
from kiosk.drivers.lockboard import codec
from kiosk.drivers.lockboard.codec import ReadStateRequest, StateResponse, UnlockRequest
from tests.simulators.helpers import read_frame, read_quiet, write_config
from tests.simulators.test_world import FakeClock


def test_read_state_answers_for_its_board(make_sim, open_port) -> None:
    sim = make_sim()
    port = open_port(sim.paths["lockboard"])
    port.write(ReadStateRequest(0).to_bytes())
    assert read_frame(port, codec.decode) == StateResponse(board=0, locks=0, sensors=0)
    assert sim.status()["stats"]["lockboard"]["frames_in"] == 1
    assert sim.status()["stats"]["lockboard"]["frames_out"] == 1


@pytest.mark.parametrize(("lock_bit", "sensor_bit"), [(1, 1), (0, 0), (1, 0)])
def test_unlock_then_door_pops_in_configured_polarity(tmp_path: Path, make_sim, open_port,
                                                       lock_bit, sensor_bit) -> None:
    cfg = load_config(write_config(tmp_path, lock_bit_unlocked=lock_bit, sensor_bit_open=sensor_bit))
    clock = FakeClock()
    sim = make_sim(cfg, clock=clock)
    port = open_port(sim.paths["lockboard"])

    def raw(unlocked: int, opened: int) -> StateResponse:
        return StateResponse(board=0, locks=unlocked if lock_bit else ~unlocked & 0xFFFF,
                             sensors=opened if sensor_bit else ~opened & 0xFFFF)

    port.write(UnlockRequest(0, 3).to_bytes())
    assert read_frame(port, codec.decode) == raw(unlocked=0b100, opened=0)
    clock.advance(200)
    port.write(ReadStateRequest(0).to_bytes())
    assert read_frame(port, codec.decode) == raw(unlocked=0b100, opened=0b100)
    clock.advance(300)
    port.write(ReadStateRequest(0).to_bytes())
    assert read_frame(port, codec.decode) == raw(unlocked=0, opened=0b100)
    sim.close(3)
    port.write(ReadStateRequest(0).to_bytes())
    assert read_frame(port, codec.decode) == raw(unlocked=0, opened=0)


def test_each_board_answers_at_its_own_address(tmp_path: Path, make_sim, open_port) -> None:
    sim = make_sim(load_config(write_config(tmp_path, doors=4, boards=2)))
    port = open_port(sim.paths["lockboard"])
    sim.force(4)  # board 1, lock 2
    port.write(ReadStateRequest(1).to_bytes())
    assert read_frame(port, codec.decode) == StateResponse(board=1, locks=0, sensors=0b10)
    port.write(ReadStateRequest(0).to_bytes())
    assert read_frame(port, codec.decode) == StateResponse(board=0, locks=0, sensors=0)


def test_unknown_board_is_silent(make_sim, open_port) -> None:
    sim = make_sim()
    port = open_port(sim.paths["lockboard"])
    port.write(ReadStateRequest(5).to_bytes() + UnlockRequest(9, 1).to_bytes())
    assert read_quiet(port) == b""
    assert sim.status()["stats"]["lockboard"]["frames_in"] == 2


def test_split_and_noisy_requests_are_still_understood(make_sim, open_port) -> None:
    sim = make_sim()
    port = open_port(sim.paths["lockboard"])
    request = ReadStateRequest(0).to_bytes()
    port.write(b"\xff\x00\x02\x99")
    for byte in request:
        port.write(bytes([byte]))
        port.flush()
    assert read_frame(port, codec.decode) == StateResponse(board=0, locks=0, sensors=0)


def test_byte_time_is_counted(make_sim, open_port) -> None:
    sim = make_sim()
    port = open_port(sim.paths["lockboard"])
    for _ in range(3):
        port.write(ReadStateRequest(0).to_bytes())
        assert read_frame(port, codec.decode) is not None
    stats = sim.status()["stats"]["lockboard"]
    assert stats["bytes_out"] == 3 * codec.STATE_LEN
    assert stats["byte_time_s"] == pytest.approx(3 * codec.STATE_LEN * 10 / 19200, rel=1e-3)
    assert stats["air_time_s"] == 0
