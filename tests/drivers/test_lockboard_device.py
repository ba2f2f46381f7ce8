"""LockBoard against a test-local Kerong-style board on a pty: unlock, polarity, polling, faults, replug."""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass, field

import pytest

from kiosk.drivers.errors import DeviceTimeout, DeviceUnavailable
from kiosk.drivers.lockboard import codec
from kiosk.drivers.lockboard.codec import StateResponse, UnlockRequest
from kiosk.drivers.lockboard.device import LockBoard, LockState

from .fakes import FakeDevice

WAIT_S = 5.0
CLOSED_LOCKED = LockState(locked=True, door_open=False)


@dataclass
class Boards:
    """Raw bits of each board, normal polarity (1 = unlocked, 1 = open); silent boards never answer."""

    locks: dict[int, int] = field(default_factory=dict)
    sensors: dict[int, int] = field(default_factory=dict)
    silent: set[int] = field(default_factory=set)
    noise: bytes = b""

    def respond(self, frame):
        board = frame.board
        if board not in self.locks or board in self.silent or isinstance(frame, StateResponse):
            return None
        if isinstance(frame, UnlockRequest):
            self.locks[board] |= 1 << (frame.lock - 1)
        return self.noise + StateResponse(board, self.locks[board], self.sensors[board]).to_bytes()


@dataclass
class HeldBoards(Boards):
    """Boards whose next state reply can be held back: computed now, delivered on ``release``."""

    hold: threading.Event = field(default_factory=threading.Event)
    held: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)

    def respond(self, frame):
        answer = super().respond(frame)
        if answer and self.hold.is_set():
            self.hold.clear()
            self.held.set()
            self.release.wait(WAIT_S)
        return answer


class Events:
    def __init__(self) -> None:
        self.changes: queue.Queue = queue.Queue()
        self.links: queue.Queue = queue.Queue()
        self.faults: queue.Queue = queue.Queue()

    def kwargs(self) -> dict:
        return dict(
            on_change=lambda board, lock, state: self.changes.put((board, lock, state)),
            on_link=lambda up, message: self.links.put((up, message)),
            on_board_fault=lambda board, message: self.faults.put((board, message)),
        )

    def take_changes(self, n: int) -> list:
        return [self.changes.get(timeout=WAIT_S) for _ in range(n)]


@pytest.fixture
def boards():
    return Boards(locks={0: 0, 1: 0}, sensors={0: 0, 1: 0})


@pytest.fixture
def device(tmp_path, boards):
    with FakeDevice(tmp_path / "lockboard", codec.decode, boards.respond) as fake:
        yield fake


@pytest.fixture
def events():
    return Events()


def make_board(device, events, **kwargs) -> LockBoard:
    options = dict(boards=[0, 1], poll_interval_s=0.01, timeout_s=0.1, retries=1, reconnect_interval_s=0.02)
    options.update(kwargs)
    return LockBoard(device.url, **events.kwargs(), **options)


@pytest.fixture
def lockboard(device, events):
    board = make_board(device, events, poll_interval_s=3600)
    board.start()
    assert board.transport.wait_connected(WAIT_S)
    yield board
    board.close()


def test_unlock_sends_0x31_and_returns_the_reply_state(lockboard, device, boards):
    boards.sensors[1] = 0x0004
    states = lockboard.unlock(1, 3)
    assert UnlockRequest(1, 3) in [device.next_request() for _ in range(3)]
    assert states[3] == LockState(locked=False, door_open=True)
    assert states[1] == CLOSED_LOCKED
    assert sorted(states) == list(range(1, 17))


def test_read_state_maps_bits_to_locks(lockboard, boards):
    boards.locks[0] = 0x8000
    boards.sensors[0] = 0x0101
    states = lockboard.read_state(0)
    assert states[16] == LockState(locked=False, door_open=False)
    assert states[1] == LockState(locked=True, door_open=True)
    assert states[9] == LockState(locked=True, door_open=True)
    assert states[2] == CLOSED_LOCKED


def test_inverted_polarity(device, events, boards):
    boards.locks[0] = 0xFFFE  # lock 1 has bit 0 = unlocked for this batch
    boards.sensors[0] = 0xFFFD  # lock 2 has bit 0 = open
    board = make_board(device, events, poll_interval_s=3600, lock_bit_unlocked=0, sensor_bit_open=0)
    board.start()
    try:
        states = board.read_state(0)
    finally:
        board.close()
    assert states[1] == LockState(locked=False, door_open=False)
    assert states[2] == LockState(locked=True, door_open=True)
    assert states[3] == CLOSED_LOCKED


def test_no_answer_raises_timeout_naming_board_and_tries(lockboard, device, boards):
    boards.silent.add(1)
    with pytest.raises(DeviceTimeout) as caught:
        lockboard.read_state(1)
    assert str(caught.value) == f"lock board on {device.url}: no answer from board 1 after 2 tries"


def test_unknown_board_or_lock_is_refused(lockboard):
    with pytest.raises(ValueError, match="board 5 is not configured"):
        lockboard.unlock(5, 1)
    with pytest.raises(ValueError, match="1..16"):
        lockboard.unlock(0, 17)


def test_garbage_on_the_line_is_skipped(lockboard, boards):
    boards.noise = b"\xff\x00\x02\x35"
    boards.locks[0] = 0x0002
    assert lockboard.read_state(0)[2].locked is False
    assert lockboard.unlock(0, 1)[1].locked is False
    assert lockboard.transport.garbage_bytes >= 8


def test_poll_reports_every_lock_first_then_only_changes(device, events, boards):
    board = make_board(device, events)
    board.start()
    try:
        first = events.take_changes(32)
        assert sorted((b, lock) for b, lock, _ in first) == [(b, lock) for b in (0, 1) for lock in range(1, 17)]
        assert all(state == CLOSED_LOCKED for _, _, state in first)
        boards.sensors[1] = 0x0080
        assert events.changes.get(timeout=WAIT_S) == (1, 8, LockState(locked=True, door_open=True))
        board.unlock(0, 4)
        assert events.changes.get(timeout=WAIT_S) == (0, 4, LockState(locked=False, door_open=False))
        boards.locks[0] = 0
        assert events.changes.get(timeout=WAIT_S) == (0, 4, CLOSED_LOCKED)
    finally:
        board.close()
    assert events.changes.empty()


def test_board_fault_and_recovery(device, events, boards):
    boards.silent.add(1)
    board = make_board(device, events)
    board.start()
    try:
        fault_board, message = events.faults.get(timeout=WAIT_S)
        assert fault_board == 1 and message == f"lock board on {device.url}: no answer from board 1 after 2 tries"
        assert len(events.take_changes(16)) == 16  # board 0 still reports
        boards.silent.clear()
        assert events.faults.get(timeout=WAIT_S) == (1, None)
        assert {b for b, _, _ in events.take_changes(16)} == {1}
    finally:
        board.close()
    assert events.faults.empty()


def test_a_board_that_answers_again_reports_every_lock_even_unchanged(device, events, boards):
    # A door may open and close while its board is silent: the listener must learn its state again.
    board = make_board(device, events)
    board.start()
    try:
        events.take_changes(32)
        boards.silent.add(0)
        assert events.faults.get(timeout=WAIT_S)[0] == 0
        boards.silent.clear()
        assert events.faults.get(timeout=WAIT_S) == (0, None)
        again = events.take_changes(16)
        assert sorted(lock for b, lock, _ in again if b == 0) == list(range(1, 17))
        assert all(state == CLOSED_LOCKED for _, _, state in again)
    finally:
        board.close()


def test_an_unlock_without_an_answer_makes_the_next_reading_report_every_lock(device, events, boards):
    board = make_board(device, events, poll_interval_s=0.05)
    board.start()
    try:
        events.take_changes(32)
        boards.silent.add(1)
        with pytest.raises(DeviceTimeout):
            board.unlock(1, 5)
        boards.silent.clear()
        reported = {lock for b, lock, _ in events.take_changes(16) if b == 1}
        assert reported == set(range(1, 17))
    finally:
        board.close()


def test_report_again_reports_every_lock_from_a_reading_begun_after_it(device, events, boards):
    board = make_board(device, events, poll_interval_s=3600)
    board.start()
    try:
        events.take_changes(32)
        board.report_again(1)                      # the listener lost track of board 1's doors
        again = events.take_changes(16)
        assert {(b, lock) for b, lock, _ in again} == {(1, lock) for lock in range(1, 17)}
        assert events.changes.empty()
    finally:
        board.close()


def test_a_reading_begun_before_report_again_is_dropped(tmp_path, events):
    # The reading in flight when the listener loses track says "closed" but predates what happened since (the
    # patron opened the door). Only a reading begun after report_again is reported, and in full.
    boards = HeldBoards(locks={0: 0}, sensors={0: 0})
    with FakeDevice(tmp_path / "lockboard", codec.decode, boards.respond) as device:
        board = LockBoard(device.url, boards=[0], poll_interval_s=0.01, timeout_s=WAIT_S, retries=0,
                          **events.kwargs())
        board.start()
        try:
            events.take_changes(16)
            boards.hold.set()
            assert boards.held.wait(WAIT_S)            # a reading is in flight, its answer says "all closed"
            board.report_again(0)
            boards.sensors[0] = 0x0001                 # door 1 opens
            boards.release.set()
            reported = events.take_changes(16)
            assert reported[0] == (0, 1, LockState(locked=True, door_open=True))
            assert {lock for _, lock, _ in reported} == set(range(1, 17))
        finally:
            boards.release.set()
            board.close()


def test_unplug_and_replug(device, events, boards):
    board = make_board(device, events)
    board.start()
    try:
        assert events.links.get(timeout=WAIT_S)[0] is True
        events.take_changes(32)
        device.unplug()
        up, message = events.links.get(timeout=WAIT_S)
        assert up is False and message.startswith(f"lock board on {device.url}:")
        with pytest.raises(DeviceUnavailable):
            board.unlock(0, 1)
        boards.sensors[0] = 0x0001  # the door opened while the board was away
        device.plug()
        assert events.links.get(timeout=WAIT_S)[0] is True
        assert events.changes.get(timeout=WAIT_S) == (0, 1, LockState(locked=True, door_open=True))
        assert board.unlock(0, 2)[2].locked is False
    finally:
        board.close()
    assert events.faults.empty()


def test_a_board_still_dead_after_the_line_comes_back_says_so_again(device, events, boards):
    # The line's return puts every door back in service upstream; a board that is still dead must say so.
    board = make_board(device, events)
    board.start()
    try:
        events.take_changes(32)
        boards.silent.add(1)
        assert events.faults.get(timeout=WAIT_S)[0] == 1
        device.unplug()
        assert events.links.get(timeout=WAIT_S)[0] is True          # the start-up's
        assert events.links.get(timeout=WAIT_S)[0] is False
        device.plug()
        assert events.links.get(timeout=WAIT_S)[0] is True
        assert events.faults.get(timeout=WAIT_S)[0] == 1
        assert {b for b, _, _ in events.take_changes(16)} == {0}      # board 0 reports its doors again
    finally:
        board.close()


def test_missing_port_at_start(tmp_path, events):
    board = LockBoard(str(tmp_path / "ttyUSB0"), boards=[0], reconnect_interval_s=0.02, **events.kwargs())
    board.start()
    try:
        up, message = events.links.get(timeout=WAIT_S)
        assert up is False and "cannot open the port" in message
        with pytest.raises(DeviceUnavailable):
            board.read_state(0)
    finally:
        board.close()
    assert events.faults.empty()


def test_constructor_validates():
    with pytest.raises(ValueError):
        LockBoard("loop://", boards=[])
    with pytest.raises(ValueError):
        LockBoard("loop://", boards=[16])
    with pytest.raises(ValueError):
        LockBoard("loop://", boards=[0], lock_bit_unlocked=2)


def test_loopback_echo_is_not_an_answer(events):
    board = LockBoard("loop://", boards=[0], timeout_s=0.05, retries=0, poll_interval_s=3600, **events.kwargs())
    board.start()
    try:
        with pytest.raises(DeviceTimeout, match="no answer from board 0 to unlocking lock 1 after 1 try"):
            board.unlock(0, 1)
    finally:
        board.close()


def test_polls_fast_only_while_a_door_is_open(device, events, boards):
    # With an idle interval of an hour, a close can only be seen if an open door switched to fast polling.
    boards.sensors[0] = 0x0002
    board = make_board(device, events, poll_interval_s=3600, open_poll_interval_s=0.01)
    board.start()
    try:
        first = events.take_changes(32)
        assert (0, 2, LockState(locked=True, door_open=True)) in first
        boards.sensors[0] = 0
        assert events.changes.get(timeout=WAIT_S) == (0, 2, CLOSED_LOCKED)
        assert board._next_poll_s() == 3600
    finally:
        board.close()
