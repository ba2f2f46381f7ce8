"""RequestSession against a test-local lock board on a pty: matching, retries, timeouts, lost links."""

from __future__ import annotations

import threading

import pytest

from kiosk.drivers.errors import DeviceTimeout, DeviceUnavailable
from kiosk.drivers.lockboard import codec
from kiosk.drivers.lockboard.codec import ReadStateRequest, StateResponse
from kiosk.drivers.session import RequestSession
from kiosk.drivers.transport import SerialTransport

from .fakes import FakeDevice

WAIT_S = 5.0


def make_session(url: str) -> RequestSession:
    session: RequestSession | None = None

    def factory(on_frame):
        return SerialTransport(
            url,
            baudrate=19200,
            name=f"lock board on {url}",
            decode=codec.decode,
            on_frame=on_frame,
            on_link=lambda up, message: session.link_changed(up, message),
            reconnect_interval_s=0.02,
        )

    session = RequestSession(factory, backoff_s=0.001)
    return session


def state_of(board: int):
    return lambda frame: isinstance(frame, StateResponse) and frame.board == board


@pytest.fixture
def board_state():
    return {}


@pytest.fixture
def device(tmp_path, board_state):
    def respond(frame):
        if isinstance(frame, ReadStateRequest) and frame.board in board_state:
            return StateResponse(frame.board, board_state[frame.board], 0).to_bytes()
        return None

    with FakeDevice(tmp_path / "lockboard", codec.decode, respond) as fake:
        yield fake


@pytest.fixture
def session(device):
    s = make_session(device.url)
    s.start()
    assert s.transport.wait_connected(WAIT_S)
    yield s
    s.close()


def test_request_returns_the_matching_reply(session, board_state):
    board_state[3] = 0x00F0
    reply = session.request(ReadStateRequest(3).to_bytes(), state_of(3), timeout_s=WAIT_S, retries=0)
    assert reply == StateResponse(3, 0x00F0, 0)


def test_unmatched_frames_are_dropped(session, device, board_state):
    def respond(frame):
        return StateResponse(1, 0xAAAA, 0).to_bytes() + b"\xff\x00" + StateResponse(2, 0x5555, 0).to_bytes()

    device.respond = respond
    reply = session.request(ReadStateRequest(2).to_bytes(), state_of(2), timeout_s=WAIT_S, retries=0)
    assert reply == StateResponse(2, 0x5555, 0)


def test_no_answer_times_out_after_retries(session, device):
    with pytest.raises(DeviceTimeout) as caught:
        session.request(ReadStateRequest(0).to_bytes(), state_of(0), timeout_s=0.05, retries=2, what="from board 0")
    assert str(caught.value) == f"lock board on {device.url}: no answer from board 0 after 3 tries"
    sent = [device.next_request() for _ in range(3)]
    assert sent == [ReadStateRequest(0)] * 3
    assert device.received.empty()


def test_a_lost_answer_is_retried(session, device, board_state):
    board_state[0] = 0x0001
    calls = []

    def respond(frame):
        calls.append(frame)
        if len(calls) == 1:
            return None  # the first answer is lost on the line
        return StateResponse(0, 0x0001, 0).to_bytes()

    device.respond = respond
    reply = session.request(ReadStateRequest(0).to_bytes(), state_of(0), timeout_s=0.2, retries=2)
    assert reply == StateResponse(0, 0x0001, 0)
    assert len(calls) == 2


def test_a_stale_frame_is_not_taken_for_the_answer(session, device, board_state):
    board_state[0] = 0x5555
    seen = threading.Event()
    session.transport._on_frame = lambda frame, put=session.transport._on_frame: (put(frame), seen.set())
    device.write(StateResponse(0, 0xAAAA, 0).to_bytes())  # unsolicited, before any request
    assert seen.wait(WAIT_S)
    reply = session.request(ReadStateRequest(0).to_bytes(), state_of(0), timeout_s=WAIT_S, retries=0)
    assert reply == StateResponse(0, 0x5555, 0)


def test_concurrent_callers_take_turns_on_the_bus(session, device, board_state):
    for board in range(8):
        board_state[board] = board * 0x0101
    results = {}

    def ask(board):
        request = ReadStateRequest(board).to_bytes()
        results[board] = session.request(request, state_of(board), timeout_s=WAIT_S, retries=0)

    threads = [threading.Thread(target=ask, args=(board,)) for board in range(8) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == {board: StateResponse(board, board * 0x0101, 0) for board in range(8)}
    assert device.garbage_bytes == 0


def test_port_not_open_raises_unavailable(tmp_path):
    session = make_session(str(tmp_path / "missing"))
    session.start()
    try:
        with pytest.raises(DeviceUnavailable, match="port is not open"):
            session.request(ReadStateRequest(0).to_bytes(), state_of(0), timeout_s=WAIT_S, retries=2)
    finally:
        session.close()


@pytest.mark.parametrize("interrupt,words", [("unplug", "connection lost"), ("close", "")])
def test_losing_the_link_or_closing_fails_a_waiting_request_at_once(session, device, interrupt, words):
    asked = threading.Event()
    device.respond = lambda frame: asked.set()
    outcome = []

    def ask():
        try:
            session.request(ReadStateRequest(0).to_bytes(), state_of(0), timeout_s=60.0, retries=0)
        except Exception as exc:  # noqa: BLE001 - the test inspects it
            outcome.append(exc)

    thread = threading.Thread(target=ask)
    thread.start()
    assert asked.wait(WAIT_S)
    if interrupt == "unplug":
        device.unplug()
    else:
        session.close()
    thread.join()
    (exc,) = outcome
    assert isinstance(exc, DeviceUnavailable)
    assert words in str(exc)
